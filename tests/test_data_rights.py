"""Data rights (issue 11, finding 12; Law 91/2025/QH15): a person sees what the bot keeps about
them (/dulieu), withdraws consent and has it deleted (/xoadulieu), and saying no at /start keeps
nothing. Through the service layer on SQLite and PostgreSQL; the whole of it is also a
transcript (tests/dialogues/data_rights.yaml).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.domain.app import App
from bot.domain.permissions import NotAllowed, load_grants
from bot.runtime.cli import app as cli
from bot.services.actor import CONSOLE, Actor
from bot.services.personal_data import erase_personal_data, personal_data
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    MEMBER,
    VILLAGE_OFFICER,
    AuditEntry,
    ChannelIdentity,
    Contact,
    DialogueState,
    OutboxMessage,
    RoleGrant,
    Submission,
)
from storage.models_outreach import Delivery, Notice, SentItem, Subscription
from tests.support import CONTENT, Chat, Tree, make_app, make_contact, seed_tree


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    application = make_app(db.url)
    yield application
    await application.db.dispose()


@pytest.fixture
async def tree(app: App) -> Tree:
    return await seed_tree(app)


async def contact_id(app: App, channel: str, external_id: str) -> int:
    async with app.uow() as uow:
        found = await uow.contacts.by_identity(channel, external_id)
        assert found is not None
        return found.id


async def officer_with_a_past(app: App, tree: Tree) -> int:
    """A village officer known by name, on Telegram and the web chat, with two report versions,
    topics, articles sent, a notice, a queued message and an unfinished dialogue."""
    await make_contact(app, "tg-7", VILLAGE_OFFICER, tree.village, channel="telegram")
    cid = await contact_id(app, "telegram", "tg-7")
    now = app.clock.now()
    async with app.uow() as uow:
        contact = await uow.contacts.get(cid)
        assert contact is not None
        contact.display_name = "Nông Thị Lan"
        uow.session.add(
            ChannelIdentity(contact_id=cid, channel="webchat", external_id="browser-key-1", created_at=now)
        )
        for version in (1, 2):
            await uow.submissions.add_version(
                Submission(
                    form_key="village_report",
                    record_key=f"{tree.village.id}:2026-H1",
                    unit_id=tree.village.id,
                    period="2026-H1",
                    values={"households_total": 120 + version},
                    submitted_by_contact_id=cid,
                    submitted_at=now,
                    channel="telegram",
                    version=0,
                )
            )
        sub = await uow.subscriptions.ensure(cid, now)
        sub.topics = ["reading"]
        await uow.sent_items.record([(cid, "xa-hoi-hoc-tap")], now)
        await uow.notices.record([(cid, "reminder:village_report:2026-H1:1")], now)
        uow.outbox.add(cid, "telegram", "tg-7", {"text": "Nhắc báo cáo"}, now)
        await uow.dialogues.save(cid, "form", {"phase": "field", "answers": {"households_total": 99}}, now)
        await uow.commit()
    return cid


async def count(app: App, model: Any, *where: Any) -> int:
    async with app.db.sessions() as session:
        q = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(q)).scalar_one())


# ----------------------------------------------------------------------------- /dulieu


async def test_my_data_shows_what_is_kept_with_a_file(app: App, tree: Tree) -> None:
    cid = await officer_with_a_past(app, tree)
    chat = Chat(app, "tg-7", channel="telegram")
    await chat.say("/huy")  # leave the unfinished report aside; it stays stored
    await chat.say("/dulieu")
    text = chat.text
    for shown in (
        "Nông Thị Lan",
        "Anh/chị đã đồng ý cho bot lưu dữ liệu ngày 22/11/2026",
        "Telegram (từ 22/11/2026)",
        "trang trò chuyện trên web",
        "Cán bộ thôn, tổ dân phố (chi hội trưởng khuyến học): Thôn Nà Rụa",
        "Số báo cáo anh/chị đã gửi: 2",
        "/xoadulieu",
    ):
        assert shown in text, shown
    [reply] = [r for r in chat.replies if r.attachments]
    [file] = reply.attachments
    assert file.filename == "du-lieu-ca-nhan-2026-11-22.json" and file.content_type == "application/json"
    doc = json.loads(file.data.decode("utf-8"))
    assert doc["contact"]["display_name"] == "Nông Thị Lan" and doc["contact"]["id"] == cid
    assert doc["contact"]["consent_at"].startswith("2026-11-22")
    chats = {c["channel"]: c["external_id"] for c in doc["chats"]}
    assert chats == {"telegram": "tg-7", "webchat": None}  # the browser's key is a credential: never shown
    assert [(r["role"], r["unit"]) for r in doc["roles"]] == [(VILLAGE_OFFICER, "Thôn Nà Rụa")]
    assert doc["subscription"]["topics"] == ["reading"]
    assert [(r["version"], r["values"]["households_total"]) for r in doc["reports"]] == [(1, 121), (2, 122)]
    assert doc["messages_kept"]["count"] == 1
    async with app.uow() as uow:
        [shown_row] = await uow.audit.actions("contact.data_shown")
    assert shown_row.contact_id == cid


async def test_someone_not_registered_can_see_their_data_too(app: App) -> None:
    chat = Chat(app, "zl-new", channel="zalo")
    await chat.say("/mydata")
    assert "chưa đồng ý" in chat.text and "Zalo" in chat.text


async def test_nobody_sees_or_deletes_another_persons_data(app: App, tree: Tree) -> None:
    victim = await officer_with_a_past(app, tree)
    await make_contact(app, "nosy", MEMBER, tree.village)
    async with app.uow() as uow:
        nosy = await uow.contacts.by_identity("test", "nosy")
        target = await uow.contacts.get(victim)
        assert nosy is not None and target is not None
        actor = Actor.of(nosy, await load_grants(uow, nosy.id))
        with pytest.raises(NotAllowed):
            await personal_data(uow, actor, target, app.clock.now())
        with pytest.raises(NotAllowed):
            await erase_personal_data(uow, actor, target, app.clock.now())
    assert await count(app, ChannelIdentity, ChannelIdentity.contact_id == victim) == 2


# ----------------------------------------------------------------------------- /xoadulieu


async def test_delete_my_data_after_a_confirmation(app: App, tree: Tree) -> None:
    cid = await officer_with_a_past(app, tree)
    chat = Chat(app, "tg-7", channel="telegram")
    await chat.say("/huy")
    await chat.say("/xoadulieu")
    assert "Các báo cáo anh/chị đã gửi vẫn được giữ" in chat.text
    assert "không còn là Cán bộ thôn, tổ dân phố (chi hội trưởng khuyến học) của Thôn Nà Rụa" in chat.text
    assert chat.option_ids == ["erase", "keep"]
    await chat.press("keep")
    assert "Không xóa gì cả" in chat.text
    assert await count(app, ChannelIdentity, ChannelIdentity.contact_id == cid) == 2

    await chat.say("/deletemydata")
    await chat.say("có")
    assert "dữ liệu của anh/chị đã được xóa" in chat.text

    for model, column in (
        (ChannelIdentity, ChannelIdentity.contact_id),
        (RoleGrant, RoleGrant.contact_id),
        (Subscription, Subscription.contact_id),
        (SentItem, SentItem.contact_id),
        (Notice, Notice.contact_id),
        (OutboxMessage, OutboxMessage.contact_id),
        (Delivery, Delivery.contact_id),
        (Submission, Submission.submitted_by_contact_id),
    ):
        assert await count(app, model, column == cid) == 0, model.__tablename__
    async with app.db.sessions() as session:
        stub = await session.get(Contact, cid)
        dialogue = await session.get(DialogueState, cid)
        reports = (await session.execute(select(Submission).order_by(Submission.version))).scalars().all()
        [erased] = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "contact.erase"))
        ).scalars()
    assert stub is not None  # the audit rows point at it; it names nobody
    assert (stub.display_name, stub.consent_at, stub.home_unit_id, stub.last_seen_at) == (
        None,
        None,
        None,
        None,
    )
    assert dialogue is None or (dialogue.flow is None and dialogue.state == {})
    # The reports stay, as the unit's records, in the role they were filed in.
    assert [(r.version, r.unit_id, r.submitted_by_role) for r in reports] == [
        (1, tree.village.id, VILLAGE_OFFICER),
        (2, tree.village.id, VILLAGE_OFFICER),
    ]
    assert erased.contact_id == cid and erased.detail["submissions"] == 2
    assert erased.detail["channel_identities"] == 2

    await chat.say("xin chào")  # the same chat again: a stranger, from the start
    assert "Xin chào! Mời anh/chị chọn ngôn ngữ" in chat.text
    assert await contact_id(app, "telegram", "tg-7") != cid


async def test_the_console_erases_on_a_written_request(app: App, tree: Tree) -> None:
    cid = await officer_with_a_past(app, tree)
    async with app.uow() as uow:
        contact = await uow.contacts.get(cid)
        assert contact is not None
        await erase_personal_data(uow, CONSOLE, contact, app.clock.now())
        await uow.commit()
    async with app.uow() as uow:
        [row] = await uow.audit.actions("contact.erase")
    assert row.contact_id == cid and row.detail["by"] == "console"
    assert await count(app, ChannelIdentity, ChannelIdentity.contact_id == cid) == 0


# ----------------------------------------------------------------------------- consent


async def test_declining_consent_keeps_nothing(app: App) -> None:
    chat = Chat(app, "zl-1", channel="zalo")
    await chat.say("xin chào")
    await chat.say("1")  # Tiếng Việt
    # The consent names the purpose, what is stored, for how long, and how to withdraw.
    for said in ("báo cáo số liệu", "tên và mã tài khoản", "thời gian anh/chị dùng", "/dulieu", "/xoadulieu"):
        assert said in chat.text, said
    await chat.say("không")
    assert "bot không lưu thông tin gì về anh/chị" in chat.text
    assert await count(app, Contact) == 0
    assert await count(app, ChannelIdentity) == 0
    assert await count(app, DialogueState) == 0


async def test_declining_after_agreeing_earlier_keeps_the_registration(app: App, tree: Tree) -> None:
    await make_contact(app, "u1", VILLAGE_OFFICER, tree.village)
    chat = Chat(app, "u1")
    await chat.say("/start")
    await chat.press("vi")
    await chat.press("no")
    assert "/xoadulieu" in chat.text
    assert await count(app, RoleGrant) == 1
    await chat.say("/toi")
    assert "Thôn Nà Rụa" in chat.text


# ----------------------------------------------------------------------------- the console


def test_khuyenhoc_contact_show_and_erase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request made by letter: the admin exports the person's data, then erases it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)

    async def seed() -> None:
        app = make_app(url)
        try:
            await officer_with_a_past(app, await seed_tree(app))
        finally:
            await app.db.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CONTENT_DIR", str(CONTENT))
    runner = CliRunner()
    out = tmp_path / "lan.json"
    who = ["--channel", "telegram", "--id", "tg-7"]
    shown = runner.invoke(cli, ["contact", "show", *who, "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert json.loads(out.read_text(encoding="utf-8"))["contact"]["display_name"] == "Nông Thị Lan"
    refused = runner.invoke(cli, ["contact", "erase", *who])
    assert refused.exit_code != 0 and "--yes" in refused.output
    erased = runner.invoke(cli, ["contact", "erase", *who, "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "channel_identities 2" in erased.output and "submissions 2" in erased.output
    unknown = runner.invoke(cli, ["contact", "show", *who])
    assert unknown.exit_code != 0  # nobody has that id any more
