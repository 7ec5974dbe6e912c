"""invite tries: wrong invite codes, counted by the limits and told in the weekly digest

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 10:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invite_tries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("address_tag", sa.String(length=32), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_invite_tries_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invite_tries")),
    )
    op.create_index(op.f("ix_invite_tries_at"), "invite_tries", ["at"], unique=False)
    op.create_index("ix_invite_tries_contact_at", "invite_tries", ["contact_id", "at"], unique=False)
    op.create_index("ix_invite_tries_address_at", "invite_tries", ["address_tag", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_invite_tries_address_at", table_name="invite_tries")
    op.drop_index("ix_invite_tries_contact_at", table_name="invite_tries")
    op.drop_index(op.f("ix_invite_tries_at"), table_name="invite_tries")
    op.drop_table("invite_tries")
