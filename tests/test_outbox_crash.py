"""A broadcast survives SIGKILL halfway through sending, on a real SQLite file.

The sender runs as its own process (tests/fakes/outbox_worker.py) against the fake channel
server (tests/fakes/fake_sink.py). When half the recipients have been served, the server kills
the sender with SIGKILL *after* counting a message and *before* answering it: that message
is delivered but the sender never learns it, the worst moment. A second run recovers.

* A channel that deduplicates resends by key: every recipient gets the message exactly once.
* A channel that cannot (Telegram, Zalo) with the default `outbox_in_doubt = "skip"`: nobody
  gets it twice; only the rows in flight at the crash are given up, and they are the only
  ones that can be missing. This is the honest limit of a non-transactional remote call.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.messaging.outbox import IN_DOUBT_ERROR
from bot.services.actor import Actor
from bot.services.broadcasts import Audience, Message, queue_broadcast
from storage.models import COMMUNE_OFFICER, MEMBER, OutboxMessage
from storage.models_outreach import FAILED, SENT, Delivery
from tests.fakes.fake_sink import FakeSink
from tests.support import START, Tree, make_app, make_contact, seed_tree

WORKER = Path(__file__).parent / "fakes" / "outbox_worker.py"
RECIPIENTS = 120
CONCURRENCY = 4


async def seed(app: App) -> Tree:
    """A commune officer and RECIPIENTS members on the fake channel, and the broadcast queued."""
    tree = await seed_tree(app)
    await make_contact(app, "officer", COMMUNE_OFFICER, tree.commune)
    now = app.clock.now()
    async with app.uow() as uow:
        for n in range(RECIPIENTS):
            contact = await uow.contacts.create("sink", f"r{n:03d}", now)
            contact.consent_at = now
            await uow.contacts.grant(contact.id, MEMBER, tree.village.id, now)
        await uow.commit()
    from bot.domain.permissions import load_grants

    async with app.uow() as uow:
        officer = await uow.contacts.by_identity("test", "officer")
        assert officer is not None
        grants = await load_grants(uow, officer.id)
        b = await queue_broadcast(
            uow,
            Actor.of(officer, grants),
            Audience((tree.commune.id,)),
            Message(text="Họp chi hội tối thứ bảy"),
            now=now,
        )
        assert b.recipients == RECIPIENTS
        await uow.commit()
    return tree


async def run_worker(db_url: str, sink_url: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "--db",
        db_url,
        "--sink",
        sink_url,
        "--now",
        START.isoformat(),
        "--concurrency",
        str(CONCURRENCY),
        "--batch",
        "10",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def crash_and_restart(app: App, db_url: str, sink: FakeSink, *extra: str) -> dict[str, int]:
    """Kill the sender at the half-way delivery, run it again to the end; the second run's report."""
    url = await sink.start()
    try:
        first = await run_worker(db_url, url, *extra)
        pid = first.pid

        def kill_halfway(total: int) -> None:
            if total == RECIPIENTS // 2:
                os.kill(pid, signal.SIGKILL)

        sink.on_delivery = kill_halfway
        await asyncio.wait_for(first.wait(), 60)
        assert first.returncode == -signal.SIGKILL, (await first.stderr.read()).decode()  # type: ignore[union-attr]
        sink.on_delivery = None
        async with app.db.sessions() as session:
            left = (
                await session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
            ).all()
        assert dict(left).get(SENT, 0) < RECIPIENTS  # really killed halfway, not after the end

        second = await run_worker(db_url, url, *extra)
        out, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 0, err.decode()
        report: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
        return report
    finally:
        await sink.stop()


@pytest.fixture
async def app(sqlite_db: object, sqlite_url: str) -> App:
    application = make_app(sqlite_url, FixedClock(START))
    await seed(application)
    yield application  # type: ignore[misc]
    await application.db.dispose()


async def test_sigkill_halfway_every_recipient_gets_it_exactly_once(app: App, sqlite_url: str) -> None:
    sink = FakeSink(latency=0.002)
    report = await crash_and_restart(app, sqlite_url, sink)
    recipients = {f"r{n:03d}" for n in range(RECIPIENTS)}
    assert set(sink.delivered) == recipients
    assert all(n == 1 for n in sink.delivered.values()), sink.delivered.most_common(3)
    # The message the server counted just before the kill was in doubt, was sent again with its
    # key, and was recognised: that is what makes it exactly once.
    assert report["requeued"] >= 1 and sink.duplicates >= 1
    assert sink.duplicates <= report["requeued"] <= CONCURRENCY * 10
    async with app.db.sessions() as session:
        statuses = dict(
            (await session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))).all()
        )
        unsent = (
            await session.execute(select(func.count()).where(OutboxMessage.sent_at.is_(None)))
        ).scalar_one()
    assert statuses == {SENT: RECIPIENTS} and unsent == 0


async def test_sigkill_halfway_without_deduplication_nobody_gets_it_twice(app: App, sqlite_url: str) -> None:
    sink = FakeSink(latency=0.002)
    report = await crash_and_restart(app, sqlite_url, sink, "--no-idempotent")
    assert max(sink.delivered.values()) == 1  # at most once, whatever happened
    assert sum(sink.requests.values()) == sink.total  # and nothing was even sent twice
    async with app.db.sessions() as session:
        rows = (
            await session.execute(
                select(OutboxMessage.external_id, Delivery.status, OutboxMessage.error).join(
                    Delivery, Delivery.outbox_id == OutboxMessage.id
                )
            )
        ).all()
    in_doubt = {ext for ext, status, error in rows if status == FAILED and error == IN_DOUBT_ERROR}
    assert {status for _, status, _ in rows} <= {SENT, FAILED}
    assert len(in_doubt) == report["in_doubt"] and 1 <= len(in_doubt) <= CONCURRENCY
    missing = {f"r{n:03d}" for n in range(RECIPIENTS)} - set(sink.delivered)
    assert missing <= in_doubt  # only messages in flight at the crash can be missing
    assert len(sink.delivered) >= RECIPIENTS - CONCURRENCY
