"""Ad hoc requests on the way out: the message that brings a request to each officer it asks,
the notice that it was cancelled, the units it has nobody to ask, the requests due soon as
deadlines for the daily reminders (bot/messaging/reminders.py), and the compiled answers sent to
the sender once the due date has passed (the `request_answers` job).

Each officer gets one message per request, on every channel they use, naming their units and
carrying a button (on Zalo: the command to type) that opens the answer. The message is queued
under a notice per unit (bot/messaging/outbox.py), in the transaction that stores the request.

The day after a standing request's due date the sender — and only them, while they may still
ask in its area — gets the answers as /tinhtrang shows them (bot/reports/requests.py: summary
and .xlsx), once: a notice per request. Who has not answered is said there; a cancelled request
sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.domain.app import App
from bot.domain.clock import VN_TZ
from bot.domain.commands import command_text
from bot.domain.forms.model import Form
from bot.domain.i18n import Translator, translator
from bot.domain.permissions import Action, load_grants, may_act_on
from bot.domain.requests import (
    AUDIENCE_KINDS,
    reply_command,
    request_deadline,
    request_form,
    request_form_key,
    request_period,
)
from bot.domain.schedules import Deadline, load_schedules
from bot.messaging.jobs import Job, scheduled_for
from bot.messaging.outbox import attach, enqueue, notice_key, noticed_units, to_each_channel
from bot.messaging.recipients import Officer, officers_in_area
from bot.reports.aggregate import UnitRef
from bot.reports.requests import Answers, compile_request, render_request, request_summary
from storage.models_requests import KIND_REQUEST, ReportRequest
from storage.readonly import ReadOnlyUnitOfWork
from storage.uow import Reads, UnitOfWork

log = logging.getLogger(__name__)

LIST_LIMIT = 10
# The notice key of the message saying a request was cancelled (one per officer and unit asked).
CANCELLED = "request_cancelled"
# The notice key of the compiled answers sent to the sender after the due date (one per request).
ANSWERS = "request_answers"
# A request due up to this many days ago still sends its answers (a run missed, a restart).
ANSWERS_WINDOW_DAYS = 14


def notice_text(t: Translator, request: ReportRequest, form: Form, sender: str, units: list[UnitRef]) -> str:
    names = ", ".join(u.name for u in units[:LIST_LIMIT]) + (" …" if len(units) > LIST_LIMIT else "")
    return t(
        "📋 Ad hoc report requested by the Study Promotion Association of {sender}: “{title}” ({count} questions), for {units}. Please answer by {date}: press “Answer now” or send {command}.",
        sender=sender,
        title=form.title.get(t.locale),
        count=t.number(len(form.fields)),
        units=names,
        date=t.date(request.due_date),
        command=command_text(t, reply_command(request.id)),
    )


def cancelled_text(t: Translator, request: ReportRequest, sender: str, units: list[UnitRef]) -> str:
    names = ", ".join(u.name for u in units[:LIST_LIMIT]) + (" …" if len(units) > LIST_LIMIT else "")
    return t(
        "🚫 The Study Promotion Association of {sender} cancelled its request “{title}” (due {date}) for {units}. There is no need to answer it.",
        sender=sender,
        title=request.title,
        date=t.date(request.due_date),
        units=names,
    )


async def asked_officers(
    reads: Reads, request: ReportRequest, today: date
) -> dict[int, tuple[Officer, list[UnitRef]]]:
    """The officers a request asks, by contact, each with the units they answer it for."""
    kinds = AUDIENCE_KINDS[request.audience]
    holders = await officers_in_area(reads, request.audience, request.area_path, kinds, today)
    by_contact: dict[int, tuple[Officer, list[UnitRef]]] = {}
    for officer in holders:
        by_contact.setdefault(officer.contact_id, (officer, []))[1].append(officer.unit)
    return by_contact


async def units_with_officer(reads: Reads, request: ReportRequest, today: date) -> set[int]:
    """The units of a request that have an officer it can reach: the others have nobody to ask."""
    kinds = AUDIENCE_KINDS[request.audience]
    holders = await officers_in_area(reads, request.audience, request.area_path, kinds, today)
    return {o.unit.id for o in holders}


async def queue_request(
    uow: UnitOfWork, request: ReportRequest, form: Form, sender: str, today: date, now: datetime
) -> list[Officer]:
    """Queue the request to every officer it asks, in the caller's transaction; those reached."""
    by_contact = await asked_officers(uow, request, today)
    period = request_period(request).key
    messages = []
    for officer, units in by_contact.values():
        t = translator(officer.locale)
        payload = {
            "text": notice_text(t, request, form, sender, units),
            "options": [{"id": "cmd:" + reply_command(request.id).lstrip("/"), "label": t("Answer now")}],
        }
        keys = [notice_key(KIND_REQUEST, form.key, period, u.id) for u in units]
        messages += to_each_channel(officer, payload, keys)
    await enqueue(uow, messages, kind=KIND_REQUEST, now=now)
    return [officer for officer, _ in by_contact.values()]


async def queue_cancelled(
    uow: UnitOfWork, request: ReportRequest, sender: str, today: date, now: datetime
) -> list[Officer]:
    """Tell every officer the request asks that it was cancelled, once (a notice per unit), in
    the caller's transaction; those told."""
    period = request_period(request).key
    messages = []
    told = []
    for officer, units in (await asked_officers(uow, request, today)).values():
        t = translator(officer.locale)
        payload = {"text": cancelled_text(t, request, sender, units), "options": []}
        keys = [notice_key(CANCELLED, request_form_key(request.id), period, u.id) for u in units]
        messages += to_each_channel(officer, payload, keys)
        told.append(officer)
    await enqueue(uow, messages, kind=KIND_REQUEST, now=now)
    return told


async def request_deadlines(app: App, today: date) -> list[Deadline]:
    """The requests due within the reminders' look-ahead, as deadlines."""
    times = load_schedules(app.content_dir).requests
    ahead = max(times.remind_before_days, default=-1)
    if ahead < 0:
        return []
    out = []
    async with app.read_only() as reads:  # the rows are read inside: leaving expires them
        for request in await reads.requests.due_between(today, today + timedelta(days=ahead)):
            form = request_form(request, app.forms)
            if form is not None:
                out.append(request_deadline(request, form, times))
    return out


# ---- the answers, to the sender after the due date ----------------------------------------------


async def request_answers(
    reads: ReadOnlyUnitOfWork, request: ReportRequest, form: Form, *, content_dir: Path, now: datetime
) -> Answers:
    """The answers so far summed per unit, the units with no officer to ask apart: what
    /tinhtrang shows and the sender gets after the due date."""
    staffed = await units_with_officer(reads, request, now.astimezone(VN_TZ).date())
    return await compile_request(reads, request, form, content_dir=content_dir, now=now, staffed=staffed)


async def request_sender(reads: Reads, request: ReportRequest) -> Officer | None:
    """The sender, in the role that lets them ask in the request's area, with every channel to
    reach them; None once they no longer may (left the post) or cannot be reached."""
    if request.created_by_contact_id is None:
        return None
    contact = await reads.contacts.get(request.created_by_contact_id)
    area = await reads.units.get(request.unit_id)
    if contact is None or area is None:
        return None
    grant = next(
        (g for g in await load_grants(reads, contact.id) if may_act_on([g], area, Action.REQUEST)), None
    )
    reach = (await reads.recipients.identities([contact.id])).get(contact.id)
    if grant is None or not reach:
        return None
    return Officer(
        contact.id, contact.locale, grant.role, UnitRef.of(grant.unit), tuple((c, e) for c, e, _ in reach)
    )


async def send_request_answers(app: App, request_id: int, now: datetime) -> int:
    """Send the sender of a standing request its compiled answers (summary and .xlsx), unless
    they had them; the number of messages queued."""
    async with app.read_only() as reads:  # the rows are read inside: leaving expires them
        request = await reads.requests.get(request_id)
        form = request_form(request, app.forms) if request is not None else None
        if request is None or form is None or request.cancelled_at is not None:
            return 0
        sender = await request_sender(reads, request)
        subject, period = request_form_key(request.id), request_period(request).key
        if sender is None or await noticed_units(
            reads, ANSWERS, subject, period, sender.contact_id, [request.unit_id]
        ):
            return 0
        answers = await request_answers(reads, request, form, content_dir=app.content_dir, now=now)
        t = translator(sender.locale)
        files = await asyncio.to_thread(render_request, answers, form, request, t)
        heading = t("The due date of your request #{id} has passed: here are the answers.", id=request.id)
        text = heading + "\n\n" + request_summary(answers, form, t)
        notice = notice_key(ANSWERS, subject, period, request.unit_id)
    async with app.uow() as uow:
        payload = await attach(uow, {"text": text, "options": []}, files, now)
        queued = await enqueue(uow, to_each_channel(sender, payload, [notice]), kind=KIND_REQUEST, now=now)
        await uow.commit()
    return len(queued)


async def send_answers_after_due(app: App) -> int:
    """The daily job: the answers of every standing request whose due date has just passed."""
    now = scheduled_for(app)
    today = now.astimezone(VN_TZ).date()
    async with app.read_only() as reads:
        due = await reads.requests.due_between(
            today - timedelta(days=ANSWERS_WINDOW_DAYS), today - timedelta(days=1)
        )
        ids = [r.id for r in due]
    queued = 0
    for request_id in ids:
        try:
            queued += await send_request_answers(app, request_id, now)
        except Exception:  # one request's failure stops no other one; the next run retries it
            log.exception("answers to request %s not sent: skipped", request_id)
    log.info("request answers for %s: %d messages queued", today.isoformat(), queued)
    return queued


JOBS = (Job("request_answers", send_answers_after_due, "15 8 * * *"),)
