"""GET /metrics, in Prometheus' text format, after real work: dialogue steps over the Zalo
webhook, a 429 from the (fake) platform, outbox sends by the real job, the scheduler's lease,
the outbox's depth read at scrape time, and a dialogue error. Each app counts on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.messaging.outbox import Outgoing, enqueue, send_outbox
from bot.runtime.http import create_http_app
from bot.runtime.scheduler import Scheduler
from storage.db import Database
from storage.models import MEMBER
from storage.models_outreach import KIND_BROADCAST
from tests.fakes.harness import ZALO_TOKEN, Running, fake_api_served, running_bot
from tests.fakes.zalo_api import FakeZalo
from tests.support import Chat, make_app, make_contact, seed_tree
from tests.test_reports_off_hot_path import ReadGate, fill, pick

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    async with fake_api_served(FakeZalo(ZALO_TOKEN)) as api:
        yield api


@pytest.fixture
async def hooked(db: Database, fake: FakeZalo) -> AsyncIterator[Running]:
    """The real HTTP app on a socket, Zalo by webhook against the fake server."""
    async with running_bot(
        db.url, webhook=True, zalo_token=ZALO_TOKEN, zalo_api_base_url=fake.url
    ) as running:
        yield running


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def test_metrics_count_steps_sends_429s_the_outbox_and_the_leader(
    hooked: Running, fake: FakeZalo
) -> None:
    app = hooked.app
    assert isinstance(app.clock, FixedClock)
    # Two dialogue steps through the webhook; the first reply meets a 429 and is sent again.
    fake.fail("sendMessage", 429, retry_after=1)
    for text in ("/start", "xin chào"):
        status = await fake.deliver(fake.update("u1", text))
        assert status == 200
    assert [c.status for c in fake.calls_of("sendMessage")][:2] == [429, 200]

    # Three messages queued for people on Zalo, one of them for tomorrow; 90 s go by.
    tree = await seed_tree(app)
    for ext in ("u2", "u3", "u4"):
        await make_contact(app, ext, MEMBER, tree.village, channel="zalo")
    async with app.uow() as uow:
        now = app.clock.now()
        people = {ext: await uow.contacts.by_identity("zalo", ext) for ext in ("u2", "u3", "u4")}
        out = {ext: Outgoing(c.id, "zalo", ext, {"text": f"hello {ext}"}) for ext, c in people.items() if c}
        await enqueue(uow, [out["u2"], out["u3"]], kind=KIND_BROADCAST, now=now)
        await enqueue(uow, [out["u4"]], kind=KIND_BROADCAST, now=now, not_before=now + timedelta(days=1))
        await uow.commit()
    app.clock.advance(timedelta(seconds=90))
    before = await scrape(hooked.url)
    assert value(before, "khuyenhoc_outbox_depth", channel="zalo") == 3
    assert value(before, "khuyenhoc_outbox_oldest_due_age_seconds", channel="zalo") == 90

    assert await send_outbox(app) == 2  # the real job, through the Zalo channel's sender
    scheduler = Scheduler(app, jobs={}, holder="instance-a")
    await scheduler.start(elect=False)
    try:
        assert await scheduler.elect_once()
        samples = await scrape(hooked.url)
    finally:
        await scheduler.stop()
    after_stop = await scrape(hooked.url)

    assert value(samples, "khuyenhoc_dialogue_steps_total", channel="zalo") == 2
    assert value(samples, "khuyenhoc_dialogue_step_seconds_count") == 2
    assert value(samples, "khuyenhoc_dialogue_errors_total", channel="zalo") is None  # none so far
    assert value(samples, "khuyenhoc_platform_rate_limited_total", channel="zalo") == 1
    assert value(samples, "khuyenhoc_outbox_sends_total", channel="zalo", status="sent") == 2
    assert value(samples, "khuyenhoc_outbox_depth", channel="zalo") == 1  # tomorrow's
    assert value(samples, "khuyenhoc_outbox_oldest_due_age_seconds", channel="zalo") == 0
    assert value(samples, "khuyenhoc_scheduler_leader", holder="instance-a") == 1
    assert value(after_stop, "khuyenhoc_scheduler_leader", holder="instance-a") == 0


async def test_a_dialogue_error_is_counted_and_each_app_counts_apart(sqlite_db: Database) -> None:
    app = make_app(sqlite_db.url)
    other = make_app(sqlite_db.url)
    try:
        await fill(app)
        chat = Chat(app, "commune-officer")
        await chat.say("/baocaotonghop")
        gate = ReadGate(app, fail=True)  # the report's read is interrupted: a real failure
        gate.armed.set()
        await app.handle(pick("commune-officer", "2026-H1"))
        assert gate.reached.is_set()
        samples, elsewhere = {}, {}
        for application, into in ((app, samples), (other, elsewhere)):
            transport = httpx.ASGITransport(app=create_http_app(application, routers=[]))
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
                into.update(parse((await client.get("/metrics")).text))
        assert value(samples, "khuyenhoc_dialogue_steps_total", channel="test") == 2
        assert value(samples, "khuyenhoc_dialogue_errors_total", channel="test") == 1
        assert value(elsewhere, "khuyenhoc_dialogue_steps_total", channel="test") is None
        assert value(elsewhere, "khuyenhoc_dialogue_step_seconds_count") == 0
    finally:
        await app.db.dispose()
        await other.db.dispose()


async def test_metrics_need_no_channel_and_no_scheduler(sqlite_db: Database) -> None:
    """A bare app answers /metrics too (the gauges of an empty outbox are simply absent)."""
    app: App = make_app(sqlite_db.url)
    try:
        transport = httpx.ASGITransport(app=create_http_app(app, routers=[]))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        samples = parse(response.text)
        assert not any(name == "khuyenhoc_outbox_depth" for name, _ in samples)
    finally:
        await app.db.dispose()
