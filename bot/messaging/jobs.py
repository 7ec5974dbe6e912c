"""Scheduled jobs as data: a job module lists its jobs in `JOBS`; the composition root
(bot.runtime.bootstrap) collects them and the scheduler runs them on the elected instance.

Nothing registers itself at import. Inside a job, `scheduled_for(app)` is the time the run was
due (not when it started): a digest caught up at 10:00 still covers the week that ended at its
07:00 slot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.app import App

JobFunc = Callable[[App], Awaitable[int]]


@dataclass(frozen=True)
class Job:
    """A job: `func(app)` returns what it counted (messages queued …), kept in the run's row.

    `trigger` is a crontab line in Vietnam time or "every 30s"; content/schedules.yaml `jobs:`
    may override it by name.
    """

    name: str
    func: JobFunc
    trigger: str
    grace: timedelta | None = None  # how late a missed run may still be caught up


_current_slot: ContextVar[datetime | None] = ContextVar("scheduled_slot", default=None)


@contextmanager
def running_slot(slot: datetime) -> Iterator[None]:
    """Within this block, `scheduled_for` answers `slot`."""
    token = _current_slot.set(slot)
    try:
        yield
    finally:
        _current_slot.reset(token)


def scheduled_for(app: App) -> datetime:
    """The time the running job was due; the clock's time when called outside a scheduled run."""
    slot = _current_slot.get()
    return slot if slot is not None else app.clock.now()
