"""Replies survive a platform outage (DESIGN.md, boundary 11), on Telegram and on Zalo.

The fake Bot API servers are switched to answering 502 and then back. While they are down, the
person's answers are still applied, the webhook still answers at once, and the replies are queued
in the outbox (in order; a newer one behind an older one, without being tried). When the fake is
back, the outbox sender (driven here) delivers each queued reply exactly once and in order; a
reply delivered at the first try is never recorded, so never sent again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from bot.channels.ratelimit import REPLY_BUDGET_SECONDS
from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.messages import Handled, Reply
from bot.messaging.outbox import OutboxSender, senders_for
from storage.db import Database
from storage.models import Contact, OutboxMessage
from storage.models_outreach import KIND_REPLY, Delivery
from tests.fakes.harness import TELEGRAM_TOKEN, ZALO_TOKEN, fake_api_served, running_bot
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.test_telegram import USER as TG_USER
from tests.test_telegram import TgUser
from tests.test_zalo import USER as ZALO_USER
from tests.test_zalo import ZaloUser


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with fake_api_served(FakeTelegram(TELEGRAM_TOKEN)) as api:
        yield api


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with fake_api_served(FakeZalo(ZALO_TOKEN)) as api:
        yield api


async def queued_replies(app: App) -> list[tuple[str, str]]:
    """(status, text) of every reply row in the outbox, in order."""
    async with app.db.sessions() as session:
        q = (
            select(Delivery.status, OutboxMessage.payload)
            .join(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
            .where(Delivery.kind == KIND_REPLY)
            .order_by(Delivery.outbox_id)
        )
        return [(status, payload["text"]) for status, payload in (await session.execute(q)).all()]


async def the_contact(app: App) -> Contact:
    async with app.db.sessions() as session:
        return (await session.execute(select(Contact))).scalar_one()


async def after_the_backoff(app: App) -> OutboxSender:
    """The outbox sender with the channels' own senders, once the first retry is due."""
    sender = OutboxSender(app, senders_for(app))
    assert await sender.drain() == 0  # the first retry waits for its backoff (60 s)
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(seconds=app.settings.outbox_retry_base_seconds + 1))
    return sender


async def test_telegram_replies_are_queued_during_an_outage_and_delivered_once_after(
    sqlite_db: Database, telegram: FakeTelegram
) -> None:
    async with running_bot(
        sqlite_db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=telegram.url
    ) as bot:
        app = bot.app
        user = TgUser(telegram)
        await user.say("/start")
        assert user.buttons == ["vi", "en"]

        telegram.down()
        started = time.monotonic()
        assert await user.press("en") == []  # the webhook answered 200 (TgUser checks), nothing sent
        assert time.monotonic() - started < REPLY_BUDGET_SECONDS
        assert (await the_contact(app)).locale == "en"  # the answer is applied
        (first,) = await queued_replies(app)
        assert first[0] == "queued" and "Do you agree?" in first[1]

        tried = len(telegram.calls_of("sendMessage"))
        await user.say("I agree")  # answers the question the person never saw arrive
        assert len(telegram.calls_of("sendMessage")) == tried  # queued behind, not even tried
        assert (await the_contact(app)).consent_at is not None
        queued = await queued_replies(app)
        assert [s for s, _ in queued] == ["queued", "queued"] and queued[0] == first

        telegram.up()
        sender = await after_the_backoff(app)
        assert await sender.drain() == 2
        texts = [m["text"] for m in telegram.sent(TG_USER)]
        delivered = [t for t in texts if t in {q for _, q in queued}]
        assert delivered == [q for _, q in queued]  # each once, in order
        assert [s for s, _ in await queued_replies(app)] == ["sent", "sent"]

        # Delivered at the first try: not recorded, so never sent again.
        before = len(telegram.sent(TG_USER))
        await user.say("/trogiup")
        assert len(telegram.sent(TG_USER)) > before
        assert len(await queued_replies(app)) == 2
        app.clock.advance(timedelta(hours=1))
        assert await sender.drain() == 0
        assert len(telegram.sent(TG_USER)) == len(user.last) + before


async def test_zalo_replies_are_queued_during_an_outage_and_delivered_once_after(
    sqlite_db: Database, zalo: FakeZalo
) -> None:
    options = {"zalo_token": ZALO_TOKEN, "zalo_api_base_url": zalo.url}
    async with running_bot(sqlite_db.url, webhook=True, **options) as bot:
        app = bot.app
        user = ZaloUser(zalo, bot)
        await user.say("/start")
        assert "1." in user.text and "2." in user.text

        zalo.down()
        started = time.monotonic()
        assert await user.say("2") == []  # English; the webhook answered 200 (ZaloUser checks)
        assert time.monotonic() - started < REPLY_BUDGET_SECONDS
        assert (await the_contact(app)).locale == "en"
        tried = len(zalo.calls_of("sendMessage"))
        await user.say("1")  # I agree
        assert len(zalo.calls_of("sendMessage")) == tried
        assert (await the_contact(app)).consent_at is not None
        queued = await queued_replies(app)
        assert [s for s, _ in queued] == ["queued", "queued"] and "Do you agree?" in queued[0][1]

        zalo.up()
        sender = await after_the_backoff(app)
        assert await sender.drain() == 2
        texts = [m["text"] for m in zalo.sent(ZALO_USER)]
        assert "Do you agree?" in texts[-2] and texts[-1].startswith(queued[1][1][:20])
        assert sum("Do you agree?" in t for t in texts) == 1
        assert [s for s, _ in await queued_replies(app)] == ["sent", "sent"]

        before = len(zalo.sent(ZALO_USER))
        await user.say("/trogiup")
        assert len(zalo.sent(ZALO_USER)) > before and len(await queued_replies(app)) == 2
        app.clock.advance(timedelta(hours=1))
        assert await sender.drain() == 0


async def test_a_reply_cut_off_halfway_queues_only_what_was_not_delivered(
    sqlite_db: Database, telegram: FakeTelegram
) -> None:
    """Of several replies to one message, those delivered before the outage are not queued."""
    async with running_bot(
        sqlite_db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=telegram.url
    ) as bot:
        app = bot.app
        channel = bot.runtime.telegram
        assert channel is not None
        user = TgUser(telegram)
        await user.say("/start")
        telegram.down(after=1)  # "one" goes through, then Telegram is gone
        contact = await the_contact(app)
        replies = [Reply("one"), Reply("two"), Reply("three")]
        await channel.sender.reply(str(TG_USER), Handled(replies, "vi", contact.id))
        telegram.up()
        assert [t for _, t in await queued_replies(app)] == ["two", "three"]
        sender = await after_the_backoff(app)
        assert await sender.drain() == 2
        assert [m["text"] for m in telegram.sent(TG_USER)][-3:] == ["one", "two", "three"]


async def test_a_reply_reads_nothing_the_step_already_knew(
    sqlite_db: Database, telegram: FakeTelegram
) -> None:
    """The step says who the person is and whether replies wait (Handled): sending runs no query,
    and with replies waiting the new ones are queued behind them without being tried."""
    async with running_bot(
        sqlite_db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=telegram.url
    ) as bot:
        app = bot.app
        channel = bot.runtime.telegram
        assert channel is not None
        await TgUser(telegram).say("/start")
        contact = await the_contact(app)
        statements: list[str] = []

        def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
            statements.append(statement)

        event.listen(app.db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            await channel.sender.reply(str(TG_USER), Handled([Reply("sent at once")], "vi", contact.id))
            assert statements == []
            assert telegram.sent(TG_USER)[-1]["text"] == "sent at once"

            tried = len(telegram.calls_of("sendMessage"))
            await channel.sender.reply(str(TG_USER), Handled([Reply("behind")], "vi", contact.id, True))
            assert len(telegram.calls_of("sendMessage")) == tried
        finally:
            event.remove(app.db.engine.sync_engine, "before_cursor_execute", seen)
        assert await queued_replies(app) == [("queued", "behind")]
