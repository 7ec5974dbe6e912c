"""Half-year and annual reports sent without asking, after the due date.

The `period_reports` job runs daily. For each deadline with `report_after_days` (schedules.yaml),
from that many days after the due date and for two weeks more, every commune officer and
province staff member who has not had it yet gets the compiled report of their unit: the chat
summary, the .xlsx and a chart per indicator. Each unit is compiled and drawn once per language,
whoever and however many receive it, and the files are stored once (report_files); a web chat
recipient's message names them by download ids of their own (outbox.kept_for).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.domain.app import App
from bot.domain.clock import VN_TZ
from bot.domain.i18n import translator
from bot.domain.messages import Attachment
from bot.domain.periods import Period
from bot.domain.schedules import Deadline, load_schedules
from bot.messaging.jobs import Job, scheduled_for
from bot.messaging.outbox import attach, enqueue, notice_key, noticed_units, to_each_channel
from bot.messaging.recipients import COMPILED_REPORT_ROLES, Officer, officers
from bot.reports.aggregate import VILLAGE_FORM, Compiled
from bot.reports.compiled import compile_unit, render, summary_text
from bot.reports.document import Profile
from bot.reports.profile import unit_profile
from storage.models_outreach import KIND_REPORT as PERIOD_REPORT

log = logging.getLogger(__name__)

WINDOW_DAYS = 14  # an officer who joins (or a run missed) within this window still gets it


async def send_period_report(app: App, deadline: Deadline, period: Period) -> int:
    """Send the compiled report of `period` to every commune officer and province staff member
    who has not had it; the number of messages queued.

    A unit whose report cannot be made (compiled, drawn or queued) is logged and skipped: its
    officers get it on the next run, once fixed, and nobody else waits for it.
    """
    now = scheduled_for(app)
    async with app.read_only() as reads:
        recipients: list[Officer] = []
        for r in await officers(
            reads, list(COMPILED_REPORT_ROLES.values()), unit_kinds=list(COMPILED_REPORT_ROLES)
        ):
            if COMPILED_REPORT_ROLES.get(r.unit.kind) != r.role:
                continue
            if not await noticed_units(
                reads, PERIOD_REPORT, deadline.id, period.key, r.contact_id, [r.unit.id]
            ):
                recipients.append(r)
    compiled: dict[int, Compiled] = {}
    profiles: dict[int, Profile] = {}
    failed: set[int] = set()
    for r in recipients:
        if r.unit.id in compiled or r.unit.id in failed:
            continue
        try:
            # Heavy reads: no write lock, off the event loop; one read per unit, so that a
            # failure leaves no aborted transaction behind for the next unit.
            async with app.read_only() as reads:
                compiled[r.unit.id] = await compile_unit(
                    reads, r.unit, period, content_dir=app.content_dir, forms=app.forms, now=now
                )
                profiles[r.unit.id] = await unit_profile(reads, r.unit.id)
        except Exception:
            log.exception("compiled report of unit %s for %s not made: skipped", r.unit.id, period.key)
            failed.add(r.unit.id)
    rendered: dict[tuple[int, str], tuple[str, list[Attachment]]] = {}
    queued = 0
    for r in recipients:
        t = translator(r.locale)
        key = (r.unit.id, t.locale)
        if r.unit.id in failed:
            continue
        try:
            if key not in rendered:
                c = compiled[r.unit.id]
                files = await asyncio.to_thread(render, c, t, profile=profiles[r.unit.id])
                rendered[key] = (summary_text(c, t), files)
            text, files = rendered[key]
            notice = notice_key(PERIOD_REPORT, deadline.id, period.key, r.unit.id)
            async with app.uow() as uow:
                payload = await attach(uow, {"text": text, "options": []}, files, now)
                messages = to_each_channel(r, payload, [notice])
                queued += len(await enqueue(uow, messages, kind=PERIOD_REPORT, now=now))
                await uow.commit()
        except Exception:
            log.exception("compiled report of unit %s for %s not sent: skipped", r.unit.id, period.key)
            failed.add(r.unit.id)
    if failed:
        log.error(
            "compiled reports for %s: %d unit(s) skipped after an error: %s",
            period.key,
            len(failed),
            ", ".join(str(u) for u in sorted(failed)),
        )
    return queued


async def send_period_reports(app: App) -> int:
    """The daily job: compiled reports whose time has come."""
    now = scheduled_for(app)
    today = now.astimezone(VN_TZ).date()
    queued = 0
    for deadline in load_schedules(app.content_dir).deadlines:
        if deadline.report_after_days is None or deadline.form != VILLAGE_FORM or deadline.where:
            continue
        for period in deadline.periods_due_near(today, 0, deadline.report_after_days + WINDOW_DAYS):
            if today - deadline.due_date(period) >= timedelta(days=deadline.report_after_days):
                try:
                    queued += await send_period_report(app, deadline, period)
                except Exception:  # one deadline's failure stops no other one
                    log.exception("compiled reports of %s for %s failed", deadline.id, period.key)
    log.info("compiled reports for %s: %d messages queued", today.isoformat(), queued)
    return queued


JOBS = (Job("period_reports", send_period_reports, "30 8 * * *"),)
