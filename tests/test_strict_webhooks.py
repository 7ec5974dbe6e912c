"""Issue 11, items 5 and 11: strict webhooks, and bad text that reached the catch-all error.

Once the secret is right a webhook body is still only data: every shape that is no update gets a
400 (logged once, without its content), never a 500 — a JSON array gave a 500, deep nesting a
RecursionError, and Zalo stored a list as a chat id. The web chat API answers such bodies with a
4xx too. A lone surrogate or a NUL byte, on any channel and either database, gets a normal
answer; one already kept in a dialogue no longer fails every message until /huy; and a period
like "9999" typed for a compiled report gets a clear answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from bot.domain.app import App
from bot.domain.messages import Incoming, Kind
from storage.db import Database
from storage.models import COMMUNE_OFFICER, VILLAGE_OFFICER, ChannelIdentity, Contact
from tests.fakes.harness import TELEGRAM_TOKEN, ZALO_TOKEN, Running, eventually, fake_api_served, running_bot
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.support import VILLAGE_REPORT_ANSWERS, Chat, make_app, make_contact, seed_tree, webchat_id

SORRY = "Xin lỗi, hệ thống đang gặp sự cố"
SORRY_EN = "Sorry, something went wrong"
USER = 424242
ZALO_USER = "zalo-user-0001"
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"update_id": 1, "message": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}"


def telegram_message(**message: Any) -> dict[str, Any]:
    base = {"message_id": 1, "date": 1, "chat": {"id": USER, "type": "private"}, "text": "hi"}
    return {"update_id": 99, "message": {**base, **message}}


TELEGRAM_BODIES = {
    "array": b"[]",
    "string": b'"update"',
    "deep nesting": DEEP,
    "deep object": DEEP_OBJECT,
    "not json": b"{nope",
    "not utf-8": b'{"update_id": 1, "x": "\xff"}',
    "no update id": json.dumps({"message": telegram_message()["message"]}).encode(),
    "text update id": json.dumps({"update_id": "x"}).encode(),
    "list as chat id": json.dumps(telegram_message(chat={"id": [USER], "type": "private"})).encode(),
    "object as text": json.dumps(telegram_message(text={"a": 1})).encode(),
    "entities PTB cannot read": json.dumps(telegram_message(entities="not a list")).encode(),
}
ZALO_BODIES = {
    "array": b"[]",
    "deep nesting": DEEP,
    "deep object": b'{"event_name": "message.text.received", "message": '
    + b'{"a": ' * 3000
    + b"1"
    + b"}" * 3000
    + b"}",
    "not json": b"{nope",
    "list as chat id": json.dumps(
        {
            "event_name": "message.text.received",
            "message": {
                "message_id": "m1",
                "chat": {"id": [ZALO_USER]},
                "from": {"id": ZALO_USER},
                "text": "hi",
            },
        }
    ).encode(),
    "object as sender": json.dumps(
        {"event_name": "message.text.received", "message": {"from": {"id": {"a": 1}}, "text": "hi"}}
    ).encode(),
    "wrapped array": json.dumps({"ok": True, "result": []}).encode(),
}


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "webhook body refused" in r.getMessage()]


# ----------------------------------------------------------------------------- Telegram


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with fake_api_served(FakeTelegram(TELEGRAM_TOKEN)) as api:
        yield api


@pytest.fixture
async def telegram_bot(db: Database, telegram: FakeTelegram) -> AsyncIterator[Running]:
    async with running_bot(
        db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=telegram.url
    ) as running:
        yield running


async def test_telegram_bodies_that_are_no_update_get_a_400(
    telegram_bot: Running, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    channel = telegram_bot.runtime.telegram
    assert channel is not None
    headers = {"X-Telegram-Bot-Api-Secret-Token": channel.secret, "Content-Type": "application/json"}
    caplog.set_level(logging.WARNING)
    async with httpx.AsyncClient(timeout=30) as client:
        for name, body in TELEGRAM_BODIES.items():
            caplog.clear()
            r = await client.post(f"{telegram_bot.url}/telegram/webhook", content=body, headers=headers)
            assert r.status_code == 400, name
            assert len(refusals(caplog)) == 1, name  # one line, no traceback
            assert not [rec for rec in caplog.records if rec.exc_info], name
        ok = await client.post(
            f"{telegram_bot.url}/telegram/webhook", json=telegram.text_update(USER, "/start"), headers=headers
        )
    assert ok.status_code == 200 and len(telegram.sent(USER)) == 1
    async with telegram_bot.app.db.sessions() as session:
        ids = (await session.execute(select(ChannelIdentity.external_id))).scalars().all()
    assert ids == [str(USER)]


@pytest.mark.parametrize("bad", ["\ud800", "\x00"], ids=["surrogate", "nul"])
async def test_telegram_surrogates_and_nul_get_a_normal_answer(
    telegram_bot: Running, telegram: FakeTelegram, bad: str
) -> None:
    update = telegram.text_update(USER, f"xin{bad} chào", first_name=f"Lan{bad}")
    body = json.dumps(update).encode()  # "\ud800" and "\u0000" as JSON escapes, as a client may send
    channel = telegram_bot.runtime.telegram
    assert channel is not None
    headers = {"X-Telegram-Bot-Api-Secret-Token": channel.secret, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{telegram_bot.url}/telegram/webhook", content=body, headers=headers)
    assert r.status_code == 200
    await eventually(lambda: len(telegram.sent(USER)) == 1)
    assert "Xin chào" in telegram.sent(USER)[0]["text"]


# ----------------------------------------------------------------------------- Zalo


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with fake_api_served(FakeZalo(ZALO_TOKEN)) as api:
        yield api


@pytest.fixture
async def zalo_bot(db: Database, zalo: FakeZalo) -> AsyncIterator[Running]:
    async with running_bot(
        db.url, webhook=True, zalo_token=ZALO_TOKEN, zalo_api_base_url=zalo.url
    ) as running:
        yield running


async def test_zalo_bodies_that_are_no_update_get_a_400(
    zalo_bot: Running, zalo: FakeZalo, caplog: pytest.LogCaptureFixture
) -> None:
    channel = zalo_bot.runtime.zalo
    assert channel is not None
    headers = {"X-Bot-Api-Secret-Token": channel.secret, "Content-Type": "application/json"}
    caplog.set_level(logging.WARNING)
    async with httpx.AsyncClient(timeout=30) as client:
        for name, body in ZALO_BODIES.items():
            caplog.clear()
            r = await client.post(f"{zalo_bot.url}/zalo/webhook", content=body, headers=headers)
            assert r.status_code == 400, name
            assert len(refusals(caplog)) == 1, name
    assert zalo.sent() == []
    async with zalo_bot.app.db.sessions() as session:
        assert (await session.execute(select(func.count(Contact.id)))).scalar_one() == 0


@pytest.mark.parametrize("bad", ["\ud800", "\x00"], ids=["surrogate", "nul"])
async def test_zalo_surrogates_and_nul_get_a_normal_answer(
    zalo_bot: Running, zalo: FakeZalo, bad: str
) -> None:
    update = zalo.update(ZALO_USER, f"xin{bad} chào", name=f"Lan{bad}")
    channel = zalo_bot.runtime.zalo
    assert channel is not None
    headers = {"X-Bot-Api-Secret-Token": channel.secret, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:  # "\ud800" and "\u0000" as JSON escapes
        r = await client.post(f"{zalo_bot.url}/zalo/webhook", content=json.dumps(update), headers=headers)
    assert r.status_code == 200
    (answer,) = zalo.sent(ZALO_USER)
    assert "Xin chào" in answer["text"]
    async with zalo_bot.app.db.sessions() as session:
        (name,) = (await session.execute(select(Contact.display_name))).scalars()
    assert name == "Lan"


async def test_a_polled_zalo_update_that_is_no_update_is_skipped(db: Database, zalo: FakeZalo) -> None:
    async with running_bot(
        db.url, webhook=False, zalo_token=ZALO_TOKEN, zalo_api_base_url=zalo.url
    ) as running:
        channel = running.runtime.zalo
        assert channel is not None
        bad = zalo.update(ZALO_USER, "/start", chat_id="x")
        bad["message"]["chat"]["id"] = [ZALO_USER]
        assert await zalo.deliver(bad) == 0
        assert await zalo.deliver(zalo.update(ZALO_USER, "/start")) == 0
        await eventually(lambda: channel.polled == 2)
    assert len(zalo.sent(ZALO_USER)) == 1
    async with running.app.db.sessions() as session:
        ids = (await session.execute(select(ChannelIdentity.external_id))).scalars().all()
    assert ids == [ZALO_USER]


# ----------------------------------------------------------------------------- the web chat API


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    application = make_app(db.url)
    try:
        yield application
    finally:
        await application.db.dispose()


def webchat(app: App) -> httpx.AsyncClient:
    from bot.runtime.http import create_http_app

    transport = httpx.ASGITransport(app=create_http_app(app), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


CLIENT = "0123456789abcdef0123456789abcdef"
WEBCHAT_BODIES = {
    "array": b"[]",
    "deep nesting": DEEP,
    "deep object": b'{"client_id": "'
    + CLIENT.encode()
    + b'", "text": '
    + b'{"a": ' * 3000
    + b"1"
    + b"}" * 3000
    + b"}",
    "list as client id": json.dumps({"client_id": [CLIENT], "text": "hi"}).encode(),
    "object as text": json.dumps({"client_id": CLIENT, "text": {"a": 1}}).encode(),
    "not json": b"{nope",
    "not utf-8": b'{"client_id": "' + CLIENT.encode() + b'", "text": "\xff"}',
}


async def test_web_chat_bodies_that_are_no_message_get_a_4xx(app: App) -> None:
    async with webchat(app) as client:
        for name, body in WEBCHAT_BODIES.items():
            r = await client.post(
                "/api/webchat/messages", content=body, headers={"Content-Type": "application/json"}
            )
            assert 400 <= r.status_code < 500, (name, r.status_code)
    async with app.db.sessions() as session:
        assert (await session.execute(select(func.count(Contact.id)))).scalar_one() == 0


@pytest.mark.parametrize("bad", ["\ud800", "\x00"], ids=["surrogate", "nul"])
async def test_web_chat_surrogates_and_nul_get_a_normal_answer(app: App, bad: str) -> None:
    async with webchat(app) as client:
        body = json.dumps({"client_id": CLIENT, "text": f"xin{bad} chào", "message_id": "msg-00001"})
        r = await client.post(
            "/api/webchat/messages", content=body, headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 200
    assert "Xin chào" in r.json()["replies"][0]["text"]


# ----------------------------------------------------------------------------- the service, every field


@pytest.mark.parametrize("bad", ["\ud800", "\x00", "\udfff\x07"], ids=["surrogate", "nul", "low surrogate"])
@pytest.mark.parametrize("field", ["text", "display_name", "update_id", "external_id", "option_id"])
async def test_bad_text_in_any_field_gets_a_normal_answer(app: App, bad: str, field: str) -> None:
    """Before, a lone surrogate in the display name, the update id or the person's id, or a NUL
    in any of them on PostgreSQL, gave the catch-all error."""
    fields: dict[str, Any] = {"text": "hi", "display_name": "Lan", "update_id": "u1", "external_id": "p1"}
    fields[field] = fields.get(field, "lang:vi") + bad
    kind = Kind.OPTION if field == "option_id" else Kind.TEXT
    handled = await app.handle(Incoming("test", kind=kind, **fields))
    texts = "\n".join(r.text for r in handled.replies)
    assert texts and SORRY not in texts and SORRY_EN not in texts


# ----------------------------------------------------------------------------- a bad value already kept


async def _replace_in_state(app: App, marker: str, escape: str) -> None:
    """Put `escape` (a JSON escape such as \\u0000) where `marker` is in the stored dialogue, as
    a version that did not clean text may have left it."""
    replaced = "replace(state, :m, :e)"
    if app.db.dialect == "postgresql":
        replaced = f"CAST({replaced.replace('state', 'CAST(state AS TEXT)', 1)} AS JSON)"
    async with app.uow() as uow:
        await uow.session.execute(
            text(f"UPDATE dialogue_states SET state = {replaced}"), {"m": marker, "e": escape}
        )
        await uow.commit()


async def test_a_nul_kept_in_the_dialogue_no_longer_fails_every_message(app: App) -> None:
    """PostgreSQL refused the village name with a NUL at every try, until /huy."""
    tree = await seed_tree(app)
    await make_contact(app, "c1", COMMUNE_OFFICER, tree.commune, "en")
    chat = Chat(app, "c1")
    await chat.say("/thon")
    await chat.press("add")
    await chat.say("Thôn NULMARK Mới")
    assert "village or a residential group" in chat.text
    await _replace_in_state(app, "NULMARK", "\\u0000")
    await chat.press("village")
    assert "Added: Thôn Mới" in chat.text
    async with app.uow() as uow:
        names = [u.name for u in await uow.units.children(tree.commune.id, ("village",))]
    assert "Thôn Mới" in names


async def test_a_surrogate_kept_in_the_dialogue_no_longer_fails_every_message(sqlite_db: Database) -> None:
    """SQLite kept a lone surrogate in a stored answer (PostgreSQL's json refuses it outright);
    every web chat reply that showed it failed to encode: a 500 at every message until /huy."""
    app = make_app(sqlite_db.url)
    try:
        tree = await seed_tree(app)
        stored = await webchat_id(app, CLIENT)
        await make_contact(app, stored, VILLAGE_OFFICER, tree.village, "en", channel="webchat")
        chat = Chat(app, stored, channel="webchat")
        await chat.say("/report")
        await chat.press("2026")
        for answer in VILLAGE_REPORT_ANSWERS[:-1]:
            await chat.say(answer)
        await chat.say("Ghi chú SURROGATE")
        assert "Please check your report" in chat.text and "SURROGATE" in chat.text
        await _replace_in_state(app, "SURROGATE", "\\ud800")
        async with webchat(app) as client:
            for n in range(2):  # before: a 500 both times
                # /help shows the open question again as it was asked: the whole summary (an
                # answer that is no choice gets only "Send this report?" again since issue 10).
                body = {"client_id": CLIENT, "text": "/help", "message_id": f"msg-0000{n}"}
                r = await client.post("/api/webchat/messages", json=body)
                assert r.status_code == 200, r.text
                assert "Please check your report" in r.text and "Ghi chú" in r.text
    finally:
        await app.db.dispose()


# ----------------------------------------------------------------------------- an out-of-range period


@pytest.mark.parametrize("typed", ["9999", "9998", "1900", "2027", "2030-H1", "tháng sau"])
async def test_a_period_no_report_can_cover_gets_a_clear_answer(app: App, typed: str) -> None:
    tree = await seed_tree(app)
    await make_contact(app, "c1", COMMUNE_OFFICER, tree.commune, "en")
    chat = Chat(app, "c1")
    await chat.say("/summary")
    await chat.say(typed)
    assert f"“{typed}” is not a period with a report. Type a year from 1996 to 2026" in chat.text
    assert "2026" in chat.option_ids  # the choices again
    await chat.say("2025")  # and a period in range is made
    assert "Year 2025" in chat.text and chat.replies[0].attachments


async def test_the_clear_answer_in_vietnamese(app: App) -> None:
    tree = await seed_tree(app)
    await make_contact(app, "c1", COMMUNE_OFFICER, tree.commune, "vi")
    chat = Chat(app, "c1")
    await chat.say("/baocaotonghop")
    await chat.say("9999")
    assert "“9999” không phải là kỳ có báo cáo. Anh/chị gõ một năm từ 1996 đến 2026" in chat.text
