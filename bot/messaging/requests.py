"""Ad hoc requests on the way out: the message that brings a request to each officer it asks,
the notice that it was cancelled, the units it has nobody to ask, and the requests due soon as
deadlines for the daily reminders (bot/messaging/reminders.py).

Each officer gets one message per request, on every channel they use, naming their units and
carrying a button (on Zalo: the command to type) that opens the answer. The message is queued
under a notice per unit (bot/messaging/outbox.py), in the transaction that stores the request.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bot.domain.app import App
from bot.domain.commands import command_text
from bot.domain.forms.model import Form
from bot.domain.i18n import Translator, translator
from bot.domain.requests import (
    AUDIENCE_KINDS,
    reply_command,
    request_deadline,
    request_form,
    request_form_key,
    request_period,
)
from bot.domain.schedules import Deadline, load_schedules
from bot.messaging.outbox import enqueue, notice_key, to_each_channel
from bot.messaging.recipients import Officer, officers_in_area
from bot.reports.aggregate import UnitRef
from storage.models_requests import KIND_REQUEST, ReportRequest
from storage.uow import Reads, UnitOfWork

LIST_LIMIT = 10
# The notice key of the message saying a request was cancelled (one per officer and unit asked).
CANCELLED = "request_cancelled"


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
