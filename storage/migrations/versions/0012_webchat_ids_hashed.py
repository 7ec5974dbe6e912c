"""web chat ids hashed: the database keeps a keyed hash of each web chat client id, never the id

A web chat client id is the only credential of a web chat user: anyone who reads it from the
database can act as them. From now on the web chat stores HMAC-SHA256(key, id) in hex instead
(bot.channels.webchat). This migration rewrites the ids already stored — the identities, the
outbox rows addressed to them and the processed-update ids that start with them — under the key
the running bot will use: WEBCHAT_ID_SECRET when the operator set it (passed in by
storage.migrate.upgrade, or from the environment), else a key made here and kept in the new
`server_secrets` table. Downgrading cannot recover the ids: it drops the table and leaves the
hashes (web chat users then start over, as after clearing their browser).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 10:00:00.000000+00:00
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "webchat"
SECRET_NAME = "webchat_id"

server_secrets = sa.table(
    "server_secrets",
    sa.column("name", sa.String),
    sa.column("value", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
identities = sa.table(
    "channel_identities",
    sa.column("id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("external_id", sa.String),
)
outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("external_id", sa.String),
)
updates = sa.table(
    "processed_updates",
    sa.column("id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("update_id", sa.String),
)


def _hashed(key: str, client_id: str) -> str:
    return hmac.new(key.encode(), client_id.encode(), hashlib.sha256).hexdigest()


def _key(bind: sa.Connection) -> str:
    configured = context.config.attributes.get("webchat_id_secret") or os.environ.get("WEBCHAT_ID_SECRET")
    if configured:
        return str(configured)
    found = bind.execute(
        sa.select(server_secrets.c.value).where(server_secrets.c.name == SECRET_NAME)
    ).scalar()
    if found is not None:
        return str(found)
    key = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    op.bulk_insert(
        server_secrets,
        [
            {
                "name": SECRET_NAME,
                "value": key,
                "created_at": now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now,
            }
        ],
    )
    return key


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    if context.is_offline_mode():
        return  # SQL scripts have no rows to read: the bot hashes ids from the first message on
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(identities.c.id, identities.c.external_id).where(identities.c.channel == CHANNEL)
    ).all()
    queued = bind.execute(
        sa.select(outbox.c.id, outbox.c.external_id).where(outbox.c.channel == CHANNEL)
    ).all()
    seen = bind.execute(
        sa.select(updates.c.id, updates.c.update_id).where(updates.c.channel == CHANNEL)
    ).all()
    if not (rows or queued or seen):
        return
    key = _key(bind)
    for table, column, found in ((identities, "external_id", rows), (outbox, "external_id", queued)):
        for row_id, raw in found:
            bind.execute(sa.update(table).where(table.c.id == row_id).values({column: _hashed(key, raw)}))
    for row_id, update_id in seen:  # "<client id>:<message id>"
        client_id, sep, message_id = update_id.partition(":")
        if sep:
            bind.execute(
                sa.update(updates)
                .where(updates.c.id == row_id)
                .values(update_id=f"{_hashed(key, client_id)}:{message_id}")
            )


def downgrade() -> None:
    op.drop_table("server_secrets")
