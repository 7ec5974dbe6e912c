"""console sessions: one-time login links and browser sessions of the staff console

`console_links` holds the hashes of the one-time links /web sends (single use, minutes);
`console_sessions` the hashes of the browsers' session cookies, with their CSRF token and chosen
language (storage/models_console.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 08:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_console_links_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_links")),
    )
    with op.batch_alter_table("console_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_links_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_console_links_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_console_sessions_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_sessions_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_console_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("console_links")
