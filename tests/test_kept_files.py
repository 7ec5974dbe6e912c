"""Issue 10, item 3: compiled files stay available in the web chat, to their owner, for a while.

Before, a file lived only in the page that received it: after a reload the history showed
"📎 bao-cao-….xlsx" as plain text. Now each file a web chat user receives is kept on the server
under an unguessable id bound to their contact; GET /api/webchat/files/{id} with their client id
returns it (and 404 to anyone else, after log out, or once kept_file_days have passed), and the
nightly retention job deletes it then. Both backends, the real service and HTTP app in process.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.messages import Attachment
from bot.messaging.report_delivery import send_period_reports
from bot.messaging.retention import prune_expired
from bot.runtime.http import create_http_app
from bot.services.actor import CONSOLE
from bot.services.files import keep_files
from bot.services.personal_data import erase_personal_data
from storage.db import Database
from storage.models import COMMUNE_OFFICER
from storage.models_files import KeptFile
from storage.models_reports import ReportFile
from tests.support import Tree, make_app, make_contact, seed_tree, webchat_id
from tests.test_reports_helpers import outbox_to, submit, vn

CLIENT = "officer_0123456789abcdef"
OTHER = "someone-fedcba9876543210"
HEADER = "X-Webchat-Client"
NOW = vn(2026, 6, 16, 8, 30)  # the day after the H1 deadline: compiled reports go out


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url, FixedClock(NOW), kept_file_days=30)
    try:
        yield app
    finally:
        await app.db.dispose()


@pytest.fixture
async def http(app: App) -> AsyncIterator[httpx.AsyncClient]:
    api = create_http_app(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test") as client:
        yield client


async def officers(app: App) -> Tree:
    """A commune officer on the web chat, another web chat user, and H1 reports to compile."""
    tree = await seed_tree(app)
    await make_contact(app, await webchat_id(app, CLIENT), COMMUNE_OFFICER, tree.commune, channel="webchat")
    await make_contact(app, await webchat_id(app, OTHER), None, None, channel="webchat")
    await submit(app, tree.village, "2025", vn(2025, 11, 20), households_total=100, lf_recognized=70)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100, lf_registered=80)
    return tree


async def get(http: httpx.AsyncClient, url: str, client_id: str | None) -> httpx.Response:
    headers = {HEADER: client_id} if client_id is not None else {}
    return await http.get("/" + url, headers=headers)


async def test_a_file_in_a_reply_downloads_again_for_its_owner_only(
    app: App, http: httpx.AsyncClient
) -> None:
    await officers(app)
    r = await http.post("/api/webchat/messages", json={"client_id": CLIENT, "text": "/baocaotonghop"})
    assert r.status_code == 200
    r = await http.post("/api/webchat/messages", json={"client_id": CLIENT, "option_id": "2026-H1"})
    report = r.json()["replies"][0]
    files = report["attachments"]
    types = [f["content_type"] for f in files]  # the document(s) to file, then the charts
    assert types[0] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert types.count("image/png") == 4 and types[-4:] == ["image/png"] * 4
    for f in files:  # shown at once from the answer, and downloadable again by its link
        assert f["data"] and re.fullmatch(r"api/webchat/files/[A-Za-z0-9_-]{32}", f["url"])
        got = await get(http, f["url"], CLIENT)
        assert got.status_code == 200
        assert got.content == base64.b64decode(f["data"])
        assert got.headers["content-type"] == f["content_type"]
        assert got.headers["content-disposition"].startswith(f'attachment; filename="{f["filename"]}"')
        assert got.headers["cache-control"] == "private, no-store"
    xlsx = files[0]["url"]
    assert len({f["url"] for f in files}) == len(files)  # every file its own id
    # Anyone else: the same answer as for a file that does not exist.
    for who in (OTHER, "never-seen-0123456789", None, "bad id"):
        assert (await get(http, xlsx, who)).status_code == 404, who
    assert (await get(http, "api/webchat/files/" + "A" * 32, CLIENT)).status_code == 404
    # Until kept_file_days have passed, then never again.
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(NOW + timedelta(days=29, hours=23))
    assert (await get(http, xlsx, CLIENT)).status_code == 200
    clock.set(NOW + timedelta(days=30, minutes=1))
    assert (await get(http, xlsx, CLIENT)).status_code == 404


async def test_logging_out_ends_the_links(app: App, http: httpx.AsyncClient) -> None:
    await officers(app)
    await http.post("/api/webchat/messages", json={"client_id": CLIENT, "text": "/baocaotonghop"})
    r = await http.post("/api/webchat/messages", json={"client_id": CLIENT, "option_id": "2026-H1"})
    url = r.json()["replies"][0]["attachments"][0]["url"]
    assert (await get(http, url, CLIENT)).status_code == 200
    assert (await http.post("/api/webchat/logout", json={"client_id": CLIENT})).json() == {"revoked": True}
    assert (await get(http, url, CLIENT)).status_code == 404


async def test_a_report_sent_after_the_deadline_comes_as_links(app: App, http: httpx.AsyncClient) -> None:
    """The period report job queues it; the page polls it: links instead of bytes, the files
    stored once for every recipient, a download id per web chat recipient."""
    tree = await officers(app)
    await make_contact(app, "telegram-officer", COMMUNE_OFFICER, tree.commune)  # the test channel
    assert await send_period_reports(app) == 2
    (queued,) = await outbox_to(app, "telegram-officer")
    assert all("kept" not in a for a in queued["attachments"])  # other channels get the files themselves
    r = await http.get("/api/webchat/poll", params={"client_id": CLIENT})
    (message,) = r.json()["messages"]
    assert "Phường Thục Phán" in message["text"]
    files = message["attachments"]
    assert len(files) == len(queued["attachments"]) >= 5
    assert all(f["data"] is None for f in files)  # the poll reads no bytes
    stored = {a["filename"]: a["file_id"] for a in queued["attachments"]}
    async with app.read_only() as reads:
        for f in files:
            got = await get(http, f["url"], CLIENT)
            assert got.status_code == 200
            row = await reads.files.get(stored[f["filename"]])
            assert row is not None and got.content == row.data
    assert (await get(http, files[0]["url"], OTHER)).status_code == 404
    assert (await http.get("/api/webchat/poll", params={"client_id": OTHER})).json()["messages"] == []


async def count(app: App, model: Any) -> int:
    async with app.db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_the_retention_job_deletes_expired_files_and_nothing_else(app: App) -> None:
    await officers(app)
    stored = await webchat_id(app, CLIENT)  # outside the unit of work: it may write the key
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("webchat", stored)
        assert contact is not None
        old = [Attachment("cu.xlsx", "application/octet-stream", b"old report")]
        shared = [Attachment("chung.png", "image/png", b"shared chart")]
        await keep_files(uow, contact.id, old + shared, NOW)
        await uow.commit()
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(NOW + timedelta(days=20))
    async with app.uow() as uow:  # the same chart again, for a new message: used, not stored twice
        (fresh,) = await keep_files(uow, contact.id, shared, clock.now())
        await uow.commit()
    assert await count(app, ReportFile) == 2 and await count(app, KeptFile) == 3
    clock.set(NOW + timedelta(days=31))
    await prune_expired(app)
    async with app.db.sessions() as session:
        kept = list((await session.execute(select(KeptFile))).scalars())
        files = list((await session.execute(select(ReportFile.filename))).scalars())
    assert [k.id for k in kept] == [fresh]  # the two links of day 0 expired
    assert files == ["chung.png"]  # the old report went; the chart is still held
    clock.set(NOW + timedelta(days=51))
    await prune_expired(app)
    assert await count(app, KeptFile) == 0 and await count(app, ReportFile) == 0
    async with app.uow() as uow:  # the officer is untouched
        assert await uow.contacts.by_identity("webchat", stored) is not None


async def test_a_personal_data_export_is_never_kept_and_erasure_forgets_the_links(app: App) -> None:
    await officers(app)
    stored = await webchat_id(app, CLIENT)  # outside the unit of work: it may write the key
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("webchat", stored)
        assert contact is not None
        export = Attachment("du-lieu.json", "application/json", b"{}", keep=False)
        report = Attachment("bao-cao.xlsx", "application/octet-stream", b"report")
        keys = await keep_files(uow, contact.id, [export, report], NOW)
        await uow.commit()
    assert keys[0] is None and keys[1] is not None
    assert await count(app, KeptFile) == 1
    stored = await webchat_id(app, CLIENT)  # outside the unit of work: it may write the key
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("webchat", stored)
        assert contact is not None
        erased = await erase_personal_data(uow, CONSOLE, contact, NOW)
        await uow.commit()
    assert erased.counts["kept_files"] == 1
    assert await count(app, KeptFile) == 0


async def test_a_stranger_pruned_for_never_consenting_takes_their_files_along(app: App) -> None:
    stranger = await webchat_id(app, "stranger-0123456789abcdef")
    async with app.uow() as uow:
        contact = await uow.contacts.create("webchat", stranger, NOW)
        await keep_files(uow, contact.id, [Attachment("x.csv", "text/csv", b"a,b")], NOW)
        await uow.commit()
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(NOW + timedelta(days=app.settings.unconsented_contact_retention_days + 1))
    await prune_expired(app)  # before, the kept file's row held the contact: a foreign key error
    async with app.uow() as uow:
        assert await uow.contacts.by_identity("webchat", stranger) is None
    assert await count(app, KeptFile) == 0
