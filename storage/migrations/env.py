"""Alembic environment: async engines (aiosqlite, asyncpg), batch mode on SQLite.

The URL comes from `config.attributes["database_url"]` (set by storage.migrate), else the
DATABASE_URL environment variable, else `sqlalchemy.url` in alembic.ini. Any of sqlite:///,
sqlite+aiosqlite:///, postgres://, postgresql:// is accepted and given its async driver.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import normalise_url, private_sqlite_file, sqlite_path
from storage.models import UTCDateTime
from storage.schema import Base

config = context.config

# Logging set-up only when run from the alembic command line: inside the app or the tests,
# fileConfig would replace the application's logging configuration.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = (
        config.attributes.get("database_url")
        or os.environ.get("DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise RuntimeError(
            "no database URL: set DATABASE_URL (e.g. sqlite:///data/khuyenhoc.db) "
            "or pass one to storage.migrate.upgrade()"
        )
    return normalise_url(str(url))


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the project's column types as plain SQLAlchemy ones so migrations stand alone."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else (url or "").split(":", 1)[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=dialect.startswith("sqlite"),
        render_item=render_item,
        compare_type=True,
        compare_server_default=False,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: emit the SQL instead of running it."""
    _configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = database_url()
    path = sqlite_path(url)
    if path is not None:
        private_sqlite_file(path)  # 0600 from the first byte (storage.db)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # A caller handed us a synchronous connection (e.g. from AsyncConnection.run_sync).
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
