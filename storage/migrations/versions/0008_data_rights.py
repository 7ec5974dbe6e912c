"""data rights: a deleted person's reports keep their role, and are found by who filed them

When someone has their data deleted (/xoadulieu), the reports they filed stay as official
records, attributed to the unit and to the role they filed them in (`submitted_by_role`) rather
than to the person. `/dulieu` and the deletion find a person's reports by
`submitted_by_contact_id`, hence its index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 09:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("submitted_by_role", sa.String(length=32), nullable=True))
    op.create_index(
        op.f("ix_submissions_submitted_by_contact_id"),
        "submissions",
        ["submitted_by_contact_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_submissions_submitted_by_contact_id"), table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("submitted_by_role")
