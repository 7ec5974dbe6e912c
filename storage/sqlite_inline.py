"""An aiosqlite-shaped connection that runs sqlite3 calls inline, on the event loop's thread.

Why: aiosqlite sends every cursor call (execute, fetch, close, description…) to a worker thread
and back; SQLAlchemy makes about eight such calls per statement, so a dialogue step paid ~34
thread round trips, which cost far more than the SQLite work itself (tens of microseconds per
statement on a local file). SQLite runs in-process and the bot holds one writer at a time
(storage.db.Database.write_lock), so running the calls inline is both faster and simpler.

The price: a statement blocks the event loop while it runs. That is fine for the short
statements of dialogues; long report queries should run in `asyncio.to_thread` with a sync
connection of their own. The setting `sqlite_driver=aiosqlite` goes back to the threaded driver.

Used through SQLAlchemy's aiosqlite dialect with `async_creator`: this module provides exactly
the awaitable connection and cursor interface that dialect drives.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Self:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any] | dict[str, Any]]) -> Self:
        self._cursor.executemany(sql, seq)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _InlineQueue:
    """SQLAlchemy sets isolation_level by queueing (future, function) on aiosqlite's thread."""

    def __init__(self, conn: InlineConnection) -> None:
        self._conn = conn

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # aiosqlite's name; falsy once closed
        self._tx = _InlineQueue(self)

    def cursor(self) -> InlineCursor:
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return InlineCursor(self._conn.cursor())

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)


def creator(path: str, timeout: float) -> Callable[[], Any]:
    """An `async_creator` for create_async_engine: a new inline connection to `path`."""

    async def connect() -> InlineConnection:
        # isolation_level "" is sqlite3's default (implicit BEGIN before writes), as with aiosqlite.
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        return InlineConnection(conn)

    return connect
