"""Issue 11, item 4: files and secrets.

- The SQLite file and its -wal and -shm files are readable by their owner only (they were 0644:
  any local user could read every officer's web chat credential).
- The database never holds a web chat client id, only its keyed hash (HMAC under WEBCHAT_ID_SECRET
  or a key kept in the database), looked up by hash; migration 0012 rewrites the ids of before.
- The bot tokens never reach a log line, even at LOG_LEVEL=DEBUG from the first line on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import JSON, String, Text, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.domain.app import App
from bot.domain.settings import Settings
from bot.runtime.bootstrap import bootstrap
from bot.runtime.http import create_http_app
from storage import migrate
from storage.db import Database, normalise_url, private_sqlite_file
from storage.models import VILLAGE_OFFICER, ChannelIdentity
from storage.models_secrets import WEBCHAT_ID_KEY, ServerSecret
from storage.schema import Base
from tests.support import CONTENT, make_app, make_contact, seed_tree, webchat_id
from tests.test_migrations import _run

CLIENT = "0123456789abcdef0123456789abcdef"  # what the page makes: 16 random bytes in hex
MESSAGES = "/api/webchat/messages"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most systems run services with: new files 0644
    try:
        yield
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- the SQLite file


async def test_the_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / "data" / "khuyenhoc.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)  # the migrations create the file
    app = make_app(url)
    try:
        await seed_tree(app)  # writes: the WAL and the shared-memory file exist now
        async with app.read_only() as reads:  # the read side's own connection too
            assert await reads.units.count("province") == 1
        files = {p.name: mode(p) for p in path.parent.iterdir()}
        assert files == {"khuyenhoc.db": 0o600, "khuyenhoc.db-wal": 0o600, "khuyenhoc.db-shm": 0o600}
        assert mode(path.parent) == 0o700  # the folder it made
    finally:
        await app.db.dispose()


async def test_a_database_made_by_the_bot_itself_is_private(tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / "fresh.db"
    db = Database(f"sqlite:///{path}")
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert mode(path) == 0o600
    finally:
        await db.dispose()


def test_an_older_world_readable_file_is_tightened(tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(b"")
    Path(f"{path}-wal").write_bytes(b"")
    assert mode(path) == 0o644
    private_sqlite_file(path)
    assert mode(path) == 0o600 and mode(Path(f"{path}-wal")) == 0o600


# ----------------------------------------------------------------------------- web chat client ids


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    application = make_app(db.url)
    try:
        yield application
    finally:
        await application.db.dispose()


def client_for(app: App) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_http_app(app)), base_url="http://test")


async def every_stored_text(url: str) -> list[str]:
    """Every text and JSON value of every table, as stored."""
    engine = create_async_engine(normalise_url(url), poolclass=NullPool)
    found: list[str] = []
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
                if not columns:
                    continue
                for row in await conn.execute(
                    select(*(text(f'CAST("{c.name}" AS TEXT)') for c in columns)).select_from(table)
                ):
                    found += [str(v) for v in row if v is not None]
    finally:
        await engine.dispose()
    return found


async def test_the_database_never_holds_a_web_chat_client_id(app: App) -> None:
    async with client_for(app) as client:
        for n, body in enumerate([{"text": "/start"}, {"option_id": "lang:vi"}, {"text": "/trogiup"}]):
            r = await client.post(MESSAGES, json={"client_id": CLIENT, "message_id": f"msg-{n:05d}", **body})
            assert r.status_code == 200 and r.json()["replies"], r.text
        assert (await client.get("/api/webchat/poll", params={"client_id": CLIENT})).status_code == 200
    stored = await every_stored_text(app.db.url)
    assert stored and not [v for v in stored if CLIENT in v]
    async with app.uow() as uow:
        key = await uow.session.scalar(select(ServerSecret.value).where(ServerSecret.name == WEBCHAT_ID_KEY))
        identities = (await uow.session.execute(select(ChannelIdentity.external_id))).scalars().all()
    assert key is not None
    assert identities == [hmac.new(key.encode(), CLIENT.encode(), hashlib.sha256).hexdigest()]


async def test_the_id_is_looked_up_by_its_hash_on_every_instance(db: Database) -> None:
    """Two processes on one database find the same person: the key is made once and shared."""
    first, second = make_app(db.url), make_app(db.url)
    try:
        tree = await seed_tree(first)
        stored = await webchat_id(first, CLIENT)
        await make_contact(first, stored, VILLAGE_OFFICER, tree.village, channel="webchat")
        async with client_for(second) as client:
            r = await client.post(MESSAGES, json={"client_id": CLIENT, "text": "/toi"})
        assert "Thôn Nà Rụa" in r.text  # the officer, with their role, not a new contact
    finally:
        await first.db.dispose()
        await second.db.dispose()


async def test_webchat_id_secret_keeps_the_key_out_of_the_database(db: Database) -> None:
    app = make_app(db.url, webchat_id_secret="a key the operator keeps elsewhere")
    try:
        async with client_for(app) as client:
            assert (
                await client.post(MESSAGES, json={"client_id": CLIENT, "text": "/start"})
            ).status_code == 200
        async with app.uow() as uow:
            assert (await uow.session.execute(select(ServerSecret))).first() is None
            (stored,) = (await uow.session.execute(select(ChannelIdentity.external_id))).scalars()
        expected = hmac.new(
            b"a key the operator keeps elsewhere", CLIENT.encode(), hashlib.sha256
        ).hexdigest()
        assert stored == expected
    finally:
        await app.db.dispose()


IDENTITY = "INSERT INTO channel_identities (contact_id, channel, external_id, created_at) VALUES "
OUTBOX = "INSERT INTO outbox (id, contact_id, channel, external_id, payload, created_at, attempts) VALUES "
DELIVERY = (
    "INSERT INTO deliveries (outbox_id, contact_id, channel, kind, status, due_at, idempotency_key, "
    "updated_at) VALUES "
)
BEFORE_0012 = [
    "INSERT INTO contacts (id, locale, created_at, consent_at) VALUES (7, 'vi', :when, :when)",
    IDENTITY + f"(7, 'webchat', '{CLIENT}', :when)",
    IDENTITY + "(7, 'zalo', 'z7', :when)",
    OUTBOX + f"(1, 7, 'webchat', '{CLIENT}', '{{\"text\": \"Tin chờ\"}}', :when, 0)",
    OUTBOX + "(2, 7, 'zalo', 'z7', '{\"text\": \"zalo\"}', :when, 0)",
    DELIVERY + "(1, 7, 'webchat', 'other', 'queued', :when, 'k1', :when)",
    DELIVERY + "(2, 7, 'zalo', 'other', 'queued', :when, 'k2', :when)",
    "INSERT INTO processed_updates (channel, update_id, processed_at) "
    f"VALUES ('webchat', '{CLIENT}:msg-00001', :when)",
]


@pytest.mark.parametrize("configured", [None, "the operator's key"])
async def test_0012_hashes_the_ids_stored_before(database_url: str, configured: str | None) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url, "0011")
    await _run(database_url, *BEFORE_0012)
    await asyncio.to_thread(migrate.upgrade, database_url, "head", webchat_id_secret=configured)
    identities, outbox, updates, keys = await _run(
        database_url,
        "SELECT channel, external_id FROM channel_identities ORDER BY channel",
        "SELECT channel, external_id FROM outbox ORDER BY id",
        "SELECT update_id FROM processed_updates",
        "SELECT value FROM server_secrets",
    )
    key = configured or keys[0][0]
    assert [k for (k,) in keys] == ([] if configured else [key])
    hashed = hmac.new(key.encode(), CLIENT.encode(), hashlib.sha256).hexdigest()
    assert identities == [("webchat", hashed), ("zalo", "z7")]
    assert outbox == [("webchat", hashed), ("zalo", "z7")]
    assert updates == [(f"{hashed}:msg-00001",)]
    assert CLIENT not in "".join(await every_stored_text(database_url))

    # The browser still holds the raw id: it finds its contact, its queued message, and a
    # retried POST of a message processed before the upgrade is still recognised.
    app = bootstrap(
        Settings(
            database_url=database_url,
            content_dir=str(CONTENT),
            webchat_id_secret=configured,
            _env_file=None,  # type: ignore[call-arg]
        ),
    ).app
    try:
        async with client_for(app) as client:
            polled = (await client.get("/api/webchat/poll", params={"client_id": CLIENT})).json()
            assert [m["text"] for m in polled["messages"]] == ["Tin chờ"]
            again = await client.post(
                MESSAGES, json={"client_id": CLIENT, "text": "/start", "message_id": "msg-00001"}
            )
            assert again.json() == {"replies": []}
            r = await client.post(
                MESSAGES, json={"client_id": CLIENT, "text": "/toi", "message_id": "msg-00002"}
            )
            assert r.json()["replies"]
        async with app.uow() as uow:
            assert await uow.session.scalar(text("SELECT count(*) FROM contacts")) == 1
    finally:
        await app.db.dispose()


# ----------------------------------------------------------------------------- tokens in logs

TELEGRAM_TOKEN = "7654321:AAH-a-secret-token-0123456789abcdefXYZ"
ZALO_TOKEN = "zalo-secret-token-0123456789"
DEBUG_FROM_THE_START = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)  # a deployment's logging, set up first
from bot.domain.settings import Settings
from bot.runtime.bootstrap import bootstrap
settings = Settings(
    database_url=sys.argv[1], telegram_token=sys.argv[2], zalo_token=sys.argv[3],
    public_url="https://bot.example.org", _env_file=None,
)
bootstrap(settings)
# A library's logger made later, printing a URL with the token in it.
logging.getLogger("some.library.client").debug("GET https://api.example/bot%s", sys.argv[3])
"""


def test_no_token_in_a_debug_log_from_the_first_line(tmp_path: Path) -> None:
    """A fresh process logging at DEBUG from its first line: building the Telegram bot logs its
    Bot API URL (PTB, at DEBUG) before redaction was installed; now nothing shows a token."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    migrate.upgrade(url)
    done = subprocess.run(
        [sys.executable, "-c", DEBUG_FROM_THE_START, url, TELEGRAM_TOKEN, ZALO_TOKEN],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    log = done.stdout + done.stderr
    assert "Set Bot API URL" in log and "GET https://api.example/bot<redacted>" in log
    for secret in (TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], ZALO_TOKEN):
        assert secret not in log
