"""requests: ad hoc requests of province and commune staff to the officers of their area

Báo cáo đột xuất (seed 000 line 97): who asked, the area and the role asked, a form of
content/forms/ or the questions typed in the chat, the deadline. The answers are submissions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_by_contact_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("area_path", sa.String(length=255), nullable=False),
        sa.Column("audience", sa.String(length=32), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_contact_id"],
            ["contacts.id"],
            name=op.f("fk_report_requests_created_by_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_report_requests_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_requests")),
    )
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_requests_area_path"), ["area_path"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_report_requests_created_by_contact_id"), ["created_by_contact_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_report_requests_due_date"), ["due_date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_requests_due_date"))
        batch_op.drop_index(batch_op.f("ix_report_requests_created_by_contact_id"))
        batch_op.drop_index(batch_op.f("ix_report_requests_area_path"))

    op.drop_table("report_requests")
