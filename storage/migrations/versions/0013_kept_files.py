"""kept files: compiled files a web chat user can download again until they expire

`kept_files` gives a stored report file to one contact under an unguessable id (the web chat's
download link); `report_files.used_at` says when a file was last stored again, so that the
retention job deletes only files nobody has used for `kept_file_days` (storage/models_files.py).
Files stored before this migration count from their `created_at`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-12 10:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kept_files",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_kept_files_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["report_files.id"], name=op.f("fk_kept_files_file_id_report_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kept_files")),
    )
    with op.batch_alter_table("kept_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kept_files_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kept_files_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_kept_files_file_id"), ["file_id"], unique=False)

    with op.batch_alter_table("report_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_files", schema=None) as batch_op:
        batch_op.drop_column("used_at")

    with op.batch_alter_table("kept_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kept_files_file_id"))
        batch_op.drop_index(batch_op.f("ix_kept_files_created_at"))
        batch_op.drop_index(batch_op.f("ix_kept_files_contact_id"))

    op.drop_table("kept_files")
