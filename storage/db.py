"""Database engines: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) through DATABASE_URL."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storage import sqlite_inline
from storage.locks import KeyedLocks
from storage.readonly import ReadSide

log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///) and pick async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def is_sqlite(url: str) -> bool:
    return normalise_url(url).startswith("sqlite")


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_sqlite_file(path: str | Path) -> None:
    """Make the SQLite file (and its folder, when new) readable by this user only, before
    SQLite opens it: the database holds personal data and each officer's credentials.

    The file is created 0600 here rather than by SQLite under the process umask (0644 with the
    usual 022). SQLite gives the -wal and -shm files it creates the mode of the database file,
    so they are 0600 too. Files an older version left readable by others are tightened. No
    umask is changed: it is process-wide, and other threads may be creating files.
    """
    file = Path(path)
    if not file.parent.exists():
        file.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    try:
        os.close(os.open(file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
        return
    except FileExistsError:
        pass
    for existing in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
        try:
            mode = stat.S_IMODE(existing.stat().st_mode)
            if mode & 0o077:
                existing.chmod(mode & 0o700)
                log.warning("%s was readable by other users (%o): now %o", existing, mode, mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:  # not ours to change: say so, and go on
            log.warning("%s is readable by other users and cannot be changed", existing)


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL; None for an in-memory database or another backend."""
    url = normalise_url(url)
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def make_engine(url: str, sqlite_driver: str = "inline") -> AsyncEngine:
    """An async engine. On SQLite, `sqlite_driver` "inline" runs sqlite3 on the event loop
    (storage.sqlite_inline explains why); "aiosqlite" uses aiosqlite's worker thread."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            private_sqlite_file(path)
        if sqlite_driver == "inline" and path and path != ":memory:":
            engine = create_async_engine(url, async_creator=sqlite_inline.creator(path, 30.0))
        else:
            engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class Database:
    """An engine, its session factory, and the in-process halves of its locks.

    `write_lock` (SQLite only): one writer at a time in this process. SQLite allows one writer;
    letting many coroutines race for the lock only produces 'database is locked' retries, so
    transactions queue on an asyncio lock instead.

    `contact_locks`: one step per contact at a time in this process, the fast path in front of
    the row lock each step takes in PostgreSQL (bot.services.incoming).
    """

    def __init__(self, url: str, sqlite_driver: str = "inline") -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, sqlite_driver)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if is_sqlite(self.url) else None
        self.contact_locks = KeyedLocks()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @cached_property
    def read_side(self) -> ReadSide:
        """Where read-only units of work read (storage.readonly): made on first use."""
        return ReadSide(self.url, self.engine)

    async def dispose(self) -> None:
        if "read_side" in self.__dict__:
            await self.read_side.dispose()
        await self.engine.dispose()
