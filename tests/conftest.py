"""Shared fixtures: databases on both backends, and a headless Chromium.

- `database_url`: an EMPTY database, once on SQLite (a file in tmp_path) and once on PostgreSQL
  (a fresh database on the server named by TEST_DATABASE_URL, dropped after the test).
- `db`: a fresh database migrated to head, as a `storage.db.Database`, once per backend.
- `sqlite_url` / `sqlite_db`, `postgres_url` / `postgres_db`: the same for one backend only.
- `chromium_path`: the Chromium executable for Playwright's `executable_path`.

`db` is fast: the migrations run once per session and backend (storage.migrate.upgrade, in a
worker thread because Alembic's async env.py runs its own event loop) into a template, which each
test copies (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL).
Tests of the migrations themselves use `database_url` and migrate it.

Where PostgreSQL or Chromium is missing the tests skip, except under CI=true, where they fail:
CI must not pass by skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from storage.db import Database, normalise_url
from storage.migrate import upgrade

PG_ENV = "TEST_DATABASE_URL"
_pg_unavailable: str | None = None  # why the server could not be reached, once known


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip locally; fail under CI=true, where a missing service is a broken set-up."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: not skipping)", pytrace=False)
    pytest.skip(reason)


# PostgreSQL --------------------------------------------------------------------------------------


def _server_url() -> URL:
    raw = os.environ.get(PG_ENV)
    if not raw:
        skip_or_fail(
            f"PostgreSQL tests need {PG_ENV}, e.g. "
            "postgresql://postgres@127.0.0.1:5432/postgres (.ci/run starts such a server)"
        )
    return make_url(normalise_url(raw))


async def _admin_connect(server: URL) -> asyncpg.Connection:
    """A connection to the server's maintenance database, for CREATE/DROP DATABASE."""
    return await asyncpg.connect(
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        user=server.username or "postgres",
        password=server.password,
        database="postgres",
        timeout=5,
    )


async def _admin_execute(server: URL, *statements: str) -> None:
    global _pg_unavailable
    if _pg_unavailable is not None:
        skip_or_fail(_pg_unavailable)
    try:
        admin = await _admin_connect(server)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        _pg_unavailable = (
            f"PostgreSQL at {server.render_as_string(hide_password=True)} unreachable: "
            f"{type(exc).__name__}: {exc}"
        )
        skip_or_fail(_pg_unavailable)
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def fresh_postgres_database(template: str | None = None) -> AsyncIterator[str]:
    """Create a uniquely named database (optionally a copy of `template`); drop it on exit."""
    server = _server_url()
    name = _unique_name("khuyenhoc_test")
    clause = f' TEMPLATE "{template}"' if template else ""
    await _admin_execute(server, f'CREATE DATABASE "{name}"{clause}')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Templates:
    """Databases migrated once per session, copied by each test that wants a migrated one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sqlite: Path | None = None
        self.postgres: str | None = None  # the migrated template's name
        self._postgres_created: str | None = None

    async def sqlite_copy(self, target: Path) -> str:
        if self.sqlite is None:
            path = self.directory / "template.db"
            await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{path}")
            self.sqlite = path
        shutil.copyfile(self.sqlite, target)
        target.chmod(0o600)  # as the bot makes its files (storage.db.private_sqlite_file)
        return f"sqlite+aiosqlite:///{target}"

    async def postgres_template(self) -> str:
        if self.postgres is None:
            server = _server_url()
            if self._postgres_created is None:
                name = _unique_name("khuyenhoc_template")
                await _admin_execute(server, f'CREATE DATABASE "{name}"')
                self._postgres_created = name  # dropped at the end of the session
            url = server.set(database=self._postgres_created)
            await asyncio.to_thread(upgrade, url.render_as_string(hide_password=False))
            self.postgres = self._postgres_created
        return self.postgres

    def drop(self) -> None:
        name, self._postgres_created, self.postgres = self._postgres_created, None, None
        if name is not None:
            statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            asyncio.run(_admin_execute(_server_url(), statement))


@pytest.fixture(scope="session")
def _db_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    templates = _Templates(tmp_path_factory.mktemp("db-templates"))
    yield templates
    templates.drop()


# Database fixtures -------------------------------------------------------------------------------

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty (not yet existing) SQLite database file in tmp_path."""
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database (skips, or fails under CI, without a server)."""
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        async with fresh_postgres_database() as url:
            yield url


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def sqlite_db(tmp_path: Path, _db_templates: _Templates) -> AsyncIterator[Database]:
    """A migrated SQLite database, for tests that need only one backend."""
    url = await _db_templates.sqlite_copy(tmp_path / "test.db")
    async with open_database(url) as database:
        yield database


@pytest.fixture
async def postgres_db(_db_templates: _Templates) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database (skips, or fails under CI, without a server)."""
    template = await _db_templates.postgres_template()
    async with fresh_postgres_database(template) as url, open_database(url) as database:
        yield database


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, _db_templates: _Templates
) -> AsyncIterator[Database]:
    """A migrated database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = await _db_templates.sqlite_copy(tmp_path / "test.db")
        async with open_database(url) as database:
            yield database
    else:
        template = await _db_templates.postgres_template()
        async with fresh_postgres_database(template) as url, open_database(url) as database:
            yield database


# Browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (or $CHROMIUM_PATH) for Playwright's `executable_path`."""
    candidates = [
        os.environ.get("CHROMIUM_PATH"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    skip_or_fail("no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    """A headless Chromium (Playwright's `Browser`), closed after the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
