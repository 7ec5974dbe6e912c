"""Submitting a report: who may, for which unit, and the stored version with its audit row.

A correction is a new version of the same record (unit and period for a village report); the
earlier versions stay, and the new one waits for review again (bot/services/reviews.py). The
dialogue collects and checks the answers; this function is where they are authorised again
(roles may change while a dialogue is open, a period may lock) and written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.domain.calendar import is_lifelong_learning_week
from bot.domain.forms.model import Form
from bot.domain.periods import Period
from bot.domain.permissions import NotAllowed, report_action
from bot.domain.schedules import PeriodNotFiled, load_schedules
from bot.services.actor import Actor
from bot.services.reviews import check_not_locked
from storage.models import Submission, Unit
from storage.uow import UnitOfWork

ACTIVITY_FORM = "activity_report"


@dataclass(frozen=True, slots=True)
class Draft:
    """The answers of one report, as the dialogue collected them."""

    form: Form
    record_key: str
    unit_id: int
    period: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Submitted:
    submission: Submission
    unit: Unit
    previous: Submission | None  # the version this one corrects


async def submit_report(
    uow: UnitOfWork,
    actor: Actor,
    draft: Draft,
    *,
    now: datetime,
    channel: str | None,
    content_dir: Path,
) -> Submitted:
    """Store `draft` as the next version of its record. NotAllowed when the actor may not
    report for the unit (or the unit does not file this form); PeriodNotFiled when the form is
    not filed for the period (content/schedules.yaml: the village report for 2026-H2);
    PeriodLocked (a NotAllowed) when the period is locked for them."""
    form = draft.form
    action = report_action(form.key)
    unit = await uow.units.get(draft.unit_id)
    if unit is None:
        raise NotAllowed(action, None, f"no unit {draft.unit_id}")
    actor.require(action, unit)
    if unit.kind not in form.unit_kinds:
        raise NotAllowed(action, unit, f"a {unit.kind} does not file {form.key}")
    period = Period.parse(draft.period)
    schedules = load_schedules(content_dir)
    if not schedules.files_for(form.key, period, form.period_kinds):
        raise PeriodNotFiled(form.key, period, schedules.covering(form.key, period, form.period_kinds))
    await check_not_locked(uow, actor, form, unit, draft.period, now=now, content_dir=content_dir)
    values: dict[str, Any] = {f.key: draft.values.get(f.key) for f in form.fields}
    if form.key == ACTIVITY_FORM and values.get("activity_date"):
        values["is_lifelong_learning_week"] = is_lifelong_learning_week(
            date.fromisoformat(values["activity_date"]), content_dir
        )
    previous = await uow.submissions.latest(form.key, draft.record_key)
    fv = await uow.submissions.form_version(form.key, form.digest, form.definition, now)
    saved = await uow.submissions.add_version(
        Submission(
            form_key=form.key,
            record_key=draft.record_key,
            unit_id=unit.id,
            period=draft.period,
            form_version_id=fv.id,
            values=values,
            submitted_by_contact_id=actor.contact_id,
            submitted_at=now,
            channel=channel,
            version=0,
        )
    )
    actor.audit(
        uow,
        now,
        "submission.create",
        unit.id,
        form=form.key,
        record=draft.record_key,
        version=saved.version,
        submission_id=saved.id,
    )
    return Submitted(saved, unit, previous)
