"""The scheduler: triggers and slots, the lease, fencing, catch-up, and two instances on one
database where the leader dies and the other takes over without running any slot twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI

from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock, SystemClock
from bot.domain.settings import Settings
from bot.messaging.jobs import Job
from bot.runtime.bootstrap import bootstrap
from bot.runtime.scheduler import (
    JobSpec,
    Lease,
    Scheduler,
    attach_to,
    default_jobs,
    job_runs,
    jobs_for,
    last_fire_time,
    parse_trigger,
    prune_job_runs,
    scheduled_for,
    spec_of,
)
from storage.db import Database
from tests.support import CONTENT, make_app
from tests.test_reports_helpers import vn

Record = list[tuple[str, datetime]]


# Which instance an app stands for, and the record its probe writes to (by the app's id).
_WATCHED: dict[int, tuple[str, Record]] = {}


def watch(app: App, name: str, record: Record) -> None:
    _WATCHED[id(app)] = (name, record)


async def probe(app: App) -> int:
    """A job that notes which instance ran which slot."""
    name, record = _WATCHED[id(app)]
    record.append((name, scheduled_for(app)))
    return 1


def test_triggers_and_their_last_slot() -> None:
    monday_7 = parse_trigger("0 7 * * mon")
    assert last_fire_time(monday_7, vn(2026, 11, 23, 7)) == vn(2026, 11, 23, 7)
    assert last_fire_time(monday_7, vn(2026, 11, 23, 6, 59)) == vn(2026, 11, 16, 7)
    assert last_fire_time(monday_7, vn(2026, 11, 27, 12)) == vn(2026, 11, 23, 7)
    every = parse_trigger("every 30s")
    assert last_fire_time(every, vn(2026, 1, 1, 0, 0) + timedelta(seconds=45)) == vn(
        2026, 1, 1, 0, 0
    ) + timedelta(seconds=30)
    # An interval trigger made elsewhere is aligned too: every instance computes the same slots.
    aligned = parse_trigger(IntervalTrigger(seconds=30, timezone=VN_TZ))
    assert last_fire_time(aligned, vn(2026, 1, 1, 0, 0) + timedelta(seconds=59)) == vn(
        2026, 1, 1, 0, 0
    ) + timedelta(seconds=30)
    with pytest.raises(ValueError):
        parse_trigger("whenever")


def test_the_report_jobs_are_registered_and_their_times_are_data(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(sqlite_url)
    extra = Job("outreach.example", probe, "*/15 * * * *")
    jobs = jobs_for(app, {**default_jobs(), extra.name: spec_of(extra)})
    assert {"reminders", "period_reports", "weekly_digest", "scheduler.prune", "outreach.example"} <= set(
        jobs
    )
    sunday = vn(2026, 11, 22, 12)
    assert jobs["weekly_digest"].trigger.get_next_fire_time(None, sunday) == vn(2026, 11, 23, 7)
    assert jobs["reminders"].trigger.get_next_fire_time(None, sunday) == vn(2026, 11, 23, 8)
    assert jobs["outreach.example"].trigger.get_next_fire_time(None, vn(2026, 11, 22, 12, 1)) == vn(
        2026, 11, 22, 12, 15
    )


@pytest.fixture
async def two_apps(db: Database) -> AsyncIterator[tuple[App, App, FixedClock]]:
    """Two instances (own engines, own clocks' view of one time) on one database."""
    clock = FixedClock(vn(2026, 11, 23, 10))  # a Monday, three hours after the digest's slot
    record: Record = []
    apps = [make_app(db.url, clock), make_app(db.url, clock)]
    for name, app in zip("ab", apps, strict=True):
        watch(app, name, record)
    try:
        yield apps[0], apps[1], clock
    finally:
        for app in apps:
            await app.db.dispose()


async def test_one_lease_holder_at_a_time(two_apps: tuple[App, App, FixedClock]) -> None:
    a, b, clock = two_apps
    lease_a, lease_b = Lease(a, "a", timedelta(seconds=30)), Lease(b, "b", timedelta(seconds=30))
    now = clock.now()
    assert await lease_a.acquire(now)
    assert not await lease_b.acquire(now)
    assert await lease_a.acquire(now + timedelta(seconds=20))  # renewed
    assert not await lease_b.acquire(now + timedelta(seconds=45))
    assert await lease_b.acquire(now + timedelta(seconds=51))  # expired: taken over
    assert not await lease_a.acquire(now + timedelta(seconds=52))
    assert await lease_a.holder_now(now + timedelta(seconds=52)) == "b"
    await lease_b.release(now + timedelta(seconds=53))
    assert await lease_a.acquire(now + timedelta(seconds=53))


async def test_catch_up_fencing_and_no_slot_twice(two_apps: tuple[App, App, FixedClock]) -> None:
    a, b, clock = two_apps
    spec = JobSpec("probe", probe, parse_trigger("0 7 * * mon"))
    first = Scheduler(
        a, {"probe": spec}, holder="a", lease_seconds=30, renew_seconds=10, grace_seconds=6 * 3600
    )
    second = Scheduler(
        b, {"probe": spec}, holder="b", lease_seconds=30, renew_seconds=10, grace_seconds=6 * 3600
    )
    await first.start(elect=False)
    await second.start(elect=False)
    try:
        assert await first.elect_once()
        await first.idle()
        # Elected at 10:00, it caught up the digest slot of 07:00, as of 07:00.
        assert _WATCHED[id(a)][1] == [("a", vn(2026, 11, 23, 7))]
        assert not await second.elect_once()
        assert not await first.run_slot(spec, vn(2026, 11, 23, 7))  # claimed already
        # The first instance stops renewing; after expiry the second takes over...
        clock.advance(timedelta(seconds=31))
        assert await second.elect_once()
        await second.idle()
        assert _WATCHED[id(a)][1] == [("a", vn(2026, 11, 23, 7))]  # ...and does not run 07:00 again
        # The first, waking up late, is fenced off: it runs nothing any more.
        assert not await first.run_slot(spec, vn(2026, 11, 30, 7))
        assert await second.run_slot(spec, vn(2026, 11, 30, 7))
        assert not await first.elect_once() and not first.is_leader
        runs = await job_runs(a, "probe")
        assert [(r.holder, r.scheduled_for) for r in runs] == [
            ("a", vn(2026, 11, 23, 7)),
            ("b", vn(2026, 11, 30, 7)),
        ]
        assert all(r.finished_at is not None and r.result == 1 and r.error is None for r in runs)
    finally:
        await first.crash()
        await second.stop()


async def test_runs_older_than_thirty_days_are_forgotten(two_apps: tuple[App, App, FixedClock]) -> None:
    a, _, clock = two_apps
    spec = JobSpec("probe", probe, parse_trigger("0 7 * * mon"))
    s = Scheduler(a, {"probe": spec}, holder="a", lease_seconds=30, renew_seconds=10, grace_seconds=0)
    await s.start(elect=False)
    try:
        assert await s.elect_once()
        await s.idle()  # no catch-up: 07:00 is older than a grace of 0
        for days in (45, 31, 29, 1):
            assert await s.run_slot(spec, clock.now() - timedelta(days=days))
        assert await prune_job_runs(a) == 2
        assert len(await job_runs(a, "probe")) == 2
    finally:
        await s.stop()


async def test_a_failing_job_is_recorded_and_does_not_stop_the_scheduler(
    two_apps: tuple[App, App, FixedClock],
) -> None:
    a, _, _ = two_apps

    async def broken(app: App) -> int:
        raise RuntimeError("boom")

    spec = JobSpec("broken", broken, parse_trigger("0 7 * * mon"))
    s = Scheduler(a, {"broken": spec}, holder="a", lease_seconds=30, renew_seconds=10)
    await s.start(elect=False)
    try:
        assert await s.elect_once()
        await s.idle()
        (run,) = await job_runs(a, "broken")
        assert run.error == "RuntimeError: boom" and run.finished_at is not None
        assert s.is_leader
    finally:
        await s.stop()


async def test_the_other_instance_takes_over_when_the_leader_dies(db: Database) -> None:
    """Real time, short lease: two instances, the leader crashes, the other leads within a minute
    (here within about a second) and no slot of a job that fires twice a second runs twice."""
    record: Record = []
    apps: list[App] = []
    for name in "ab":
        settings = Settings(database_url=db.url, content_dir=str(CONTENT), _env_file=None)  # type: ignore[call-arg]
        app = bootstrap(settings, SystemClock()).app
        watch(app, name, record)
        apps.append(app)
    spec = JobSpec("probe", probe, IntervalTrigger(seconds=0.5, timezone=VN_TZ))
    schedulers = [
        Scheduler(
            app,
            {"probe": spec},
            holder=_WATCHED[id(app)][0],
            lease_seconds=0.8,
            renew_seconds=0.1,
            grace_seconds=60,
        )
        for app in apps
    ]

    async def until(condition: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)

    try:
        await schedulers[0].start()
        await until(lambda: schedulers[0].is_leader, 5)
        await schedulers[1].start()
        await until(lambda: len(record) >= 3, 10)
        leader, follower = schedulers
        assert leader.is_leader and not follower.is_leader
        await leader.crash()  # no release: the lease stays until it expires
        crashed = datetime.now(tz=VN_TZ)
        ran_before = len(record)
        assert all(name == "a" for name, _ in record)
        await until(lambda: follower.is_leader and sum(1 for n, _ in record if n == "b") >= 3, 60)
        took_over = min(at for name, at in record if name == "b")
        assert took_over - crashed < timedelta(seconds=60)
        await follower.stop()
        slots = [at for _, at in record]
        assert len(slots) == len(set(slots)), "a slot ran twice"
        assert all(name == "b" for name, _ in record[ran_before:])
        runs = await job_runs(apps[0], "probe")
        assert sorted(r.scheduled_for for r in runs) == sorted(slots)
        assert {r.holder for r in runs} == {"a", "b"}
    finally:
        for s in schedulers:
            await s.crash()
        for app in apps:
            await app.db.dispose()


async def test_the_http_app_runs_the_scheduler_while_it_lives(sqlite_db: Database) -> None:
    app = make_app(sqlite_db.url, scheduler_lease_seconds=5, scheduler_renew_seconds=0.05)
    api = FastAPI()
    attach_to(api, app)
    async with api.router.lifespan_context(api):
        s = api.state.scheduler
        for _ in range(200):
            if s.is_leader:
                break
            await asyncio.sleep(0.02)
        assert s.is_leader
        await s.idle()
    assert not hasattr(api.state, "scheduler")
    assert await Lease(app, "other", timedelta(seconds=5)).holder_now(app.clock.now()) is None  # released
    off = make_app(sqlite_db.url, scheduler_enabled=False)
    plain = FastAPI()
    attach_to(plain, off)
    async with plain.router.lifespan_context(plain):
        assert not hasattr(plain.state, "scheduler")
    await app.db.dispose()
    await off.db.dispose()
