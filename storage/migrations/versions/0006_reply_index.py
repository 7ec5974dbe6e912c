"""reply index: whether replies to a person wait in the outbox, looked up by contact

Every dialogue step asks whether earlier replies to the person still wait in the outbox. Without
an index that starts with the contact, SQLite answered it from `ix_deliveries_kind_due`, scanning
every queued reply of the channel: during a long platform outage each step got slower.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 11:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_contact_reply", "deliveries", ["contact_id", "channel", "kind", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_contact_reply", table_name="deliveries")
