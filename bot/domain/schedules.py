"""Deadlines as data (content/schedules.yaml), over the periods of bot.domain.periods.

`Deadline` says what is due when and from which units; reminders, escalations, compiled reports
and the "open period" of the digest are all derived from these entries, so a province that moves
a date edits YAML, not code.

The periods a form is filed for are derived from the same entries: a period kind of the form
that has deadlines is filed only for the periods those deadlines ask for (`only: [1]` of
half-years: the first half-year, no second one — the year report covers the whole year). And
one rule picks the period every dialogue, job and command starts from, `Schedules.open_period`:
the open period whose deadline comes next.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.domain.clock import VN_TZ
from bot.domain.forms.model import Text
from bot.domain.periods import KINDS, Period

SCHEDULES_FILE = "schedules.yaml"
OPEN_DAYS_AFTER_DUE = 45
# How far back to look for a period a form is filed for (an ISO year has up to 53 weeks).
_REACH = 60


def end_of_day(day: date) -> datetime:
    """The first instant after `day` in Vietnam: a report is on time when sent before it."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=VN_TZ)


@dataclass(frozen=True)
class Deadline:
    """Something due: records of `form` for each period of `period_kind`, from `expected` units."""

    id: str
    form: str
    period_kind: str
    title: Text
    expected: tuple[str, ...]
    only: tuple[int, ...] = ()
    due: str | None = None  # "MM-DD"
    due_after_end_days: int | None = None
    date_field: str | None = None
    where: dict[str, Any] = field(default_factory=dict)
    remind_before_days: tuple[int, ...] = (3, 0)
    escalate_after_days: tuple[int, ...] = (1,)
    report_after_days: int | None = 1
    open_days_after_due: int = OPEN_DAYS_AFTER_DUE
    lock_after_days: int | None = None  # None: the period never locks
    area: str | None = None  # only units inside this subtree (a unit path) are expected: a request's area
    command: str | None = None  # what officers send to report ("/traloi 12"); None: the form's command

    def applies(self, period: Period) -> bool:
        return period.kind == self.period_kind and (not self.only or period.number in self.only)

    def due_date(self, period: Period) -> date:
        if self.due_after_end_days is not None:
            return period.end + timedelta(days=self.due_after_end_days)
        assert self.due is not None
        month, day = (int(x) for x in self.due.split("-"))
        candidate = date(period.start.year, month, day)
        if candidate < period.start:
            candidate = date(period.start.year + 1, month, day)
        return candidate

    def due_at(self, period: Period) -> datetime:
        return end_of_day(self.due_date(period))

    def locks_at(self, period: Period) -> datetime | None:
        """When the unit's officers can no longer change the period (its reviewers still can)."""
        if self.lock_after_days is None:
            return None
        return end_of_day(self.due_date(period) + timedelta(days=self.lock_after_days))

    def periods_due_near(self, today: date, before: int, after: int) -> list[Period]:
        """Periods of this deadline due between `after` days ago and `before` days ahead."""
        out: list[Period] = []
        # A due date lies at most a year after the period starts (MM-DD), or N days after it ends.
        reach = timedelta(days=after + 366 + (self.due_after_end_days or 0) + 366)
        p = Period.containing(self.period_kind, today + timedelta(days=before))
        while p.start >= today - reach:
            if self.applies(p) and -after <= (self.due_date(p) - today).days <= before:
                out.append(p)
            p = p.previous()
        return sorted(out)

    def is_open(self, period: Period, today: date) -> bool:
        return period.start <= today <= self.due_date(period) + timedelta(days=self.open_days_after_due)


class PeriodNotFiled(ValueError):
    """A period the form is not filed for (the village report for 2026-H2)."""

    def __init__(self, form_key: str, period: Period, covered_by: Period | None) -> None:
        super().__init__(f"{form_key} is not filed for {period.key}")
        self.form_key = form_key
        self.period = period
        self.covered_by = covered_by  # the period of the form that covers it, if one does


@dataclass(frozen=True)
class RequestTimes:
    """What applies to every ad hoc request (`requests:`), each of which sets its own due date."""

    remind_before_days: tuple[int, ...] = (1, 0)
    open_days_after_due: int = 30


@dataclass(frozen=True)
class Schedules:
    jobs: dict[str, str]
    deadlines: tuple[Deadline, ...]
    form_period_kinds: dict[str, tuple[str, ...]]
    any_time_forms: frozenset[str]
    open_days_after_due: int = OPEN_DAYS_AFTER_DUE  # the default, for kinds without deadlines
    requests: RequestTimes = RequestTimes()

    def deadline(self, deadline_id: str) -> Deadline:
        for d in self.deadlines:
            if d.id == deadline_id:
                return d
        raise KeyError(deadline_id)

    def for_form(self, form_key: str) -> list[Deadline]:
        return [d for d in self.deadlines if d.form == form_key]

    def deadline_for(self, form_key: str, period: Period) -> Deadline | None:
        """The deadline that `period` of `form_key` answers to, if it has one."""
        for d in self.deadlines:
            if d.form == form_key and not d.where and d.applies(period):
                return d
        return None

    # ---- which periods a form is filed for -------------------------------------------------
    def kinds(self, form_key: str, fallback: Sequence[str] = ()) -> tuple[str, ...]:
        """The period kinds `form_key` is filed for: its `forms:` entry here, else the kinds of
        its deadlines, else `fallback` (the form's own `period_kinds`), else the year."""
        listed = self.form_period_kinds.get(form_key)
        if listed:
            return listed
        own = tuple(dict.fromkeys(d.period_kind for d in self.for_form(form_key) if not d.where))
        return own or tuple(fallback) or ("year",)

    def files_for(self, form_key: str, period: Period, kinds: Sequence[str] = ()) -> bool:
        """Whether `form_key` is filed for `period`: one of its kinds, and when the form has
        deadlines of that kind, a period one of them asks for (village report: 2026-H1 and 2026,
        not 2026-H2). A kind without deadlines is filed for every period of it."""
        if period.kind not in self.kinds(form_key, kinds):
            return False
        of_kind = [d for d in self.for_form(form_key) if not d.where and d.period_kind == period.kind]
        return not of_kind or any(d.applies(period) for d in of_kind)

    def covering(self, form_key: str, period: Period, kinds: Sequence[str] = ()) -> Period | None:
        """The shortest period the form is filed for that holds all of `period` (2026 for
        2026-H2 of the village report): what to tell someone who asks for a period not filed."""
        found = [
            p
            for kind in self.kinds(form_key, kinds)
            if self.files_for(form_key, p := Period.containing(kind, period.start), kinds)
            and p.contains(period.end)
            and p != period
        ]
        return min(found, key=lambda p: (p.end - p.start, p.kind), default=None)

    def is_open(self, form_key: str, period: Period, today: date) -> bool:
        """Started, and not more than `open_days_after_due` past its due date (a period without
        a deadline: past its end)."""
        d = self.deadline_for(form_key, period)
        if d is not None:
            return d.is_open(period, today)
        return period.start <= today <= period.end + timedelta(days=self.open_days_after_due)

    def _filed_at_or_before(self, form_key: str, period: Period, kinds: Sequence[str]) -> Period | None:
        """`period`, or the nearest earlier one of its kind that the form is filed for."""
        p = period
        for _ in range(_REACH):
            if self.files_for(form_key, p, kinds):
                return p
            p = p.previous()
        return None

    def previous_period(self, form_key: str, period: Period, kinds: Sequence[str] = ()) -> Period:
        """The period of the same kind before `period` that the form is filed for: what a
        compiled report compares with (2026-H1 → 2025-H1 for the village report: there is no
        2025-H2 report)."""
        return self._filed_at_or_before(form_key, period.previous(), kinds) or period.previous()

    def open_period(
        self, form_key: str, today: date, *, kinds: Sequence[str] = ()
    ) -> tuple[Period, Deadline | None]:
        """THE default period, everywhere (/baocao, /hoatdong, /baocaotonghop, the digest, the
        CLI): the open period whose deadline comes next. A period is open from its start until
        `open_days_after_due` days after its due date, so on 2 December the year report (due 30
        November) is still the default: the commune is closing the year. A form without
        deadlines (activities): the current period of its first kind."""
        candidates: list[tuple[date, Period, Deadline]] = []
        for d in self.for_form(form_key):
            if d.where:
                continue
            for p in d.periods_due_near(today, before=400, after=d.open_days_after_due):
                if d.is_open(p, today):
                    candidates.append((d.due_date(p), p, d))
        if candidates:
            _, period, deadline = min(candidates)
            return period, deadline
        kinds = self.kinds(form_key, kinds)
        for kind in kinds:
            latest = self._filed_at_or_before(form_key, Period.containing(kind, today), kinds)
            if latest is not None:
                return latest, self.deadline_for(form_key, latest)
        return Period.containing(kinds[0], today), None

    def period_choices(self, form_key: str, today: date, kinds: Sequence[str] = ()) -> list[Period]:
        """The periods an officer may file `form_key` for today, the default (`open_period`)
        first: of each kind, the latest period filed for that has started and the earlier ones
        still open, so a late report of a closed period can still be sent. On 2 December 2026,
        for the village report: the year 2026 (default), then the first half of 2026."""
        kinds = self.kinds(form_key, kinds)
        first, _ = self.open_period(form_key, today, kinds=kinds)
        others: list[Period] = []
        for kind in kinds:
            latest = self._filed_at_or_before(form_key, Period.containing(kind, today), kinds)
            p = latest
            while p is not None and (p == latest or self.is_open(form_key, p, today)):
                if p != first and p not in others:
                    others.append(p)
                p = self._filed_at_or_before(form_key, p.previous(), kinds)
        others.sort(key=lambda p: (p.end, p.kind), reverse=True)
        return [first, *others]

    def recent_periods(self, form_key: str, today: date, limit: int = 4) -> list[Period]:
        """Choices for a compiled report: the open period first, then the latest other ones the
        form is filed for."""
        first, _ = self.open_period(form_key, today)
        kinds = self.kinds(form_key)
        others: list[Period] = []
        for kind in kinds:
            p = self._filed_at_or_before(form_key, Period.containing(kind, today), kinds)
            for _ in range(2):
                if p is None:
                    break
                if p != first and p not in others:
                    others.append(p)
                p = self._filed_at_or_before(form_key, p.previous(), kinds)
        others.sort(key=lambda p: (p.end, p.kind), reverse=True)
        return [first, *others[: limit - 1]]


class ScheduleError(ValueError):
    """content/schedules.yaml is not as described at its top."""


def _ints(value: Any, where: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise ScheduleError(f"{where}: expected a list of whole numbers")
    return tuple(value)


def _deadline(entry: dict[str, Any], defaults: dict[str, Any]) -> Deadline:
    where = f"deadline {entry.get('id', '?')}"
    merged = {**defaults, **entry}
    kind = str(merged.get("period", ""))
    if kind not in KINDS:
        raise ScheduleError(f"{where}: period must be one of {', '.join(KINDS)}")
    due = merged.get("due")
    after_end = merged.get("due_after_end_days")
    if (due is None) == (after_end is None):
        raise ScheduleError(f"{where}: give either due (MM-DD) or due_after_end_days")
    if due is not None and not re.fullmatch(r"\d{2}-\d{2}", str(due)):
        raise ScheduleError(f"{where}: due must look like 06-15")
    title = merged.get("title") or {}
    report_after = merged.get("report_after_days")
    return Deadline(
        id=str(merged["id"]),
        form=str(merged["form"]),
        period_kind=kind,
        title=Text(
            vi=str(title.get("vi", merged["id"])), en=str(title.get("en", title.get("vi", merged["id"])))
        ),
        expected=tuple(str(k) for k in merged.get("expected") or ()),
        only=_ints(merged.get("only"), where),
        due=None if due is None else str(due),
        due_after_end_days=None if after_end is None else int(after_end),
        date_field=merged.get("date_field"),
        where=dict(merged.get("where") or {}),
        remind_before_days=_ints(merged.get("remind_before_days"), where),
        escalate_after_days=_ints(merged.get("escalate_after_days"), where),
        report_after_days=None if report_after is None else int(report_after),
        open_days_after_due=int(merged.get("open_days_after_due", OPEN_DAYS_AFTER_DUE)),
        lock_after_days=None if merged.get("lock_after_days") is None else int(merged["lock_after_days"]),
    )


def parse_schedules(data: dict[str, Any]) -> Schedules:
    defaults = dict(data.get("defaults") or {})
    deadlines = tuple(_deadline(dict(e), defaults) for e in data.get("deadlines") or ())
    ids = [d.id for d in deadlines]
    if len(ids) != len(set(ids)):
        raise ScheduleError("deadline ids must be unique")
    if any(not d.expected for d in deadlines):
        raise ScheduleError("every deadline needs `expected` unit kinds")
    forms = data.get("forms") or {}
    requests = dict(data.get("requests") or {})
    return Schedules(
        jobs={str(k): str(v) for k, v in (data.get("jobs") or {}).items()},
        deadlines=deadlines,
        form_period_kinds={str(k): tuple(v.get("period_kinds") or ()) for k, v in forms.items()},
        any_time_forms=frozenset(str(k) for k, v in forms.items() if v.get("any_time")),
        open_days_after_due=int(defaults.get("open_days_after_due", OPEN_DAYS_AFTER_DUE)),
        requests=RequestTimes(
            remind_before_days=_ints(requests.get("remind_before_days", [1, 0]), "requests"),
            open_days_after_due=int(requests.get("open_days_after_due", 30)),
        ),
    )


@lru_cache(maxsize=8)
def load_schedules(content_dir: Path) -> Schedules:
    """The schedules of a content folder (cached: content changes need a restart)."""
    path = Path(content_dir) / SCHEDULES_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return parse_schedules(data or {})
