"""Read-only units of work: heavy reads (compiled reports) outside the write transaction.

A `UnitOfWork` on SQLite holds the process-wide write lock for its whole life, and with the
inline driver (storage.sqlite_inline) its statements run on the event loop. A national report
read that way stopped every other chat for one to two seconds (DESIGN.md boundary 12). A
`ReadOnlyUnitOfWork` takes no lock and reads through connections of its own:

* SQLite: an aiosqlite engine beside the main one. Each statement runs in aiosqlite's worker
  thread, and sqlite3 lets go of the GIL while SQLite works, so the event loop keeps serving
  dialogues. `PRAGMA query_only` refuses writes. Python's sqlite3 runs a SELECT outside any
  transaction (each query its own snapshot), so the engine sends BEGIN itself: every query of
  one unit of work reads the same WAL snapshot, while writers carry on beside it.
* PostgreSQL: the main pool, in a READ ONLY, REPEATABLE READ transaction: one snapshot for all
  queries, and the server refuses any write.

Leaving the block rolls back; there is nothing to commit.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.models_channels import ChannelRepository
from storage.models_console import ConsoleRepository
from storage.models_limits import InviteTryRepository
from storage.models_profiles import ProfileRepository
from storage.models_requests import RequestRepository
from storage.repositories import (
    BroadcastRepository,
    ContactRepository,
    InviteRepository,
    OutboxRepository,
    ReportFileRepository,
    SubmissionRepository,
    UnitRepository,
)
from storage.repositories_outreach import ContentRepository, NoticeRepository, RecipientRepository
from storage.repositories_reviews import ReviewRepository

if TYPE_CHECKING:
    from storage.db import Database


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL; None for an in-memory database (or another backend)."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1]
    return path if path and path != ":memory:" else None


def make_read_engine(url: str, engine: AsyncEngine) -> AsyncEngine:
    """The engine of read-only units of work, for a database whose main engine is `engine`."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    if sqlite_file(url) is None:
        return engine  # an in-memory database exists only on the main engine's connection
    # aiosqlite (not the inline driver) whatever the setting: its queries run off the event loop.
    reader = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(reader.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN: `_begin` sends its own
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(reader.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return reader


class ReadSide:
    """A database's read-only engine and session factory, made on first use (storage.db)."""

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.engine = make_read_engine(url, engine)
        self.own_engine = self.engine is not engine and engine.dialect.name == "sqlite"
        # Sharing the main engine on SQLite means sharing its writer too (in-memory databases).
        self.needs_write_lock = self.engine is engine
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def dispose(self) -> None:
        if self.own_engine:
            await self.engine.dispose()


class ReadOnlyUnitOfWork:
    """`async with ReadOnlyUnitOfWork(db) as reads: ...` — one snapshot, no writes, no write lock."""

    session: AsyncSession

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = db.write_lock if db.read_side.needs_write_lock else None

    async def __aenter__(self) -> Self:
        if self._lock is not None:
            await self._lock.acquire()
        self.session = self._db.read_side.sessions()
        s = self.session
        self.units = UnitRepository(s)
        self.submissions = SubmissionRepository(s)
        self.outbox = OutboxRepository(s)
        self.broadcasts = BroadcastRepository(s)
        self.notices = NoticeRepository(s)
        self.recipients = RecipientRepository(s)
        self.files = ReportFileRepository(s)
        self.content = ContentRepository(s)
        self.channels = ChannelRepository(s)
        self.reviews = ReviewRepository(s)
        self.requests = RequestRepository(s)
        self.invite_tries = InviteTryRepository(s)
        self.profiles = ProfileRepository(s)
        self.contacts = ContactRepository(s)  # reads only: the console's session check
        self.console = ConsoleRepository(s)
        self.invites = InviteRepository(s)  # the open codes of an area (the console)
        return self

    def keep_loaded(self) -> None:
        """Detach what was read, so that it stays readable after the block (leaving rolls back,
        which would expire every loaded object): for values handed on, like the console's session."""
        self.session.expunge_all()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.rollback()
            await self.session.close()
        finally:
            if self._lock is not None:
                self._lock.release()
