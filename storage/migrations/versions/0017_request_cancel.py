"""request cancel: an ad hoc request can be cancelled by whoever follows it

`report_requests.cancelled_at`: when it was cancelled (NULL while it stands). A cancelled request
is no longer reminded, offered or answered; its answers so far stay (bot/services/requests.py).
Who cancelled it is in the audit row `request.cancel`.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 09:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.drop_column("cancelled_at")
