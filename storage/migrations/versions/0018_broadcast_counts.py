"""broadcast_counts: the delivery counts of a broadcast's messages deleted after
sent_message_retention_days, so its figures outlive them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-22 10:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broadcast_counts",
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"], ["broadcasts.id"], name=op.f("fk_broadcast_counts_broadcast_id_broadcasts")
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "status", name=op.f("pk_broadcast_counts")),
    )


def downgrade() -> None:
    op.drop_table("broadcast_counts")
