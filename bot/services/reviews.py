"""Review and approval of reports, and the lock after the deadline (DOMAIN.md "Review and approval").

The officers of the unit *above* the one that filed review its report: a commune officer the
reports of the commune's villages, province staff a commune's own report (`Action.REVIEW`,
checked on the parent unit). Each version is waiting until it is approved or returned with a
reason; a returned report is corrected as a new version, which waits again. Forms with one
record per unit and period (`record: per_period`) are reviewed; activities are not.

A period locks `lock_after_days` after its deadline (content/schedules.yaml): the unit's own
officers can no longer change it, its reviewers still can. A returned report stays open for its
correction, and a reviewer can reopen one unit; either way the next version closes it again.
Every act is a `reviews` row and an audit row; a return queues the notice to the unit's officers
through the outbox, with a button that opens the correction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.domain.commands import command_text
from bot.domain.forms.model import Form
from bot.domain.i18n import translator
from bot.domain.messages import Option
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed, area
from bot.domain.schedules import Schedules, load_schedules
from bot.messaging.outbox import enqueue, notice_key, to_each_channel
from bot.messaging.recipients import RETURNED_TO, officers
from bot.messaging.reminders import FORM_COMMANDS
from bot.reports.review_queue import reviewed
from bot.services.actor import CONSOLE as CONSOLE_ACTOR
from bot.services.actor import Actor
from storage.models import Submission, Unit
from storage.models_outreach import KIND_REVIEW
from storage.models_reviews import APPROVED, REOPENED, RETURNED, WAITING, Review
from storage.uow import Reads, UnitOfWork

REASON_MIN = 3
REASON_MAX = 500


def record_key(unit_id: int, period: Period) -> str:
    """The record of a per-period form: the unit and the period (as the report dialogue keys it)."""
    return f"{unit_id}:{period.key}"


class ReviewError(ValueError):
    """A review act that does not apply: an older version, a period that is not locked…"""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class PeriodLocked(NotAllowed):
    """The period is locked for this unit's officers (deadline plus grace days)."""

    def __init__(self, unit: Unit, period: Period, since: datetime) -> None:
        super().__init__(Action.REPORT, unit, f"{period.key} locked since {since.isoformat()}")
        self.period = period
        self.since = since


# ---------------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class RecordState:
    """Where one record stands: its latest version, that version's review state, and whether
    a return or a reopening lets its officers change it after the lock."""

    latest: Submission | None
    state: str  # WAITING | APPROVED | RETURNED ("" when nothing was sent)
    decision: Review | None  # the approval or return behind `state`
    open_after_lock: bool


def state_of(latest: Submission | None, acts: Iterable[Review]) -> RecordState:
    """The state from a record's latest version and its review acts (oldest first)."""
    version = latest.version if latest is not None else None
    current = [a for a in acts if a.version == version]
    decision = next((a for a in reversed(current) if a.decision in (APPROVED, RETURNED)), None)
    last = current[-1] if current else None
    state = "" if latest is None else (decision.decision if decision else WAITING)
    return RecordState(latest, state, decision, last is not None and last.decision in (RETURNED, REOPENED))


async def record_state(reads: Reads, form_key: str, key: str) -> RecordState:
    latest = await reads.submissions.latest(form_key, key)
    return state_of(latest, await reads.reviews.of_record(form_key, key))


async def may_review(reads: Reads, actor: Actor, unit: Unit) -> bool:
    """Whether the actor reviews the unit's reports: a review role on the unit's parent."""
    if actor.is_console:
        return True
    parent = await reads.units.get(unit.parent_id) if unit.parent_id is not None else None
    return parent is not None and actor.may(Action.REVIEW, parent)


def locks_at(schedules: Schedules, form: Form, period: Period) -> datetime | None:
    """When the period locks for the officers of the units filing `form` (None: never)."""
    if not reviewed(form):
        return None
    deadline = schedules.deadline_for(form.key, period)
    return deadline.locks_at(period) if deadline is not None else None


async def lock_for(
    reads: Reads, actor: Actor, form: Form, unit: Unit, period: Period, *, now: datetime, schedules: Schedules
) -> datetime | None:
    """Since when the actor may no longer change the unit's record for the period; None: they may."""
    since = locks_at(schedules, form, period)
    if since is None or now < since or await may_review(reads, actor, unit):
        return None
    state = await record_state(reads, form.key, record_key(unit.id, period))
    return None if state.open_after_lock else since


async def check_not_locked(
    uow: UnitOfWork,
    actor: Actor,
    form: Form,
    unit: Unit,
    period_key: str,
    *,
    now: datetime,
    content_dir: Path,
) -> None:
    """Raise PeriodLocked when the actor may no longer change the record (submit_report asks)."""
    if not reviewed(form):
        return
    period = Period.parse(period_key)
    since = await lock_for(uow, actor, form, unit, period, now=now, schedules=load_schedules(content_dir))
    if since is not None:
        raise PeriodLocked(unit, period, since)


# ---------------------------------------------------------------------------------- acts


@dataclass(frozen=True, slots=True)
class Reviewed:
    review: Review
    submission: Submission
    unit: Unit
    notified: int = 0  # officers told (a return)


async def _version_to_review(
    uow: UnitOfWork, actor: Actor, submission_id: int, decision: str
) -> tuple[Submission, Unit]:
    """The submission, if it is the latest version of its record, the actor reviews its unit, and
    it does not already carry `decision`."""
    submission = await uow.reviews.submission(submission_id)
    if submission is None:
        raise NotAllowed(Action.REVIEW, None, f"no submission {submission_id}")
    unit = await uow.units.get(submission.unit_id)
    assert unit is not None
    if not await may_review(uow, actor, unit):
        raise NotAllowed(Action.REVIEW, unit, "reviews belong to the officers of the unit above")
    latest = await uow.submissions.latest(submission.form_key, submission.record_key)
    if latest is None or latest.id != submission.id:
        raise ReviewError("superseded")
    # The same decision twice (a double click, two reviewers on the same page) is refused; the
    # other one stays open: province staff may return a version their commune approved.
    decided = (await uow.reviews.decisions([submission.id])).get(submission.id)
    if decided is not None and decided.decision == decision:
        raise ReviewError("reviewed")
    return submission, unit


async def _act(
    uow: UnitOfWork,
    actor: Actor,
    submission: Submission,
    unit: Unit,
    decision: str,
    reason: str | None,
    now: datetime,
) -> Review:
    review = await uow.reviews.add(
        Review(
            form_key=submission.form_key,
            record_key=submission.record_key,
            unit_id=unit.id,
            period=submission.period,
            submission_id=submission.id,
            version=submission.version,
            decision=decision,
            reason=reason,
            contact_id=actor.contact_id,
            at=now,
        )
    )
    detail: dict[str, Any] = {
        "form": submission.form_key,
        "record": submission.record_key,
        "version": submission.version,
        "submission_id": submission.id,
    }
    if reason:
        detail["reason"] = reason
    actor.audit(uow, now, f"review.{decision}", unit.id, **detail)
    return review


async def approve(uow: UnitOfWork, actor: Actor, submission_id: int, *, now: datetime) -> Reviewed:
    """Approve the latest version of a report (duyệt)."""
    submission, unit = await _version_to_review(uow, actor, submission_id, APPROVED)
    review = await _act(uow, actor, submission, unit, APPROVED, None, now)
    return Reviewed(review, submission, unit)


def clean_reason(text: str) -> str:
    """The reason as stored; ReviewError('reason') when too short, cut at REASON_MAX."""
    reason = " ".join(text.split())
    if len(reason) < REASON_MIN:
        raise ReviewError("reason")
    return reason[:REASON_MAX]


async def return_report(
    uow: UnitOfWork,
    actor: Actor,
    submission_id: int,
    reason: str,
    *,
    now: datetime,
    forms: dict[str, Form],
) -> Reviewed:
    """Return the latest version of a report for correction (trả lại), with the reason its
    officers read; the notice to them is queued in the same transaction."""
    why = clean_reason(reason)
    submission, unit = await _version_to_review(uow, actor, submission_id, RETURNED)
    review = await _act(uow, actor, submission, unit, RETURNED, why, now)
    notified = await _notify_returned(uow, review, submission, unit, forms.get(submission.form_key), now)
    return Reviewed(review, submission, unit, notified)


async def _notify_returned(
    uow: UnitOfWork, review: Review, submission: Submission, unit: Unit, form: Form | None, now: datetime
) -> int:
    """The returned report's notice to those who answer for the unit (recipients.RETURNED_TO);
    how many people it was queued for."""
    role = RETURNED_TO.get(unit.kind)
    if role is None:
        return 0
    holders = [o for o in await officers(uow, [role], unit_ids=[unit.id]) if o.unit.id == unit.id]
    period = Period.parse(submission.period)
    command = FORM_COMMANDS.get(submission.form_key, "/baocao")
    key = notice_key(KIND_REVIEW, f"returned:{review.id}", period.key, unit.id)
    messages = []
    for officer in holders:
        t = translator(officer.locale)
        title = form.title.get(t.locale) if form else submission.form_key
        text = t(
            "↩️ Your report was returned for correction: {form}, {unit}, {period} (version {version}).\nReason: {reason}\nPlease correct it and send it again: press the button, or send {command} and choose {unit}.",
            form=title,
            unit=unit.name,
            period=period.label(t),
            version=submission.version,
            reason=review.reason or "",
            command=command_text(t, command),
        )
        button = Option(f"cmd:{command.lstrip('/')} {unit.id} {period.key}", t("Correct the report"))
        payload = {"text": text, "options": [{"id": button.id, "label": button.label}]}
        messages += to_each_channel(officer, payload, [key])
    queued = await enqueue(uow, messages, kind=KIND_REVIEW, now=now)
    return len({m.contact_id for m in queued})


async def reopen(
    uow: UnitOfWork,
    actor: Actor,
    form: Form,
    unit_id: int,
    period: Period,
    *,
    now: datetime,
    content_dir: Path,
) -> Review:
    """Let the unit's officers change a locked period once more, until their next version."""
    unit = await uow.units.get(unit_id)
    if unit is None:
        raise NotAllowed(Action.REVIEW, None, f"no unit {unit_id}")
    if not await may_review(uow, actor, unit) or unit.kind not in form.unit_kinds:
        raise NotAllowed(Action.REVIEW, unit, "reviews belong to the officers of the unit above")
    since = locks_at(load_schedules(content_dir), form, period)
    if since is None or now < since:
        raise ReviewError("not_locked")
    key = record_key(unit.id, period)
    state = await record_state(uow, form.key, key)
    if state.open_after_lock:
        raise ReviewError("already_open")
    latest = state.latest
    review = await uow.reviews.add(
        Review(
            form_key=form.key,
            record_key=key,
            unit_id=unit.id,
            period=period.key,
            submission_id=latest.id if latest else None,
            version=latest.version if latest else None,
            decision=REOPENED,
            contact_id=actor.contact_id,
            at=now,
        )
    )
    actor.audit(uow, now, "review.reopened", unit.id, form=form.key, record=key, period=period.key)
    return review


# ---------------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class ToReview:
    """The latest version of one unit's report, and where its review stands."""

    submission: Submission
    unit: Unit
    state: str
    decision: Review | None


def reviewer_areas(actor: Actor) -> list[Unit]:
    """The units whose direct sub-units' reports the actor reviews in /duyet."""
    return area(actor.grants, Action.REVIEW)


async def reports_to_review(
    reads: Reads, actor: Actor, forms: Sequence[Form], period: Period, within: Unit
) -> list[ToReview]:
    """The latest version of every reviewed report of `period` filed by the units directly
    below `within` (the villages of a commune; a province's communes), with their states."""
    if not actor.may(Action.REVIEW, within):
        raise NotAllowed(Action.REVIEW, within)
    wanted = [f for f in forms if reviewed(f)]
    kinds = sorted({k for f in wanted for k in f.unit_kinds})
    if not wanted or not kinds:
        return []
    rows = [
        (s, u)
        for s, u in await reads.reviews.latest_versions(
            [f.key for f in wanted], period.key, within.path, kinds
        )
        if u.parent_id == within.id
    ]
    decisions = await reads.reviews.decisions([s.id for s, _ in rows])
    out = []
    for s, u in rows:
        d = decisions.get(s.id)
        out.append(ToReview(s, u, d.decision if d else WAITING, d))
    return out


@dataclass
class Progress:
    """Review progress of one area's reporting units for one form and period."""

    unit: Unit
    expected: int = 0
    approved: int = 0
    waiting: int = 0
    returned: int = 0

    @property
    def reported(self) -> int:
        return self.approved + self.waiting + self.returned


async def approval_progress(
    reads: Reads, actor: Actor, form: Form, period: Period, within: Unit
) -> list[Progress]:
    """For each sub-unit of `within` (the communes of a province): how many of its reporting
    units have their `form` report for `period` approved, waiting or returned."""
    if not actor.may(Action.REVIEW, within):
        raise NotAllowed(Action.REVIEW, within)
    children = await reads.units.children(within.id, None, on=period.end)
    by_id = {c.id: Progress(c) for c in children}
    for parent_id, n in (
        await reads.reviews.count_units_by_parent(within.path, form.unit_kinds, period)
    ).items():
        if parent_id in by_id:
            by_id[parent_id].expected = n
    rows = await reads.reviews.latest_versions([form.key], period.key, within.path, form.unit_kinds)
    decisions = await reads.reviews.decisions([s.id for s, _ in rows])
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s, u in rows:
        d = decisions.get(s.id)
        if u.parent_id is not None:
            counts[u.parent_id][d.decision if d else WAITING] += 1
    for parent_id, c in counts.items():
        p = by_id.get(parent_id)
        if p is not None:
            p.approved, p.waiting, p.returned = c[APPROVED], c[WAITING], c[RETURNED]
    return [p for p in by_id.values() if p.expected or p.reported]


async def locked_units(
    reads: Reads,
    actor: Actor,
    form: Form,
    period: Period,
    within: Unit,
    *,
    now: datetime,
    schedules: Schedules,
) -> list[Unit]:
    """The units below `within` whose officers may not change `period` now (to reopen one)."""
    since = locks_at(schedules, form, period)
    if since is None or now < since or not actor.may(Action.REVIEW, within):
        return []
    children = await reads.units.children(within.id, form.unit_kinds, on=period.end)
    out = []
    for unit in children:
        if not (await record_state(reads, form.key, record_key(unit.id, period))).open_after_lock:
            out.append(unit)
    return out


# ---------------------------------------------------------------------------------- the demo

# Two villages' reports for the demo: one approved, one returned with a reason (a newcomer sees
# review working). Fields the form no longer has are dropped; fields it gained stay empty.
DEMO_REPORT: dict[str, Any] = {
    "households_total": 120,
    "population_total": 480,
    "lf_registered": 95,
    "lf_recognized": 84,
    "clans_total": 8,
    "lc_registered": 6,
    "lc_recognized": 5,
    "clan_boards": 6,
    "village_lc_status": "recognized",
    "members_total": 130,
    "members_new": 6,
    "adults_total": 300,
    "lcit_registered": 140,
    "adults_learning_total": 220,
    "lcit_recognized": 120,
    "fund_raised_vnd": 6_000_000,
    "fund_disbursed_vnd": 4_000_000,
    "fund_balance_vnd": 2_000_000,
    "scholarship_count": 5,
    "scholarship_amount_vnd": 2_500_000,
    "award_count": 6,
    "award_amount_vnd": 1_500_000,
    "clc_sessions": 4,
    "clc_attendance": 160,
}
DEMO_RETURN_REASON = (
    "Số hộ được công nhận Gia đình học tập (84) chưa khớp với danh sách bình xét của xã (80 hộ); "
    "đề nghị thôn kiểm tra lại."
)


async def seed_demo_reviews(
    uow: UnitOfWork, form: Form, villages: Sequence[Unit], period: Period, now: datetime
) -> int:
    """The first two villages' reports for `period`, one approved and one returned (as the
    console); villages that already reported are left alone. How many reports were added."""
    added = 0
    for unit, decision in zip(villages, (APPROVED, RETURNED), strict=False):
        key = record_key(unit.id, period)
        if await uow.submissions.latest(form.key, key) is not None:
            continue
        fv = await uow.submissions.form_version(form.key, form.digest, form.definition, now)
        values = {f.key: DEMO_REPORT.get(f.key) for f in form.fields}
        saved = await uow.submissions.add_version(
            Submission(
                form_key=form.key,
                record_key=key,
                unit_id=unit.id,
                period=period.key,
                form_version_id=fv.id,
                values=values,
                submitted_at=now,
                channel="demo",
                version=0,
            )
        )
        CONSOLE_ACTOR.audit(uow, now, "submission.create", unit.id, form=form.key, record=key, version=1)
        reason = DEMO_RETURN_REASON if decision == RETURNED else None
        await _act(uow, CONSOLE_ACTOR, saved, unit, decision, reason, now)
        added += 1
    return added
