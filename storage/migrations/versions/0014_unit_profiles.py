"""unit profiles: the signer and the number symbol of a unit's compiled reports (/hoso)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 10:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_profiles",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("signer_name", sa.String(length=80), nullable=False),
        sa.Column("signer_title", sa.String(length=60), nullable=False),
        sa.Column("number_symbol", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_contact_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_contact_id"],
            ["contacts.id"],
            name=op.f("fk_unit_profiles_updated_by_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_unit_profiles_unit_id_units")),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_unit_profiles")),
    )


def downgrade() -> None:
    op.drop_table("unit_profiles")
