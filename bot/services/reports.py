"""Compiled reports on demand: who may have which unit's report (Action.COMPILE_REPORT), then
the figures from bot/reports/compiled.py. The console (`khuyenhoc report`) may have any unit's.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.domain.forms.model import Form
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed
from bot.domain.schedules import load_schedules
from bot.reports import SUMMARY_KINDS
from bot.reports.aggregate import Compiled
from bot.reports.compiled import compile_unit
from bot.reports.submissions_csv import latest_lines, render_submissions_csv
from bot.services.actor import Actor
from storage.readonly import ReadOnlyUnitOfWork


async def compile_report(
    reads: ReadOnlyUnitOfWork,
    actor: Actor,
    unit_id: int,
    period: Period,
    *,
    content_dir: Path,
    forms: dict[str, Any],
    now: datetime,
) -> Compiled:
    """The compiled report of a commune or province; NotAllowed outside the actor's area.

    It reads through a read-only unit of work, outside any write transaction (DESIGN.md, boundary 12).
    """
    unit = await reads.units.get(unit_id)
    if unit is None or unit.kind not in SUMMARY_KINDS:
        raise NotAllowed(Action.COMPILE_REPORT, unit, "not a commune or province")
    actor.require(Action.COMPILE_REPORT, unit)
    return await compile_unit(reads, unit, period, content_dir=content_dir, forms=forms, now=now)


async def may_compile_country(reads: ReadOnlyUnitOfWork, actor: Actor, on: date) -> bool:
    """The whole country's report is for the operator (`khuyenhoc report`), and for staff whose
    area covers every province (an admin granted on each): there is no unit above the provinces
    to hold a national role on."""
    if actor.is_console:
        return True
    provinces = await reads.units.children(None, on=on)
    return bool(provinces) and all(actor.may(Action.COMPILE_REPORT, p) for p in provinces)


async def compile_country(
    reads: ReadOnlyUnitOfWork,
    actor: Actor,
    period: Period,
    *,
    content_dir: Path,
    forms: dict[str, Any],
    now: datetime,
) -> Compiled:
    """The national compiled report (one row per province); NotAllowed unless
    `may_compile_country`."""
    if not await may_compile_country(reads, actor, now.date()):
        raise NotAllowed(Action.COMPILE_REPORT, None, "not the whole country")
    return await compile_unit(reads, None, period, content_dir=content_dir, forms=forms, now=now)


async def submissions_csv(
    reads: ReadOnlyUnitOfWork,
    actor: Actor,
    unit_id: int,
    period: Period,
    form: Form,
    *,
    content_dir: Path,
) -> bytes:
    """The latest submissions of `form` for `period` inside a commune or province, as CSV
    (bot/reports/submissions_csv.py); NotAllowed outside the actor's area, like the compiled
    report, whose permission it shares."""
    unit = await reads.units.get(unit_id)
    if unit is None or unit.kind not in SUMMARY_KINDS:
        raise NotAllowed(Action.COMPILE_REPORT, unit, "not a commune or province")
    actor.require(Action.COMPILE_REPORT, unit)
    deadline = load_schedules(content_dir).deadline_for(form.key, period)
    lines = await latest_lines(reads.session, unit, period, form)
    return render_submissions_csv(lines, form, deadline.due_at(period) if deadline else None)
