"""The outbox sender, on both backends: due rows delivered once, retries with backoff then
failure with the reason, 429s honoured, blocks recorded, one message at a time per chat, and
what happens to rows left "sending" by a process that died (bot/messaging/outbox.py explains why)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.sending import Blocked, PermanentError, RateLimited, TransientError
from bot.messaging.outbox import (
    IN_DOUBT_ERROR,
    OutboxSender,
    Outgoing,
    WebchatSender,
    enqueue,
    payload_replies,
    send_outbox,
)
from storage.db import Database
from storage.models import MEMBER, ChannelIdentity, OutboxMessage
from storage.models_outreach import (
    BLOCKED,
    FAILED,
    KIND_BROADCAST,
    KIND_REPLY,
    KIND_TIP,
    QUEUED,
    SENDING,
    SENT,
    Delivery,
)
from storage.repositories import OutboxRepository
from tests.fakes.fake_sink import RecordingSender
from tests.support import START, make_app, make_contact, seed_tree


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    application = make_app(db.url, FixedClock(START), outbox_concurrency=4)
    tree = await seed_tree(application)
    for n in range(1, 6):
        await make_contact(application, f"p{n}", MEMBER, tree.village)
    await make_contact(application, "w1", MEMBER, tree.village, channel="webchat")
    yield application
    await application.db.dispose()


async def contact_id(app: App, ext: str, channel: str = "test") -> int:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity(channel, ext)
        assert contact is not None
        return contact.id


async def queue(
    app: App,
    *externals: str,
    channel: str = "test",
    text: str = "hello",
    kind: str = KIND_BROADCAST,
    delay: timedelta | None = None,
) -> None:
    messages = [
        Outgoing(await contact_id(app, ext, channel), channel, ext, {"text": f"{text} {ext}"})
        for ext in externals
    ]
    async with app.uow() as uow:
        now = app.clock.now()
        await enqueue(uow, messages, kind=kind, now=now, not_before=now + delay if delay else None)
        await uow.commit()


async def statuses(app: App) -> dict[str, str]:
    """The latest row's status per recipient."""
    async with app.db.sessions() as session:
        q = (
            select(OutboxMessage.external_id, Delivery.status)
            .join(Delivery, Delivery.outbox_id == OutboxMessage.id)
            .order_by(OutboxMessage.id)
        )
        return {ext: status for ext, status in (await session.execute(q)).all()}


async def outbox_row(app: App, ext: str) -> OutboxMessage:
    async with app.db.sessions() as session:  # a plain read: the unit of work would expire it
        q = select(OutboxMessage).where(OutboxMessage.external_id == ext).order_by(OutboxMessage.id)
        return (await session.execute(q)).scalars().first()  # type: ignore[return-value]


async def test_due_rows_are_sent_once_and_later_ones_wait(app: App) -> None:
    await queue(app, "p1", "p2", "p3")
    await queue(app, "p4", delay=timedelta(hours=2))
    sender = RecordingSender()
    outbox = OutboxSender(app, {"test": sender})
    assert await outbox.drain() == 3
    assert sorted(sender.sent) == [("p1", "hello p1"), ("p2", "hello p2"), ("p3", "hello p3")]
    assert await outbox.drain() == 0  # nothing twice
    assert (await statuses(app))["p4"] == QUEUED
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(hours=2))
    assert await outbox.drain() == 1
    assert sender.sent[-1] == ("p4", "hello p4")
    row = await outbox_row(app, "p1")
    assert row.sent_at == app.clock.now() - timedelta(hours=2) and row.attempts == 1 and row.error is None


async def test_transient_failures_back_off_then_fail_with_the_reason(app: App) -> None:
    await queue(app, "p1", "p2")
    boom = [TransientError("HTTP 502")] * 10
    sender = RecordingSender(errors={"p1": [TransientError("HTTP 502")], "p2": list(boom)})
    outbox = OutboxSender(app, {"test": sender})
    assert isinstance(app.clock, FixedClock)
    assert await outbox.drain() == 0
    row = await outbox_row(app, "p1")
    assert row.attempts == 1 and row.error == "HTTP 502" and row.sent_at is None
    assert row.not_before == app.clock.now() + timedelta(seconds=60)  # the first backoff
    app.clock.advance(timedelta(seconds=59))
    assert await outbox.drain() == 0  # not yet
    app.clock.advance(timedelta(seconds=1))
    assert await outbox.drain() == 1  # p1 recovered on its second attempt
    for wait in (120, 240, 480):  # p2 keeps failing: 2 min, 4 min, 8 min…
        row = await outbox_row(app, "p2")
        assert row.not_before == app.clock.now() + timedelta(seconds=wait)
        app.clock.advance(timedelta(seconds=wait))
        await outbox.drain()
    row = await outbox_row(app, "p2")
    assert row.attempts == 5 and row.failed_at is not None
    assert row.error == "gave up after 5 attempts: HTTP 502"
    assert (await statuses(app)) == {"p1": SENT, "p2": FAILED}


async def test_rate_limited_rows_wait_without_losing_an_attempt(app: App) -> None:
    await queue(app, "p1")
    sender = RecordingSender(errors={"p1": [RateLimited(0.01)]})
    outbox = OutboxSender(app, {"test": sender})
    assert await outbox.drain() == 0
    row = await outbox_row(app, "p1")
    assert row.attempts == 0 and row.not_before is not None and row.sent_at is None
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(seconds=1))
    assert await outbox.drain() == 1


async def test_blocks_and_refusals_are_final(app: App) -> None:
    await queue(app, "p1", "p2", "p3")
    sender = RecordingSender(errors={"p1": [Blocked("blocked")], "p2": [PermanentError("HTTP 400")]})
    outbox = OutboxSender(app, {"test": sender})
    assert await outbox.drain() == 1
    assert await statuses(app) == {"p1": BLOCKED, "p2": FAILED, "p3": SENT}
    assert (await outbox_row(app, "p2")).error == "HTTP 400"
    async with app.uow() as uow:
        identity = (
            await uow.session.execute(select(ChannelIdentity).where(ChannelIdentity.external_id == "p1"))
        ).scalar_one()
        assert identity.blocked_at is not None
    # A later message to the person who blocked the bot is not even attempted.
    again = [Outgoing(await contact_id(app, "p1"), "test", "p1", {"text": "again"})]
    async with app.uow() as uow:
        await enqueue(uow, again, kind=KIND_TIP, now=app.clock.now())
        await uow.commit()
    await outbox.drain()
    assert [e for e, _ in sender.sent] == ["p3"]


async def test_one_message_at_a_time_per_chat_in_order(app: App) -> None:
    for n in range(3):
        await queue(app, "p1", "p2", text=f"m{n}")
    sender = RecordingSender(delay=0.01)
    assert await OutboxSender(app, {"test": sender}, concurrency=4).drain() == 6
    assert sender.max_in_flight_per_chat == 1
    assert sender.texts_for("p1") == ["m0 p1", "m1 p1", "m2 p1"]


async def test_web_chat_rows_are_marked_sent_without_a_platform_call(app: App) -> None:
    await queue(app, "w1", channel="webchat")
    await queue(app, "p1")  # no sender for "test" here: left alone
    outbox = OutboxSender(app, {"webchat": WebchatSender()})
    assert await outbox.drain() == 1
    assert await statuses(app) == {"w1": SENT, "p1": QUEUED}
    async with app.db.sessions() as session:  # the page still sees it (it polls every row)
        rows, _ = await OutboxRepository(session).pending_for("webchat", "w1", app.clock.now())
        assert [m.payload["text"] for m in rows] == ["hello w1"]


async def test_a_row_added_through_the_repository_has_its_delivery_and_is_sent(app: App) -> None:
    cid = await contact_id(app, "p5")
    async with app.uow() as uow:
        uow.outbox.add(cid, "test", "p5", {"text": "one-off"}, app.clock.now())
        await uow.commit()
    assert await statuses(app) == {"p5": QUEUED}
    sender = RecordingSender()
    assert await OutboxSender(app, {"test": sender}).drain() == 1
    assert sender.sent == [("p5", "one-off")]


async def _leave_in_flight(app: App, *externals: str) -> None:
    """What a sender killed mid-send leaves behind: rows claimed `sending` by another process."""
    await queue(app, *externals)
    claimed = await OutboxSender(app, {"test": RecordingSender()}, instance_id="dead").claim("test", 10)
    assert len(claimed) == len(externals)


async def test_in_doubt_rows_are_resent_with_their_key_where_the_channel_deduplicates(app: App) -> None:
    await _leave_in_flight(app, "p1", "p2")
    async with app.uow() as uow:
        keys = {k for (k,) in (await uow.session.execute(select(Delivery.idempotency_key))).all()}
    sender = RecordingSender(idempotent=True)
    outbox = OutboxSender(app, {"test": sender})
    recovery = await outbox.recover()
    assert (recovery.requeued, recovery.in_doubt) == (2, 0)
    assert await outbox.drain() == 2
    assert set(sender.keys) == keys  # the same keys: the channel recognises them


async def test_in_doubt_rows_are_not_resent_by_default_elsewhere(app: App) -> None:
    await _leave_in_flight(app, "p1")
    sender = RecordingSender()
    outbox = OutboxSender(app, {"test": sender})
    assert (await outbox.recover()).in_doubt == 1
    assert await outbox.drain() == 0 and sender.sent == []
    row = await outbox_row(app, "p1")
    assert row.error == IN_DOUBT_ERROR and row.failed_at is not None
    assert await statuses(app) == {"p1": FAILED}


async def test_in_doubt_rows_can_be_resent_instead(db: Database) -> None:
    app = make_app(db.url, FixedClock(START), outbox_in_doubt="resend")
    try:
        tree = await seed_tree(app)
        await make_contact(app, "p1", MEMBER, tree.village)
        await _leave_in_flight(app, "p1")
        sender = RecordingSender()
        outbox = OutboxSender(app, {"test": sender})
        assert (await outbox.recover()).requeued == 1
        assert await outbox.drain() == 1
    finally:
        await app.db.dispose()


async def test_stale_claims_only_while_running(app: App) -> None:
    await _leave_in_flight(app, "p1")
    outbox = OutboxSender(app, {"test": RecordingSender(idempotent=True)})
    stale = timedelta(minutes=10)
    assert (await outbox.recover(older_than=stale)).requeued == 0  # claimed just now: maybe alive
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(minutes=11))
    assert (await outbox.recover(older_than=stale)).requeued == 1
    assert (await statuses(app))["p1"] == QUEUED


async def test_a_claim_is_committed_before_the_send(app: App) -> None:
    await queue(app, "p1")
    seen: list[str] = []

    class Peeking(RecordingSender):
        async def send(self, external_id: str, replies: list) -> None:  # type: ignore[type-arg]
            seen.append((await statuses(app))[external_id])  # read from another session
            await super().send(external_id, replies)

    await OutboxSender(app, {"test": Peeking()}).drain()
    assert seen == [SENDING]


def test_payload_images_come_from_the_content_folder(tmp_path: object) -> None:
    from tests.support import CONTENT

    replies = payload_replies({"text": "x", "image": "../pyproject.toml"}, CONTENT)
    assert replies[0].attachments == []  # nothing outside content/
    replies = payload_replies({"text": "x", "options": [{"id": "cmd:tin", "label": "News"}]}, CONTENT)
    assert replies[0].options[0].id == "cmd:tin"


async def test_several_messages_to_one_person_go_out_in_the_order_queued(app: App) -> None:
    cid = await contact_id(app, "p1")
    texts = [f"part {n}" for n in range(12)]
    async with app.uow() as uow:
        queued = await enqueue(
            uow,
            [Outgoing(cid, "test", "p1", {"text": t}) for t in texts],
            kind=KIND_TIP,
            now=app.clock.now(),
        )
        await uow.commit()
    assert len(queued) == 12
    sender = RecordingSender()
    assert await OutboxSender(app, {"test": sender}, concurrency=4).drain() == 12
    assert sender.texts_for("p1") == texts


async def test_a_notice_is_queued_once_whoever_queues_it_again(app: App) -> None:
    """The notice keys make a scheduled message idempotent; a message to each of a person's
    channels under the same key shares its fate."""
    p1, p2 = await contact_id(app, "p1"), await contact_id(app, "p2")
    first = [
        Outgoing(p1, "test", "p1", {"text": "a"}, ("tip:2026-11-22",)),
        Outgoing(p1, "webchat", "w-p1", {"text": "a"}, ("tip:2026-11-22",)),
        Outgoing(p2, "test", "p2", {"text": "b"}, ("tip:2026-11-22",)),
    ]
    for expected in (3, 0):
        async with app.uow() as uow:
            queued = await enqueue(uow, first, kind=KIND_TIP, now=app.clock.now())
            await uow.commit()
        assert len(queued) == expected
    async with app.uow() as uow:  # one new key of two is enough: it is a new message
        again = Outgoing(p1, "test", "p1", {"text": "c"}, ("tip:2026-11-22", "tip:2026-11-29"))
        assert len(await enqueue(uow, [again], kind=KIND_TIP, now=app.clock.now())) == 1


async def test_the_scheduler_job_sends_with_the_channels_senders_and_recovers_old_claims(app: App) -> None:
    await queue(app, "w1", channel="webchat")
    await _leave_in_flight(app, "p1")  # a claim by a sender that died…
    await queue(app, "p2")
    sender = RecordingSender(idempotent=True)
    app.senders["test"] = sender  # what the composition root puts there from the channels
    assert await send_outbox(app) == 2  # w1 and p2; p1 might still be in a live run's hands
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(minutes=3))  # …longer ago than a run lasts: recovered, resent
    assert await send_outbox(app) == 1
    assert sorted(e for e, _ in sender.sent) == ["p1", "p2"]


def test_the_jobs_are_registered_for_the_scheduler() -> None:
    from bot.runtime.scheduler import default_jobs

    jobs = default_jobs()
    assert {"outreach.weekly_tips", "outreach.lifelong_learning_week", "outbox.send"} <= set(jobs)
    assert jobs["outbox.send"].func is send_outbox


async def test_a_compiled_report_goes_out_with_its_file(app: App) -> None:
    """Reports queue their .xlsx by reference (`attach`); the sender reads it back."""
    from bot.domain.messages import Attachment
    from bot.messaging.outbox import attach

    xlsx = Attachment("bao-cao.xlsx", "application/vnd.ms-excel", b"PK\x03\x04 workbook bytes")
    cid = await contact_id(app, "p1")
    async with app.uow() as uow:
        payload = await attach(uow, {"text": "Báo cáo 6 tháng"}, [xlsx], app.clock.now())
        assert payload["attachments"][0]["file_id"] and "data" not in payload["attachments"][0]
        message = Outgoing(cid, "test", "p1", payload)
        assert len(await enqueue(uow, [message], kind="period_report", now=app.clock.now())) == 1
        await uow.commit()
    sender = RecordingSender()
    assert await OutboxSender(app, {"test": sender}).drain() == 1
    assert sender.sent == [("p1", "Báo cáo 6 tháng")]
    assert sender.attachments == [("p1", "bao-cao.xlsx", xlsx.data)]


async def queue_replies(app: App, ext: str, *texts: str, tried: bool = False) -> None:
    """Replies the channel could not deliver in the request (bot/channels/ratelimit.py)."""
    cid = await contact_id(app, ext)
    async with app.uow() as uow:
        now = app.clock.now()
        await enqueue(
            uow,
            [Outgoing(cid, "test", ext, {"text": t}) for t in texts],
            kind=KIND_REPLY,
            now=now,
            not_before=now + timedelta(seconds=60) if tried else None,
            attempts=1 if tried else 0,
        )
        await uow.commit()


async def test_replies_go_out_ahead_of_bulk_rows(app: App) -> None:
    await queue(app, "p1", "p2", "p3", "p4")
    await queue_replies(app, "p5", "your answer was saved")
    sender = RecordingSender()
    assert await OutboxSender(app, {"test": sender}, concurrency=1).drain() == 5
    assert sender.sent[0] == ("p5", "your answer was saved")


async def test_a_reply_waiting_for_its_retry_holds_back_the_later_ones_of_its_chat(app: App) -> None:
    await queue_replies(app, "p1", "first", tried=True)  # failed in the request: due in 60 s
    await queue_replies(app, "p1", "second", "third")  # queued behind it
    await queue(app, "p1", text="news")  # other kinds are not held back
    sender = RecordingSender()
    outbox = OutboxSender(app, {"test": sender})
    assert await outbox.drain() == 1 and sender.sent == [("p1", "news p1")]
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(seconds=60))
    assert await outbox.drain() == 3
    assert sender.texts_for("p1") == ["news p1", "first", "second", "third"]
