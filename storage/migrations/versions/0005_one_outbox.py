"""one outbox: one notices table for every scheduled message; every outbox row has its delivery

`outreach_notices` (weekly tips, the campaign) and `notices_sent` (officers' reminders,
escalations, digests, compiled reports) become one `notices` table keyed by (contact, key);
an officer's notice about a unit gets the key "kind:subject:period:unit_id". Outbox rows queued
without a `deliveries` row (the old second enqueue, adopted by the sender at run time) get one
here: queued, sent or failed as the row says, kind "other".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What notices_sent's `kind` held; a migrated key starts with one of them.
OFFICER_KINDS = ("reminder", "escalation", "digest", "period_report")
BATCH = 1000

notices = sa.table(
    "notices",
    sa.column("contact_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
outreach_notices = sa.table(
    "outreach_notices",
    sa.column("contact_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
notices_sent = sa.table(
    "notices_sent",
    sa.column("kind", sa.String),
    sa.column("subject", sa.String),
    sa.column("period", sa.String),
    sa.column("unit_id", sa.Integer),
    sa.column("contact_id", sa.Integer),
    sa.column("sent_at", sa.DateTime(timezone=True)),
)
outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("contact_id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("not_before", sa.DateTime(timezone=True)),
    sa.column("sent_at", sa.DateTime(timezone=True)),
    sa.column("failed_at", sa.DateTime(timezone=True)),
)
deliveries = sa.table(
    "deliveries",
    sa.column("outbox_id", sa.Integer),
    sa.column("contact_id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("kind", sa.String),
    sa.column("broadcast_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("idempotency_key", sa.String),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def _copy(rows: Sequence[dict[str, object]], table: sa.TableClause) -> None:
    for i in range(0, len(rows), BATCH):
        op.bulk_insert(table, list(rows[i : i + BATCH]))


def _create_notices_sent() -> None:
    op.create_table(
        "notices_sent",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=96), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_notices_sent_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_notices_sent_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices_sent")),
        sa.UniqueConstraint(
            "kind", "subject", "period", "unit_id", "contact_id", name=op.f("uq_notices_sent_kind")
        ),
    )
    with op.batch_alter_table("notices_sent", schema=None) as batch_op:
        batch_op.create_index("ix_notices_sent_contact", ["contact_id", "sent_at"], unique=False)


def _create_outreach_notices() -> None:
    op.create_table(
        "outreach_notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_outreach_notices_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_notices")),
        sa.UniqueConstraint("contact_id", "key", name=op.f("uq_outreach_notices_contact_id")),
    )


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_notices_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("contact_id", "key", name=op.f("uq_notices_contact_id")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_kind_due", ["channel", "kind", "status", "due_at"], unique=False)
    # INSERT … SELECT: the rows never pass through Python, and `alembic upgrade --sql` works.
    op.execute(
        notices.insert().from_select(
            ["contact_id", "key", "created_at"],
            sa.select(outreach_notices.c.contact_id, outreach_notices.c.key, outreach_notices.c.created_at),
        )
    )
    s = notices_sent.c
    key = s.kind + ":" + s.subject + ":" + s.period + ":" + sa.cast(s.unit_id, sa.String(20))
    op.execute(
        notices.insert().from_select(
            ["contact_id", "key", "created_at"], sa.select(s.contact_id, key, s.sent_at)
        )
    )

    # Outbox rows without their delivery: give them one, as the sender's adopt() did.
    o = outbox.c
    if op.get_context().dialect.name == "postgresql":
        random_key = sa.func.md5(sa.cast(sa.func.random(), sa.Text) + sa.cast(o.id, sa.Text))
    else:
        random_key = sa.func.lower(sa.func.hex(sa.func.randomblob(16)))
    op.execute(
        deliveries.insert().from_select(
            [
                "outbox_id",
                "contact_id",
                "channel",
                "kind",
                "status",
                "due_at",
                "idempotency_key",
                "updated_at",
            ],
            sa.select(
                o.id,
                o.contact_id,
                o.channel,
                sa.literal("other"),
                sa.case(
                    (o.sent_at.is_not(None), sa.literal("sent")),
                    (o.failed_at.is_not(None), sa.literal("failed")),
                    else_=sa.literal("queued"),
                ),
                sa.func.coalesce(o.not_before, o.created_at),
                random_key,
                sa.func.coalesce(o.sent_at, o.failed_at, o.created_at),
            ).where(~sa.select(deliveries.c.outbox_id).where(deliveries.c.outbox_id == o.id).exists()),
        )
    )

    with op.batch_alter_table("notices_sent", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_sent_contact")
    op.drop_table("notices_sent")
    op.drop_table("outreach_notices")


def downgrade() -> None:
    _create_notices_sent()
    _create_outreach_notices()
    bind = op.get_bind()
    officer: list[dict[str, object]] = []
    outreach: list[dict[str, object]] = []
    for r in bind.execute(sa.select(notices)):
        kind, _, rest = str(r.key).partition(":")
        subject, _, tail = rest.rpartition(":")  # the unit id is last; subjects may hold ":"
        subject, _, period = subject.rpartition(":")
        if kind in OFFICER_KINDS and tail.isdigit() and subject:
            officer.append(
                {
                    "kind": kind,
                    "subject": subject,
                    "period": period,
                    "unit_id": int(tail),
                    "contact_id": r.contact_id,
                    "sent_at": r.created_at,
                }
            )
        else:
            outreach.append({"contact_id": r.contact_id, "key": r.key, "created_at": r.created_at})
    _copy(officer, notices_sent)
    _copy(outreach, outreach_notices)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_kind_due")
    op.drop_table("notices")
