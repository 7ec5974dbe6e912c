"""The web chat's HTTP API through an in-process ASGI transport: validation, translation,
once-only processing of retried POSTs, polling the outbox, and the health check."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from bot.channels.webchat import channel as webchat
from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.messages import Attachment, Incoming, Kind, Option, Reply
from bot.domain.settings import Settings
from bot.runtime.bootstrap import bootstrap
from bot.runtime.http import ACCESS_LOGGER, RedactClientIds, create_http_app, install_log_redaction
from bot.services.incoming import Handled
from storage.db import Database
from storage.migrate import upgrade
from storage.models import ChannelIdentity, DialogueState
from tests.support import make_app, webchat_id

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
CONTENT = Path(__file__).resolve().parent.parent / "content"
CLIENT = "client_0123456789abcdef"
OTHER = "client-fedcba9876543210"
MESSAGES = "/api/webchat/messages"


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[App]:
    await asyncio.to_thread(upgrade, sqlite_url)
    application = bootstrap(
        Settings(database_url=sqlite_url, content_dir=str(CONTENT)), clock=FixedClock(NOW)
    ).app
    yield application
    await application.db.dispose()


class Recorder:
    """A stand-in for the service: records what the channel passed on, answers predictably."""

    def __init__(self) -> None:
        self.seen: list[Incoming] = []

    async def __call__(self, app: App, msg: Incoming) -> Handled:
        self.seen.append(msg)
        replies = [
            Reply("Xin chào!\nChọn một mục:", options=[Option("a", "Mục A"), Option("b", "Mục B")]),
            Reply("Tệp", attachments=[Attachment("r.csv", "text/csv", b"x,y\n1,2\n")]),
        ]
        return Handled(replies, "vi")


def client_for(app: App, recorder: Recorder | None = None) -> httpx.AsyncClient:
    routers = None if recorder is None else [webchat.create_router(app, handle=recorder)]
    api = create_http_app(app, routers=routers)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def fake(app: App, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, recorder) as client:
        yield client


@pytest.fixture
async def real(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


# ----------------------------------------------------------------------------- health and page


async def test_health_checks_the_database(real: httpx.AsyncClient) -> None:
    r = await real.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


class _DownEngine:
    def connect(self) -> None:
        raise OSError("database down")


async def test_health_reports_an_unreachable_database(app: App) -> None:
    engine = app.db.engine
    app.db.engine = _DownEngine()  # type: ignore[assignment]
    try:
        async with client_for(app, Recorder()) as client:
            r = await client.get("/health")
    finally:
        app.db.engine = engine
    assert r.status_code == 503
    assert r.json()["status"] == "error"


async def test_page_is_served_with_a_strict_content_security_policy(
    real: httpx.AsyncClient,
) -> None:
    r = await real.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "Khuyến học Bot" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "connect-src 'self'" in csp
    # The policy allows exactly the page's own inline script by its hash.
    script = re.search(r"<script>(.*?)</script>", r.text, flags=re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_page_uses_no_network_resources(real: httpx.AsyncClient) -> None:
    html = (await real.get("/")).text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html


async def test_webchat_can_be_disabled(app: App) -> None:
    app.settings.webchat_enabled = False
    async with client_for(app) as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.post(MESSAGES, json={"client_id": CLIENT, "text": "hi"})).status_code == 404
        assert (await client.get("/health")).status_code == 200


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "client_id",
    [
        "",
        "short",
        "x" * 15,
        "x" * 65,
        "has space in it 12345",
        "dấu-tiếng-việt-123456",
        "a/b" * 8,
        None,
        12,
    ],
)
async def test_bad_client_id_is_refused(
    fake: httpx.AsyncClient, recorder: Recorder, client_id: object
) -> None:
    r = await fake.post(MESSAGES, json={"client_id": client_id, "text": "xin chào"})
    assert r.status_code == 422
    assert recorder.seen == []


async def test_client_id_bounds_are_accepted(app: App, fake: httpx.AsyncClient, recorder: Recorder) -> None:
    for client_id in ("a" * 16, "Z9_-" * 16):
        r = await fake.post(MESSAGES, json={"client_id": client_id, "text": "hi"})
        assert r.status_code == 200, r.text
    assert [m.external_id for m in recorder.seen] == [
        await webchat_id(app, "a" * 16),
        await webchat_id(app, "Z9_-" * 16),
    ]


async def test_missing_client_id_and_bad_message_id_are_refused(
    fake: httpx.AsyncClient, recorder: Recorder
) -> None:
    assert (await fake.post(MESSAGES, json={"text": "hi"})).status_code == 422
    bad = {"client_id": CLIENT, "text": "hi", "message_id": "no spaces please"}
    assert (await fake.post(MESSAGES, json=bad)).status_code == 422
    assert (await fake.post(MESSAGES, json={"client_id": CLIENT})).status_code == 422
    assert (await fake.post(MESSAGES, content=b"not json")).status_code == 422
    assert recorder.seen == []


async def test_bad_poll_parameters_are_refused(fake: httpx.AsyncClient) -> None:
    assert (await fake.get("/api/webchat/poll", params={"client_id": "short"})).status_code == 422
    assert (await fake.get("/api/webchat/poll")).status_code == 422
    params = {"client_id": CLIENT, "after": "-1"}
    assert (await fake.get("/api/webchat/poll", params=params)).status_code == 422


async def test_a_poll_cursor_past_the_largest_id_is_refused_not_a_server_error(db: Database) -> None:
    """Found by tests/test_fuzz_http.py: `after=2**63` overflowed the database driver (a 500 on
    both backends). Outbox ids are 64-bit signed integers: a cursor past them is refused."""
    application = make_app(db.url)
    try:
        async with client_for(application) as client:
            for after in (2**63, 10**30):
                params = {"client_id": CLIENT, "after": str(after)}
                assert (await client.get("/api/webchat/poll", params=params)).status_code == 422
            params = {"client_id": CLIENT, "after": str(2**63 - 1)}
            r = await client.get("/api/webchat/poll", params=params)
            assert r.status_code == 200 and r.json()["messages"] == []
    finally:
        await application.db.dispose()


# ----------------------------------------------------------------------------- translation


async def test_text_becomes_an_incoming_text_message(
    app: App, fake: httpx.AsyncClient, recorder: Recorder
) -> None:
    r = await fake.post(
        MESSAGES, json={"client_id": CLIENT, "text": "Xin chào\nbot", "message_id": "m1234567"}
    )
    assert r.status_code == 200
    (msg,) = recorder.seen
    stored = await webchat_id(app, CLIENT)  # the id's keyed hash: the raw id stays in the browser
    assert len(stored) == 64 and CLIENT not in stored
    assert msg == Incoming(
        channel="webchat",
        external_id=stored,
        kind=Kind.TEXT,
        text="Xin chào\nbot",
        update_id=f"{stored}:m1234567",
        client_address="127.0.0.1",  # for the limits per address
    )


async def test_option_becomes_an_incoming_option(fake: httpx.AsyncClient, recorder: Recorder) -> None:
    r = await fake.post(MESSAGES, json={"client_id": CLIENT, "option_id": "lang:vi"})
    assert r.status_code == 200
    (msg,) = recorder.seen
    assert msg.kind is Kind.OPTION
    assert msg.option_id == "lang:vi"
    assert msg.update_id is None


async def test_long_text_is_cut_before_the_engine(fake: httpx.AsyncClient, recorder: Recorder) -> None:
    r = await fake.post(MESSAGES, json={"client_id": CLIENT, "text": "a" * 25_000})
    assert r.status_code == 200
    assert len(recorder.seen[0].text) == 20_000


async def test_replies_are_rendered_as_json(fake: httpx.AsyncClient) -> None:
    r = await fake.post(MESSAGES, json={"client_id": CLIENT, "text": "hi"})
    body = r.json()
    first, second = body["replies"]
    assert first["text"] == "Xin chào!\nChọn một mục:"
    assert first["options"] == [{"id": "a", "label": "Mục A"}, {"id": "b", "label": "Mục B"}]
    (att,) = second["attachments"]
    assert att["filename"] == "r.csv"
    assert att["content_type"] == "text/csv"
    assert base64.b64decode(att["data"]) == b"x,y\n1,2\n"


async def test_client_id_never_reaches_the_logs(
    fake: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await fake.post(MESSAGES, json={"client_id": CLIENT, "text": "hi"})
    await fake.get("/api/webchat/poll", params={"client_id": CLIENT})
    ours = [r for r in caplog.records if r.name.split(".")[0] in {"bot", "storage", "uvicorn"}]
    assert all(CLIENT not in r.getMessage() for r in ours)


def test_access_log_lines_hide_the_client_id(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    install_log_redaction()
    access = logging.getLogger(ACCESS_LOGGER)
    assert sum(isinstance(f, RedactClientIds) for f in access.filters) == 1
    with caplog.at_level("INFO", logger=ACCESS_LOGGER):
        # uvicorn's own format and arguments
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/api/webchat/poll?client_id={CLIENT}&after=3",
            "1.1",
            200,
        )
        # the console's one-time login link
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/console/login?token={CLIENT}", "1.1", 200
        )
    line, console = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert CLIENT not in line
    assert f"client_id=#{webchat.short_id(CLIENT)}&after=3" in line
    assert CLIENT not in console
    assert f"/console/login?token=#{webchat.short_id(CLIENT)}" in console


# ----------------------------------------------------------------------------- the real service


async def _state(app: App) -> tuple[str | None, dict[str, object] | None]:
    async with app.db.sessions() as s:
        row = (
            await s.execute(
                select(DialogueState)
                .join(ChannelIdentity, ChannelIdentity.contact_id == DialogueState.contact_id)
                .where(
                    ChannelIdentity.channel == "webchat",
                    ChannelIdentity.external_id == await webchat_id(app, CLIENT),
                )
            )
        ).scalar_one_or_none()
        return (row.flow, dict(row.state)) if row is not None else (None, None)


async def test_a_retried_post_is_processed_once(app: App, real: httpx.AsyncClient) -> None:
    first = await real.post(
        MESSAGES, json={"client_id": CLIENT, "text": "/start", "message_id": "start-0001"}
    )
    assert first.status_code == 200
    replies = first.json()["replies"]
    assert replies and replies[-1]["options"], replies
    state_after_start = await _state(app)

    option = replies[-1]["options"][0]["id"]
    body = {"client_id": CLIENT, "option_id": option, "message_id": "choice-0001"}
    once = await real.post(MESSAGES, json=body)
    assert once.status_code == 200
    assert once.json()["replies"]
    state_after_choice = await _state(app)
    assert state_after_choice != state_after_start

    again = await real.post(MESSAGES, json=body)
    assert again.status_code == 200
    assert again.json() == {"replies": []}
    assert await _state(app) == state_after_choice


async def test_the_same_message_id_from_another_client_is_not_a_duplicate(
    real: httpx.AsyncClient,
) -> None:
    for client_id in (CLIENT, OTHER):
        r = await real.post(
            MESSAGES, json={"client_id": client_id, "text": "/start", "message_id": "same-0001"}
        )
        assert r.json()["replies"], client_id


# ----------------------------------------------------------------------------- polling the outbox


async def test_poll_returns_this_clients_queued_messages(app: App, real: httpx.AsyncClient) -> None:
    client, other = await webchat_id(app, CLIENT), await webchat_id(app, OTHER)
    async with app.uow() as uow:
        mine = await uow.contacts.create("webchat", client, NOW)
        theirs = await uow.contacts.create("webchat", other, NOW)
        uow.outbox.add(mine.id, "webchat", client, {"text": "Tin thứ nhất", "options": []}, NOW)
        uow.outbox.add(theirs.id, "webchat", other, {"text": "Không phải của bạn"}, NOW)
        payload = {"text": "Tin thứ hai", "options": [{"id": "ok", "label": "Đồng ý"}]}
        uow.outbox.add(mine.id, "webchat", client, payload, NOW)
        await uow.commit()

    r = await real.get("/api/webchat/poll", params={"client_id": CLIENT})
    assert r.status_code == 200
    body = r.json()
    assert [m["text"] for m in body["messages"]] == ["Tin thứ nhất", "Tin thứ hai"]
    assert body["messages"][1]["options"] == [{"id": "ok", "label": "Đồng ý"}]
    assert body["last_id"] == body["messages"][-1]["id"]

    r = await real.get("/api/webchat/poll", params={"client_id": CLIENT, "after": body["last_id"]})
    assert r.json() == {"messages": [], "last_id": body["last_id"]}

    r = await real.get("/api/webchat/poll", params={"client_id": "nobody-has-this-id-0000"})
    assert r.json() == {"messages": [], "last_id": 0}


async def test_poll_delivers_the_file_of_a_compiled_report(app: App, real: httpx.AsyncClient) -> None:
    data = b"PK\x03\x04 workbook"
    client = await webchat_id(app, CLIENT)
    async with app.uow() as uow:
        mine = await uow.contacts.create("webchat", client, NOW)
        file = {"filename": "bao-cao.xlsx", "content_type": "application/octet-stream"}
        payload = {"text": "Báo cáo", "attachments": [{**file, "data_b64": base64.b64encode(data).decode()}]}
        uow.outbox.add(mine.id, "webchat", client, payload, NOW)
        await uow.commit()
    (message,) = (await real.get("/api/webchat/poll", params={"client_id": CLIENT})).json()["messages"]
    assert message["text"] == "Báo cáo"
    assert [(a["filename"], base64.b64decode(a["data"])) for a in message["attachments"]] == [
        ("bao-cao.xlsx", data)
    ]


async def test_poll_holds_a_scheduled_message_until_it_is_due(app: App, real: httpx.AsyncClient) -> None:
    """A broadcast scheduled for tomorrow is not shown today, and is not skipped tomorrow;
    a message the outbox gave up on (the member opted out) is never shown."""
    client = await webchat_id(app, CLIENT)
    async with app.uow() as uow:
        mine = await uow.contacts.create("webchat", client, NOW)
        tomorrow = NOW + timedelta(days=1)
        uow.outbox.add(mine.id, "webchat", client, {"text": "Ngày mai"}, NOW, not_before=tomorrow)
        uow.outbox.add(mine.id, "webchat", client, {"text": "Hôm nay"}, NOW)
        uow.outbox.add(mine.id, "webchat", client, {"text": "Đã hủy"}, NOW)
        await uow.session.flush()
        cancelled = (await uow.outbox.pending_for("webchat", client, NOW))[0][-1]
        cancelled.failed_at = NOW
        await uow.commit()

    today = (await real.get("/api/webchat/poll", params={"client_id": CLIENT})).json()
    assert [m["text"] for m in today["messages"]] == ["Hôm nay"]
    again = (
        await real.get("/api/webchat/poll", params={"client_id": CLIENT, "after": today["last_id"]})
    ).json()
    assert [m["text"] for m in again["messages"]] == ["Hôm nay"]  # the page skips ids it has shown

    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(days=1))
    later = (
        await real.get("/api/webchat/poll", params={"client_id": CLIENT, "after": today["last_id"]})
    ).json()
    assert [m["text"] for m in later["messages"]] == ["Ngày mai", "Hôm nay"]
    done = (
        await real.get("/api/webchat/poll", params={"client_id": CLIENT, "after": later["last_id"]})
    ).json()
    assert done["messages"] == []
