"""Reminders before a due date, and escalation after it, only about units that have not reported.

Every day (the `reminders` job) each deadline of content/schedules.yaml is looked at:

- `remind_before_days` (3 and 0 by default): the officers of each unit still missing (the
  village officer of a village, the commune officer of a commune for a commune-level report) get
  one message naming their missing units. Officers whose units have all reported get nothing.
- `escalate_after_days` (1): officers above the missing units get the list: a commune officer
  the villages of the commune still missing, province staff the communes that still have
  missing villages (with how many of how many). On the same days, the reviewers of reports
  still waiting for review (bot/services/reviews.py) get the list of them (`remind_reviews`).

Ad hoc requests (/yeucau) are deadlines too (bot/domain/requests.py): limited to their area,
reminded as `requests:` of content/schedules.yaml says, with a button that opens the answer,
and never escalated.

Every message is queued with a notice per (deadline and offset, period, unit, officer)
(bot/messaging/outbox.py), so a re-run, a second instance or a retry after a crash never sends
the same reminder twice. /dung does not stop them: they are the officers' work, not outreach.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from bot.domain.app import App
from bot.domain.clock import VN_TZ
from bot.domain.commands import command_text
from bot.domain.i18n import Translator, translator
from bot.domain.periods import Period
from bot.domain.schedules import Deadline, load_schedules
from bot.messaging.jobs import Job, scheduled_for
from bot.messaging.outbox import enqueue, notice_key, noticed_units, to_each_channel
from bot.messaging.recipients import ANSWERS_FOR, ESCALATION_ROLES, REVIEWED_BY, Officer, officers
from bot.messaging.requests import request_deadlines
from bot.reports.aggregate import UnitRef, expected_by_child, missing_units
from bot.reports.labels import kind_plural
from bot.reports.review_queue import reviewed_forms, waiting_by_reviewed_unit
from storage.models_outreach import KIND_ESCALATION as ESCALATION
from storage.models_outreach import KIND_REMINDER as REMINDER

log = logging.getLogger(__name__)

# Which command sends each form.
FORM_COMMANDS = {"village_report": "/baocao", "activity_report": "/hoatdong", "commune_report": "/baocaoxa"}
LIST_LIMIT = 30
BATCH = 200  # recipients per transaction


def names(t: Translator, units: list[UnitRef], limit: int = LIST_LIMIT) -> str:
    shown = ", ".join(u.name for u in units[:limit])
    if len(units) > limit:
        shown += " " + t("and {n} more", n=t.number(len(units) - limit))
    return shown


def command_of(deadline: Deadline) -> str:
    """What the officers send to report: the deadline's own command (a request's), or the form's."""
    return deadline.command or FORM_COMMANDS.get(deadline.form, "/baocao")


def answer_options(t: Translator, deadline: Deadline) -> list[dict[str, str]]:
    """A button that opens the answer, for a deadline with a command of its own (a request)."""
    if deadline.command is None:
        return []
    return [{"id": "cmd:" + deadline.command.lstrip("/"), "label": t("Answer now")}]


def reminder_text(
    t: Translator, deadline: Deadline, period: Period, units: list[UnitRef], days_left: int
) -> str:
    title = deadline.title.get(t.locale)
    due = t.date(deadline.due_date(period))
    command = command_text(t, command_of(deadline))
    if days_left > 0:
        return t(
            "⏰ Reminder: {title}, {period}. Due on {date} ({days} days left). Not yet received from: {units}. Send {command} to report.",
            title=title,
            period=period.label(t),
            date=due,
            days=days_left,
            units=names(t, units),
            command=command,
        )
    return t(
        "⏰ Today ({date}) is the deadline for {title}, {period}. Not yet received from: {units}. Send {command} to report now.",
        date=due,
        title=title,
        period=period.label(t),
        units=names(t, units),
        command=command,
    )


def escalation_text(
    t: Translator,
    deadline: Deadline,
    period: Period,
    area: UnitRef,
    missing: list[UnitRef],
    grouped: list[tuple[UnitRef, int, int]] | None,
) -> str:
    """`grouped`: (child of the area, missing inside it, expected inside it), for wider areas."""
    title = deadline.title.get(t.locale)
    due = t.date(deadline.due_date(period))
    command = command_text(t, command_of(deadline))
    if grouped is None:
        return t(
            "⚠️ {title}, {period}: the deadline was {date}. Not yet reported in {unit} ({count}): {units}. Please remind them, or send the report for them with {command}.",
            title=title,
            period=period.label(t),
            date=due,
            unit=area.name,
            count=t.number(len(missing)),
            units=names(t, missing),
            command=command,
        )
    lines = [
        t(
            "⚠️ {title}, {period}: the deadline was {date}. In {unit}, {count} {kinds} have units that have not reported:",
            title=title,
            period=period.label(t),
            date=due,
            unit=area.name,
            count=t.number(len(grouped)),
            kinds=kind_plural(t, grouped[0][0].kind) if grouped else "",
        )
    ]
    for child, n_missing, n_expected in grouped[:LIST_LIMIT]:
        lines.append(
            t(
                "• {unit}: {missing} of {expected} not reported",
                unit=child.name,
                missing=t.number(n_missing),
                expected=t.number(n_expected),
            )
        )
    if len(grouped) > LIST_LIMIT:
        lines.append(t("and {n} more", n=t.number(len(grouped) - LIST_LIMIT)))
    return "\n".join(lines)


async def _deliver(
    app: App,
    kind: str,
    subject: str,
    period: Period,
    plan: list[tuple[Officer, list[int], dict[str, Any]]],
    now: datetime,
) -> int:
    """Queue the planned messages in batches, each under its notices (one per unit): what was
    sent already is skipped. The number of messages queued."""
    sent = 0
    for i in range(0, len(plan), BATCH):
        async with app.uow() as uow:
            messages = []
            for officer, unit_ids, payload in plan[i : i + BATCH]:
                keys = [notice_key(kind, subject, period.key, u) for u in unit_ids]
                messages += to_each_channel(officer, payload, keys)
            sent += len(await enqueue(uow, messages, kind=kind, now=now))
            await uow.commit()
    return sent


async def remind(app: App, deadline: Deadline, period: Period, days_left: int, now: datetime) -> int:
    """Remind the officers of the units that have not reported; the number of messages queued."""
    subject = f"{deadline.id}@-{days_left}"
    async with app.read_only() as reads:
        missing = {u.id: u for u in await missing_units(reads, deadline, period)}
        roles = sorted({ANSWERS_FOR[k] for k in deadline.expected if k in ANSWERS_FOR})
        holders = await officers(reads, roles, unit_ids=list(missing)) if missing else []
        by_contact: dict[int, tuple[Officer, list[UnitRef]]] = {}
        for r in holders:
            if ANSWERS_FOR.get(r.unit.kind) != r.role or r.unit.id not in missing:
                continue
            by_contact.setdefault(r.contact_id, (r, []))[1].append(r.unit)
        plan = []
        for recipient, units in by_contact.values():
            done = await noticed_units(
                reads, REMINDER, subject, period.key, recipient.contact_id, [u.id for u in units]
            )
            todo = [u for u in units if u.id not in done]
            if todo:
                t = translator(recipient.locale)
                text = reminder_text(t, deadline, period, todo, days_left)
                payload = {"text": text, "options": answer_options(t, deadline)}
                plan.append((recipient, [u.id for u in todo], payload))
    return await _deliver(app, REMINDER, subject, period, plan, now)


async def escalate(app: App, deadline: Deadline, period: Period, days_after: int, now: datetime) -> int:
    """Tell the officers above the missing units which ones are still missing."""
    subject = f"{deadline.id}@+{days_after}"
    async with app.read_only() as reads:
        missing = await missing_units(reads, deadline, period)
        above = {a for u in missing for a in u.path_ids[:-1]}
        holders = [
            r
            for r in await officers(reads, ESCALATION_ROLES, unit_ids=sorted(above))
            if r.role == ANSWERS_FOR.get(r.unit.kind)
        ]
        inside: dict[int, list[UnitRef]] = defaultdict(list)
        for u in missing:
            for a in u.path_ids[:-1]:
                inside[a].append(u)
        plan = []
        for r in holders:
            area = r.unit
            units = inside.get(area.id, [])
            if not units or area.id in await noticed_units(
                reads, ESCALATION, subject, period.key, r.contact_id, [area.id]
            ):
                continue
            t = translator(r.locale)
            depth = len(area.path_ids)
            children = defaultdict(list)
            for u in units:
                children[u.path_ids[depth]].append(u)
            if all(len(u.path_ids) == depth + 1 for u in units):
                text = escalation_text(t, deadline, period, area, units, None)
            else:
                expected = await expected_by_child(reads, deadline.expected, period, area)
                refs = {u.id: UnitRef.of(u) for u in await reads.units.many(list(children))}
                grouped = sorted(
                    ((refs[c], len(us), expected.get(c, len(us))) for c, us in children.items() if c in refs),
                    key=lambda g: (-g[1], g[0].name),
                )
                text = escalation_text(t, deadline, period, area, units, grouped)
            plan.append((r, [area.id], {"text": text, "options": []}))
    return await _deliver(app, ESCALATION, subject, period, plan, now)


def review_reminder_text(
    t: Translator, deadline: Deadline, period: Period, area: UnitRef, units: list[str]
) -> str:
    return t(
        "⚠️ {title}, {period}: {count} reports of {unit} wait for your review: {units}. Send /review to approve them or return them for correction.",
        title=deadline.title.get(t.locale),
        period=period.label(t),
        count=t.number(len(units)),
        unit=area.name,
        units=", ".join(units[:LIST_LIMIT])
        + (" " + t("and {n} more", n=t.number(len(units) - LIST_LIMIT)) if len(units) > LIST_LIMIT else ""),
    )


async def remind_reviews(app: App, deadline: Deadline, period: Period, days_after: int, now: datetime) -> int:
    """Tell the reviewers (recipients.REVIEWED_BY) which reports still wait for their review."""
    if deadline.form not in {f.key for f in reviewed_forms(app.forms)}:
        return 0
    subject = f"{deadline.id}@+{days_after}:review"
    kinds = [k for k in deadline.expected if k in REVIEWED_BY]
    async with app.read_only() as reads:
        waiting = await waiting_by_reviewed_unit(reads, deadline.form, kinds, period)
        roles = sorted({REVIEWED_BY[k] for k in kinds})
        holders = await officers(reads, roles, unit_ids=sorted(waiting)) if waiting else []
        plan = []
        for r in holders:
            if r.role not in {REVIEWED_BY[k] for k in kinds} or r.unit.id not in waiting:
                continue
            if r.unit.id in await noticed_units(
                reads, ESCALATION, subject, period.key, r.contact_id, [r.unit.id]
            ):
                continue
            text = review_reminder_text(translator(r.locale), deadline, period, r.unit, waiting[r.unit.id])
            plan.append((r, [r.unit.id], {"text": text, "options": []}))
    return await _deliver(app, ESCALATION, subject, period, plan, now)


async def send_reminders(app: App) -> int:
    """The daily job: reminders and escalations due today for every deadline."""
    now = scheduled_for(app)
    today: date = now.astimezone(VN_TZ).date()
    queued = 0
    schedules = load_schedules(app.content_dir)
    for deadline in [*schedules.deadlines, *await request_deadlines(app, today)]:
        before = max(deadline.remind_before_days, default=0)
        after = max(deadline.escalate_after_days, default=0)
        for period in deadline.periods_due_near(today, before, after):
            days_left = (deadline.due_date(period) - today).days
            if days_left in deadline.remind_before_days:
                queued += await remind(app, deadline, period, days_left, now)
            if -days_left in deadline.escalate_after_days:
                queued += await escalate(app, deadline, period, -days_left, now)
                queued += await remind_reviews(app, deadline, period, -days_left, now)
    log.info("reminders for %s: %d messages queued", today.isoformat(), queued)
    return queued


JOBS = (Job("reminders", send_reminders, "0 8 * * *"),)
