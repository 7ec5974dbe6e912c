"""One unit's reports across periods and forms, as the staff console's village page shows them
(issue 12, "One village").

The history is records → versions → diffs → review acts. A record is one form's report for one
period (`record: per_period`: the village report, a commune's own report, an answer to an ad hoc
request) or one entry (`per_entry`: an activity, listed briefly). Each version says who filed it
(the contact's name and the role they filed under), when, and whether it came before the
deadline; each correction lists only the fields it changed, old → new, labelled and formatted in
the reader's language as the chat formats them (`format_value`: t.number, t.money, choice
labels). A reviewed record carries its review acts (bot/services/reviews.py, the same state rule
as /duyet) and whether its period is locked for the unit's officers.

Only reads: the acts themselves are `reviews.approve` / `reviews.return_report`, as in /duyet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.forms.model import Field, Form
from bot.domain.forms.rules import MISSING, format_value
from bot.domain.i18n import Translator
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed
from bot.domain.requests import request_form
from bot.domain.schedules import Schedules, end_of_day
from bot.reports.review_queue import reviewed
from bot.services.actor import Actor
from bot.services.reviews import locks_at, may_review, state_of
from storage.models import OFFICER_ROLES, Submission, Unit
from storage.models_reviews import WAITING, Review
from storage.uow import Reads

REQUEST_PREFIX = "request_"  # bot.domain.requests.request_form_key
BRIEF_FIELDS = 4  # values shown for an entry listed briefly (an activity)

# A record's deadline: period → the instant its report is late from (None: no deadline).
Due = Callable[[Period], datetime | None]


@dataclass(frozen=True, slots=True)
class Change:
    """One field a version changed: its label and both values as people read them."""

    key: str
    label: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Version:
    submission: Submission
    by_name: str | None  # the filer's display name (None: unknown, or filed by the console)
    by_role: str | None  # the role they filed under
    on_time: bool | None  # sent before the deadline; None: the record has no deadline
    changes: tuple[Change, ...]  # from the version before (empty for the first version)

    @property
    def number(self) -> int:
        return self.submission.version

    @property
    def at(self) -> datetime:
        return self.submission.submitted_at


@dataclass(frozen=True, slots=True)
class Act:
    """A review act on the record: approved, returned (with the reason) or reopened."""

    review: Review
    by_name: str | None
    by_role: str | None  # the role the reviewer acted in


@dataclass(frozen=True, slots=True)
class Record:
    """One form's report for one period (per_period) or one entry (per_entry) of the unit."""

    form_key: str
    title: str
    record_key: str
    period: Period | None  # None: a period key this version of the code cannot read
    per_entry: bool
    versions: tuple[Version, ...]  # oldest first
    figures: tuple[tuple[str, str], ...]  # (label, value) of the latest version, empty values left out
    brief: str  # a per_entry record in one line (its first few values)
    reviewed: bool  # the form's reports are reviewed (an approval state applies)
    state: str  # WAITING | APPROVED | RETURNED for a reviewed record, else ""
    acts: tuple[Act, ...]  # oldest first
    locked_since: datetime | None  # the period is locked for the unit's officers since then
    may_act: bool  # the reader may approve or return the latest version now

    @property
    def latest(self) -> Version:
        return self.versions[-1]


@dataclass(frozen=True, slots=True)
class UnitHistory:
    unit: Unit
    may_review: bool  # the reader reviews this unit's reports (Action.REVIEW on its parent)
    records: tuple[Record, ...]  # per_period records, newest period first
    entries: tuple[Record, ...]  # per_entry records (activities), newest first

    def record(self, form_key: str, record_key: str) -> Record | None:
        for r in (*self.records, *self.entries):
            if (r.form_key, r.record_key) == (form_key, record_key):
                return r
        return None


async def unit_history(
    reads: Reads,
    actor: Actor,
    unit_id: int,
    *,
    forms: Mapping[str, Form],
    schedules: Schedules,
    now: datetime,
    t: Translator,
) -> UnitHistory:
    """Every report the unit filed, for someone who reads its area's reports
    (Action.COMPILE_REPORT on it); NotAllowed for a unit outside their area or none at all."""
    unit = await reads.units.get(unit_id)
    if unit is None:
        raise NotAllowed(Action.COMPILE_REPORT, None, f"no unit {unit_id}")
    actor.require(Action.COMPILE_REPORT, unit)
    reviewer = await may_review(reads, actor, unit)
    submissions = await reads.reviews.of_unit(unit.id)
    by_record: dict[tuple[str, str], list[Submission]] = defaultdict(list)
    for s in submissions:
        by_record[(s.form_key, s.record_key)].append(s)
    acts_by_record: dict[tuple[str, str], list[Review]] = defaultdict(list)
    for a in await reads.reviews.of_records(
        sorted({k for k, _ in by_record}), sorted({r for _, r in by_record})
    ):
        acts_by_record[(a.form_key, a.record_key)].append(a)
    ids = [s.submitted_by_contact_id for s in submissions if s.submitted_by_contact_id is not None]
    ids += [a.contact_id for acts in acts_by_record.values() for a in acts if a.contact_id is not None]
    names = await reads.reviews.contact_names(ids)
    held: dict[int, list[Held]] = defaultdict(list)
    for contact_id, role, path, granted, revoked in await reads.reviews.roles_ever(ids):
        held[contact_id].append((role, path, granted, revoked))
    people = People(names, held, unit.path)
    resolved = await _forms_of(reads, sorted({k for k, _ in by_record}), forms)
    dues = {key: await _due_of(reads, key, schedules) for key in resolved}

    built = []
    for (form_key, record_key), versions in by_record.items():
        form = resolved.get(form_key)
        built.append(
            _record(
                form_key,
                record_key,
                versions,
                acts_by_record.get((form_key, record_key), []),
                form,
                people,
                dues.get(form_key),
                reviewer=reviewer,
                schedules=schedules,
                now=now,
                t=t,
            )
        )
    order = {key: i for i, key in enumerate(forms)}
    records = sorted(
        (r for r in built if not r.per_entry),
        key=lambda r: (
            -(r.period.end.toordinal() if r.period else 0),
            -(r.period.start.toordinal() if r.period else 0),
            order.get(r.form_key, len(order)),
            r.form_key,
        ),
    )
    entries = sorted((r for r in built if r.per_entry), key=lambda r: r.versions[0].at, reverse=True)
    return UnitHistory(unit, reviewer, tuple(records), tuple(entries))


# ---------------------------------------------------------------------------------- one record

Held = tuple[str, str, datetime, datetime | None]  # role, unit path, granted, revoked


@dataclass(frozen=True, slots=True)
class People:
    """The names of those who filed and reviewed, and the roles they held over the unit."""

    names: Mapping[int, str | None]
    held: Mapping[int, Sequence[Held]]
    path: str  # the unit's

    def name(self, contact_id: int | None) -> str | None:
        return self.names.get(contact_id) if contact_id is not None else None

    def role(self, contact_id: int | None, at: datetime) -> str | None:
        """The role the contact held over the unit at `at`: an officer's before a member's, the
        nearest unit first (as a deleted contact's reports keep it: repositories_personal)."""
        if contact_id is None:
            return None
        covering = [
            (role, path)
            for role, path, granted, revoked in self.held.get(contact_id, ())
            if self.path.startswith(path) and granted <= at and (revoked is None or revoked > at)
        ]
        covering.sort(key=lambda rp: (rp[0] in OFFICER_ROLES, len(rp[1])), reverse=True)
        return covering[0][0] if covering else None


def _record(
    form_key: str,
    record_key: str,
    subs: Sequence[Submission],
    acts: Sequence[Review],
    form: Form | None,
    people: People,
    due: Due | None,
    *,
    reviewer: bool,
    schedules: Schedules,
    now: datetime,
    t: Translator,
) -> Record:
    period = _period(subs[-1].period)
    versions = []
    before: Submission | None = None
    for s in subs:
        deadline = due(period) if due is not None and period is not None else None
        versions.append(
            Version(
                submission=s,
                by_name=people.name(s.submitted_by_contact_id),
                by_role=s.submitted_by_role or people.role(s.submitted_by_contact_id, s.submitted_at),
                on_time=None if deadline is None else s.submitted_at < deadline,
                changes=tuple(changes(form, before.values, s.values, t)) if before is not None else (),
            )
        )
        before = s
    latest = subs[-1]
    per_entry = (
        form.record == "per_entry" if form is not None else not record_key.startswith(f"{latest.unit_id}:")
    )
    is_reviewed = form is not None and reviewed(form)
    state = state_of(latest, acts) if is_reviewed else None
    since = locks_at(schedules, form, period) if form is not None and is_reviewed and period else None
    locked = since is not None and now >= since and state is not None and not state.open_after_lock
    return Record(
        form_key=form_key,
        title=form.title.get(t.locale) if form is not None else form_key,
        record_key=record_key,
        period=period,
        per_entry=per_entry,
        versions=tuple(versions),
        figures=tuple(figures(form, latest.values, t)),
        brief=" · ".join(v for _, v in figures(form, latest.values, t, brief=True)),
        reviewed=is_reviewed,
        state=state.state if state is not None else "",
        acts=tuple(Act(a, people.name(a.contact_id), people.role(a.contact_id, a.at)) for a in acts),
        locked_since=since if locked else None,
        may_act=is_reviewed and reviewer and state is not None and state.state == WAITING,
    )


def _fields(form: Form | None, *value_maps: Mapping[str, Any]) -> list[tuple[str, Field | None]]:
    """The form's fields in order, then keys the values hold that the form no longer has."""
    known = list(form.fields) if form is not None else []
    keys = {f.key for f in known}
    extra = sorted({k for values in value_maps for k in values if k not in keys})
    return [(f.key, f) for f in known] + [(k, None) for k in extra]


def _show(field: Field | None, value: Any, t: Translator) -> str:
    if field is not None:
        return format_value(field, value, t.locale)
    return MISSING if value is None else str(value)


def _label(field: Field | None, key: str, t: Translator) -> str:
    return field.label.get(t.locale) if field is not None else key


def changes(
    form: Form | None, before: Mapping[str, Any], after: Mapping[str, Any], t: Translator
) -> list[Change]:
    """The fields whose value differs between two versions, in the form's order."""
    out = []
    for key, field in _fields(form, before, after):
        old, new = before.get(key), after.get(key)
        if old != new:
            out.append(Change(key, _label(field, key, t), _show(field, old, t), _show(field, new, t)))
    return out


def figures(
    form: Form | None, values: Mapping[str, Any], t: Translator, *, brief: bool = False
) -> list[tuple[str, str]]:
    """(label, value) of a version's answered fields; `brief`: the first few, for a one-line
    listing (an activity: its date, kind, topic, organiser)."""
    out = []
    for key, field in _fields(form, values):
        value = values.get(key)
        if value is None or value == "" or (brief and field is None):
            continue
        out.append((_label(field, key, t), _show(field, value, t)))
        if brief and len(out) == BRIEF_FIELDS:
            break
    return out


def _period(key: str) -> Period | None:
    try:
        return Period.parse(key)
    except ValueError:
        return None


async def _forms_of(reads: Reads, keys: Sequence[str], forms: Mapping[str, Form]) -> dict[str, Form]:
    """The forms of these keys: content/forms/, or the form an ad hoc request asked
    (`request_<id>`); a key neither knows is left out (its values are shown by key)."""
    out = {}
    for key in keys:
        if key in forms:
            out[key] = forms[key]
        elif key.startswith(REQUEST_PREFIX) and key[len(REQUEST_PREFIX) :].isdigit():
            request = await reads.requests.get(int(key[len(REQUEST_PREFIX) :]))
            form = request_form(request, forms) if request is not None else None
            if form is not None:
                out[key] = form
    return out


async def _due_of(reads: Reads, form_key: str, schedules: Schedules) -> Due:
    """The form's deadline: from content/schedules.yaml, or the due date of an ad hoc request."""
    if form_key.startswith(REQUEST_PREFIX) and form_key[len(REQUEST_PREFIX) :].isdigit():
        request = await reads.requests.get(int(form_key[len(REQUEST_PREFIX) :]))
        at = end_of_day(request.due_date) if request is not None else None
        return lambda _period: at

    def due(period: Period) -> datetime | None:
        deadline = schedules.deadline_for(form_key, period)
        return deadline.due_at(period) if deadline is not None else None

    return due
