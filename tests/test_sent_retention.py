"""The retention period of sent messages (`sent_message_retention_days`): the nightly prune
deletes outbox rows and their deliveries once final and older than the period, never one still
queued or being sent; broadcasts keep their counts, so /tinhtrang and the console show the same
figures before and after; the web chat's poll carries on past a pruned row; /dulieu says how
long messages are kept. Both backends, fixed clock.

Before: every message sent stayed in `outbox` / `deliveries` forever (who got what, when).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.sending import Blocked, PermanentError
from bot.messaging.outbox import OutboxSender, send_outbox
from bot.messaging.retention import prune_expired
from bot.runtime.http import create_http_app
from bot.services.actor import Actor
from bot.services.broadcasts import (
    MEMBERS,
    OFFICERS,
    Audience,
    Counts,
    Message,
    delivery_counts,
    queue_broadcast,
)
from bot.services.personal_data import erase_personal_data
from storage.db import Database
from storage.models import OutboxMessage
from storage.models_outreach import BLOCKED, CANCELLED, FAILED, KIND_REMINDER, SENT, Delivery
from tests.fakes.fake_sink import RecordingSender
from tests.support import START, Chat, make_app, webchat_id
from tests.test_broadcast import World, build, contact_id, deliver, who

DAYS = 180  # the default


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    app = make_app(db.url, FixedClock(START))
    yield await build(app)
    await app.db.dispose()


def clock(app: App) -> FixedClock:
    assert isinstance(app.clock, FixedClock)
    return app.clock


async def outbox_ids(app: App) -> set[int]:
    async with app.db.sessions() as session:
        return set((await session.execute(select(OutboxMessage.id))).scalars())


async def delivery_ids(app: App) -> set[int]:
    async with app.db.sessions() as session:
        return set((await session.execute(select(Delivery.outbox_id))).scalars())


async def broadcast(
    world: World, text: str, groups: tuple[str, ...] = (MEMBERS, OFFICERS), send_at: timedelta | None = None
) -> int:
    """The commune officer's broadcast to their commune (m1, m2 and the village officer)."""
    app = world.app
    async with app.uow() as uow:
        officer, grants = await who(uow, "co")
        now = app.clock.now()
        at = None if send_at is None else now + send_at
        audience = Audience((world.tree.commune.id,), groups)
        b = await queue_broadcast(
            uow, Actor.of(officer, grants), audience, Message(text=text), now=now, send_at=at
        )
        await uow.commit()
        return b.id


async def counts(app: App, ids: list[int]) -> dict[int, Counts]:
    async with app.read_only() as reads:
        return await delivery_counts(reads, ids)


async def test_sent_messages_go_after_the_retention_period_never_waiting_ones(world: World) -> None:
    app = world.app
    assert app.settings.sent_message_retention_days == DAYS
    me = await contact_id(app, "vo")
    rows = [(me, "test", "vo", {"text": f"tin {n}"}) for n in range(6)]
    async with app.uow() as uow:
        now = app.clock.now()
        sent, failed, blocked, cancelled, queued, sending = await uow.outbox.insert(
            rows, kind=KIND_REMINDER, now=now, not_before=now + timedelta(days=400)
        )
        await uow.outbox.finish([sent], SENT, now, None)
        await uow.outbox.finish([failed], FAILED, now, "gave up")
        await uow.outbox.finish([blocked], BLOCKED, now, "blocked")
        await uow.outbox.finish([cancelled], CANCELLED, now, "opted out")
        await uow.outbox.mark_sending([sending], now, "another-instance")
        await uow.commit()
    clock(app).advance(timedelta(days=DAYS - 1))
    async with app.uow() as uow:
        (recent,) = await uow.outbox.insert(rows[:1], kind=KIND_REMINDER, now=app.clock.now())
        await uow.outbox.finish([recent], SENT, app.clock.now(), None)
        await uow.commit()
    assert await prune_expired(app) == 0  # 179 days: nothing yet

    clock(app).advance(timedelta(days=1, minutes=1))
    assert await prune_expired(app) == 4
    assert await outbox_ids(app) == {queued, sending, recent}
    assert await delivery_ids(app) == {queued, sending, recent}

    clock(app).advance(timedelta(days=365))  # whatever its age, a waiting row stays
    assert await prune_expired(app) == 1  # only `recent`
    assert await outbox_ids(app) == {queued, sending}


async def test_broadcast_counts_are_the_same_before_and_after_the_prune(world: World) -> None:
    app = world.app
    # Delivered: one blocked, one failed, one sent.
    done = await broadcast(world, "Thông báo họp")
    await deliver(app, RecordingSender(errors={"m1": [Blocked()], "m2": [PermanentError("bad chat")]}))
    # m1 blocked the bot: the next broadcasts go to two people.
    # Half way: one message in flight when the rest was cancelled (in flight counts as on its way).
    halfway = await broadcast(world, "Thông báo thứ hai")
    first = await OutboxSender(app, {"test": RecordingSender()}).claim("test", 1)
    assert len(first) == 1
    chat = Chat(app, "co")
    await chat.say(f"/tinhtrang huy {halfway}")
    await chat.press("yes")
    # Scheduled long after the retention period: queued all along.
    later = await broadcast(world, "Thông báo năm sau", send_at=timedelta(days=300))
    ids = [done, halfway, later]
    before = await counts(app, ids)
    assert [(c.sent, c.blocked, c.failed, c.queued, c.cancelled) for c in before.values()] == [
        (1, 1, 1, 0, 0),
        (0, 0, 0, 1, 1),
        (0, 0, 0, 2, 0),
    ]
    await chat.say("/status")
    status_before = chat.text

    clock(app).advance(timedelta(days=DAYS + 1))
    kept = await outbox_ids(app)
    await prune_expired(app)
    assert len(kept - await outbox_ids(app)) == 4  # the three of `done`, the cancelled one of `halfway`
    async with app.db.sessions() as session:
        by_broadcast = select(Delivery.broadcast_id, func.count()).group_by(Delivery.broadcast_id)
        left = dict((await session.execute(by_broadcast)).all())
    assert left == {halfway: 1, later: 2}
    assert await counts(app, ids) == before
    await chat.say("/status")
    assert chat.text == status_before
    await prune_expired(app)
    assert await counts(app, ids) == before  # a second night adds nothing

    # The message in flight ends (the sender died: in doubt, failed) and goes the next night,
    # added to the counts already kept for that broadcast.
    await OutboxSender(app, {"test": RecordingSender()}).recover()
    clock(app).advance(timedelta(days=1))
    await prune_expired(app)
    assert len(await outbox_ids(app)) == 2  # `later`'s
    after = await counts(app, ids)
    assert (after[halfway].failed, after[halfway].cancelled, after[halfway].total) == (1, 1, 2)
    assert after[done] == before[done] and after[later] == before[later]


async def test_counts_kept_in_several_batches_add_up(world: World) -> None:
    """Rows of one broadcast deleted one batch at a time: each batch adds to the same count."""
    app = world.app
    b = await broadcast(world, "Tin")
    await deliver(app)
    before = (await counts(app, [b]))[b]
    assert (before.sent, before.total) == (3, 3)
    clock(app).advance(timedelta(days=DAYS + 1))
    cutoff = app.clock.now() - timedelta(days=DAYS)
    for _ in range(3):
        async with app.uow() as uow:
            assert await uow.retention.prune_sent(cutoff, 1) == 1
            await uow.commit()
    assert (await counts(app, [b]))[b] == before
    assert await outbox_ids(app) == set()


async def test_erasing_a_recipient_leaves_the_broadcast_counts_whole(world: World) -> None:
    """/xoadulieu deletes the person's messages; the broadcast still counts the one it sent."""
    app = world.app
    b = await broadcast(world, "Tin", groups=(MEMBERS,))
    await deliver(app)
    before = (await counts(app, [b]))[b]
    assert before.sent == 2
    async with app.uow() as uow:
        member, grants = await who(uow, "m1")
        await erase_personal_data(uow, Actor.of(member, grants), member, app.clock.now())
        await uow.commit()
    async with app.db.sessions() as session:
        assert (await session.execute(select(func.count(Delivery.outbox_id)))).scalar_one() == 1
    assert (await counts(app, [b]))[b] == before


async def test_the_web_chat_poll_carries_on_past_pruned_messages(db: Database) -> None:
    """The page keeps its own history: a pruned row is simply not there any more, and a cursor
    pointing at it (or 0, a reloaded page) still brings what is newer."""
    app = make_app(db.url, FixedClock(START))
    try:
        client = "client-0123456789abcdef"
        stored = await webchat_id(app, client)
        async with app.uow() as uow:
            me = await uow.contacts.create("webchat", stored, app.clock.now())
            me.consent_at = app.clock.now()
            uow.outbox.add(me.id, "webchat", stored, {"text": "Tin cũ"}, app.clock.now())
            await uow.commit()
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_http_app(app)), base_url="http://t")
        async with api:

            async def poll(after: int) -> tuple[list[str], int]:
                r = await api.get("/api/webchat/poll", params={"client_id": client, "after": after})
                assert r.status_code == 200
                body = r.json()
                return [m["text"] for m in body["messages"]], body["last_id"]

            texts, old_cursor = await poll(0)
            assert texts == ["Tin cũ"]
            await send_outbox(app)  # the web chat's sender marks it sent
            clock(app).advance(timedelta(days=DAYS + 1))
            async with app.uow() as uow:
                uow.outbox.add(me.id, "webchat", stored, {"text": "Tin mới"}, app.clock.now())
                await uow.commit()
            assert await prune_expired(app) == 1
            texts, cursor = await poll(old_cursor)
            assert texts == ["Tin mới"] and cursor > old_cursor
            assert await poll(0) == (["Tin mới"], cursor)
    finally:
        await app.db.dispose()


async def test_my_data_says_how_long_messages_are_kept(world: World) -> None:
    chat = Chat(world.app, "m1")  # Vietnamese
    await chat.say("/dulieu")
    assert "Tin nhắn bot đã gửi anh/chị (lưu 180 ngày): 0" in chat.text
    chat = Chat(world.app, "m2")  # English
    await chat.say("/mydata")
    assert "Messages the bot sent you (kept 180 days): 0" in chat.text
