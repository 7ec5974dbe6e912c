"""Scheduled jobs: APScheduler in the app's event loop, on exactly one instance.

Several `khuyenhoc run` instances may share one database; APScheduler 3 cannot share a job store
between schedulers, so the instances elect one by a lease row (`scheduler_leases`): the holder
renews it every `scheduler_renew_seconds`; when it stops renewing (crash, network), another
instance takes the row once it has expired (`scheduler_lease_seconds`) and starts the jobs.

A job run is claimed before it runs by inserting (job, scheduled time) into `scheduler_job_runs`
together with a check that this instance still holds the lease; the unique key makes a second
claim fail. So a slot never runs twice, even when a paused old leader wakes up after a new one
took over, and a new leader catches up on a slot the old one missed (within the grace time).

Jobs are `bot.messaging.jobs.Job`s, listed by their modules in `JOBS` and collected here in
`default_jobs()`: nothing registers itself at import. A `jobs:` entry of the same name in
content/schedules.yaml overrides the trigger (a crontab line), so times are data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import IntegrityError

from bot.domain.clock import VN_TZ
from bot.domain.schedules import load_schedules
from bot.messaging.jobs import Job, running_slot, scheduled_for
from storage.models_reports import JobRun
from storage.repositories import SchedulerRepository

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.domain.app import App

log = logging.getLogger(__name__)

JobFunc = Callable[["App"], Awaitable[int]]
LEASE_NAME = "scheduler"
EPOCH = datetime(2000, 1, 3, tzinfo=VN_TZ)  # a Monday: intervals line up on every instance
EARLY = timedelta(milliseconds=250)  # APScheduler may wake a hair before the clock says so

_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h|d)$")


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunc
    trigger: BaseTrigger
    grace: timedelta | None = None  # how late a missed run may still be caught up


def parse_trigger(spec: str | BaseTrigger) -> BaseTrigger:
    """'0 7 * * mon' (crontab, Vietnam time) or 'every 30s' / 'every 5m' → a trigger.

    Interval triggers start from a fixed epoch, so every instance computes the same slots.
    """
    if isinstance(spec, BaseTrigger):
        if isinstance(spec, IntervalTrigger):
            return IntervalTrigger(seconds=spec.interval_length, start_date=EPOCH, timezone=VN_TZ)
        return spec
    text = spec.strip().lower()
    m = _EVERY.match(text)
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return IntervalTrigger(**{unit: int(m.group(1))}, start_date=EPOCH, timezone=VN_TZ)
    return CronTrigger.from_crontab(text, timezone=VN_TZ)


def spec_of(job: Job) -> JobSpec:
    return JobSpec(job.name, job.func, parse_trigger(job.trigger), job.grace)


def default_jobs() -> dict[str, JobSpec]:
    """Every job the bot runs, from the modules that define them."""
    from bot.messaging import digest, outreach, reminders, report_delivery, requests, retention
    from bot.runtime import backup

    jobs = [
        *reminders.JOBS,
        *digest.JOBS,
        *report_delivery.JOBS,
        *requests.JOBS,
        *outreach.JOBS,
        *retention.JOBS,
        *backup.JOBS,
        PRUNE,
    ]
    return {job.name: spec_of(job) for job in jobs}


def jobs_for(app: App, jobs: Mapping[str, JobSpec] | None = None) -> dict[str, JobSpec]:
    """The registry with the app's content/schedules.yaml `jobs:` times laid over it."""
    chosen = dict(default_jobs() if jobs is None else jobs)
    overrides = load_schedules(app.content_dir).jobs
    for name, cron in overrides.items():
        if name in chosen:
            spec = chosen[name]
            chosen[name] = JobSpec(name, spec.func, parse_trigger(cron), spec.grace)
    return chosen


def last_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The latest time ≤ now at which `trigger` fires (APScheduler triggers only look forward)."""
    for back in (
        timedelta(minutes=2),
        timedelta(hours=3),
        timedelta(days=2),
        timedelta(days=9),
        timedelta(days=40),
        timedelta(days=400),
    ):
        fire: datetime | None = trigger.get_next_fire_time(None, now - back)
        if fire is None or fire > now:
            continue
        while True:
            following: datetime | None = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
            if following is None or following > now:
                return fire
            fire = following
    return None


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """One row that says which instance runs the jobs, until when."""

    def __init__(self, app: App, holder: str, ttl: timedelta, name: str = LEASE_NAME) -> None:
        self.app = app
        self.holder = holder
        self.ttl = ttl
        self.name = name

    async def acquire(self, now: datetime) -> bool:
        """Take the lease if it is free or expired, or renew it if ours; False when another holds it."""
        async with self.app.uow() as uow:
            if await uow.scheduler.renew_lease(self.name, self.holder, now, self.ttl):
                await uow.commit()
                return True
            if await uow.scheduler.lease(self.name) is not None:
                return False
            uow.scheduler.add_lease(self.name, self.holder, now, self.ttl)
            try:
                await uow.commit()
            except IntegrityError:  # another instance inserted it first
                return False
            return True

    async def release(self, now: datetime) -> None:
        """Let another instance take over at once (a clean shutdown)."""
        async with self.app.uow() as uow:
            await uow.scheduler.expire_lease(self.name, self.holder, now)
            await uow.commit()

    async def holder_now(self, now: datetime) -> str | None:
        async with self.app.db.sessions() as session:  # a plain read, outside the write lock
            row = await SchedulerRepository(session).lease(self.name)
            return row.holder if row is not None and row.expires_at > now else None


class Scheduler:
    """Leader election plus an AsyncIOScheduler that runs the jobs only while this instance leads."""

    def __init__(
        self,
        app: App,
        jobs: Mapping[str, JobSpec] | None = None,
        *,
        holder: str | None = None,
        lease_seconds: float | None = None,
        renew_seconds: float | None = None,
        grace_seconds: float | None = None,
    ) -> None:
        settings = app.settings
        self.app = app
        self.jobs = jobs_for(app, jobs)
        self.holder = holder or default_holder()
        self.lease = Lease(
            app, self.holder, timedelta(seconds=lease_seconds or settings.scheduler_lease_seconds)
        )
        self.renew = renew_seconds or settings.scheduler_renew_seconds
        self.grace = timedelta(
            seconds=grace_seconds if grace_seconds is not None else settings.scheduler_grace_seconds
        )
        self.is_leader = False
        self._leader_gauge = app.metrics.scheduler_leader.labels(self.holder)
        self._leader_gauge.set(0)
        self._leading_until: datetime | None = None
        self._aps = AsyncIOScheduler(timezone=VN_TZ)
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self, *, elect: bool = True) -> None:
        """Start the (paused) scheduler and the election loop; jobs begin when elected.

        `elect=False` leaves the election to explicit `elect_once()` calls (tests with a fixed clock).
        """
        self._aps.start(paused=True)
        if elect:
            self._loop_task = asyncio.create_task(
                self._elect_forever(), name=f"scheduler-election-{self.holder}"
            )

    async def stop(self) -> None:
        """Stop and hand the lease over (another instance takes over without waiting for expiry)."""
        was_leader = self.is_leader
        await self._halt()
        if was_leader:
            try:
                await self.lease.release(self.app.clock.now())
            except Exception:
                log.exception("could not release the scheduler lease")

    async def crash(self) -> None:
        """Stop as a crash would: no release, the lease stays until it expires (for tests)."""
        await self._halt()

    async def _halt(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        self._step_down()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._aps.running:
            self._aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down through call_soon

    # ---- election ----------------------------------------------------------------------------
    async def _elect_forever(self) -> None:
        while True:
            try:
                await self.elect_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler election failed")
                if self.is_leader and (
                    self._leading_until is None or self.app.clock.now() >= self._leading_until
                ):
                    self._step_down()
            await asyncio.sleep(self.renew)

    async def elect_once(self) -> bool:
        """Renew or take the lease; start or stop the jobs to match. True while leading."""
        now = self.app.clock.now()
        leading = await self.lease.acquire(now)
        if leading:
            self._leading_until = now + self.lease.ttl
            if not self.is_leader:
                self._become_leader(now)
        elif self.is_leader:
            self._step_down()
        return leading

    def _become_leader(self, now: datetime) -> None:
        log.info("scheduler %s elected: running %d jobs", self.holder, len(self.jobs))
        self.is_leader = True
        self._leader_gauge.set(1)
        for spec in self.jobs.values():
            self._aps.add_job(
                self._fire,
                spec.trigger,
                args=[spec.name],
                id=spec.name,
                name=spec.name,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int((spec.grace or self.grace).total_seconds()) or 1,
            )
        self._aps.resume()
        self._spawn(self.catch_up(now))

    def _step_down(self) -> None:
        if not self.is_leader:
            return
        log.info("scheduler %s no longer leads", self.holder)
        self.is_leader = False
        self._leader_gauge.set(0)
        self._leading_until = None
        if self._aps.running:
            self._aps.pause()
            self._aps.remove_all_jobs()

    async def idle(self) -> None:
        """Wait until the runs an election started (the catch-up) are over."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- running -----------------------------------------------------------------------------
    async def _fire(self, name: str) -> None:
        spec = self.jobs.get(name)
        if spec is None:
            return
        slot = last_fire_time(spec.trigger, self.app.clock.now() + EARLY)
        if slot is not None:
            await self.run_slot(spec, slot)

    async def catch_up(self, now: datetime) -> int:
        """Run each job's latest slot if nobody ran it and it is not older than its grace time."""
        ran = 0
        for spec in self.jobs.values():
            slot = last_fire_time(spec.trigger, now)
            if slot is not None and now - slot <= (spec.grace or self.grace):
                ran += await self.run_slot(spec, slot)
        return ran

    async def _claim(self, spec: JobSpec, slot: datetime, now: datetime) -> bool:
        async with self.app.uow() as uow:
            lease = await uow.scheduler.lease(self.lease.name)
            if lease is None or lease.holder != self.holder or lease.expires_at <= now:
                return False  # fenced off: another instance leads now
            uow.scheduler.claim_run(spec.name, slot, self.holder, now)
            try:
                await uow.commit()
            except IntegrityError:
                return False
            return True

    async def run_slot(self, spec: JobSpec, slot: datetime) -> bool:
        """Claim (job, slot) and run it; False when it was claimed already or we do not lead."""
        if not await self._claim(spec, slot, self.app.clock.now()):
            return False
        result: int | None = None
        error: str | None = None
        try:
            with running_slot(slot):
                result = await spec.func(self.app)
        except Exception as exc:
            log.exception("job %s (%s) failed", spec.name, slot.isoformat())
            error = f"{type(exc).__name__}: {exc}"[:2000]
        async with self.app.uow() as uow:
            await uow.scheduler.finish_run(spec.name, slot, self.app.clock.now(), result, error)
            await uow.commit()
        # A run that did nothing (the outbox every 30 s with nothing queued) is not news.
        log.log(
            logging.INFO if result or error else logging.DEBUG,
            "job %s (%s) done: %s",
            spec.name,
            slot.astimezone(UTC).isoformat(),
            result if error is None else error,
        )
        return True


async def job_runs(app: App, job: str | None = None) -> list[JobRun]:
    """The recorded runs, oldest first (operations and tests)."""
    async with app.db.sessions() as session:
        return await SchedulerRepository(session).runs(job)


async def prune_job_runs(app: App) -> int:
    """Job: forget runs older than 30 days (a job every few seconds would otherwise pile them up)."""
    cutoff = scheduled_for(app) - timedelta(days=30)
    async with app.uow() as uow:
        pruned = await uow.scheduler.prune_runs(cutoff)
        await uow.commit()
    return pruned


PRUNE = Job("scheduler.prune", prune_job_runs, "17 3 * * *")


@contextlib.asynccontextmanager
async def running(app: App, **options: Any) -> AsyncIterator[Scheduler]:
    """A started scheduler for the duration of the block (stopped and lease released after)."""
    scheduler = Scheduler(app, **options)
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()


def attach_to(api: FastAPI, app: App, jobs: Mapping[str, JobSpec] | None = None) -> None:
    """Run the scheduler for the lifetime of the HTTP app (uvicorn's event loop), if enabled;
    while it runs it is `api.state.scheduler`."""
    if not app.settings.scheduler_enabled:
        return
    inner = api.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(asgi: Any) -> AsyncIterator[Any]:
        async with inner(asgi) as state, running(app, jobs=jobs) as scheduler:
            api.state.scheduler = scheduler
            try:
                yield state
            finally:
                del api.state.scheduler

    api.router.lifespan_context = lifespan
