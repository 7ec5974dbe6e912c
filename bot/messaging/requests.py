"""Ad hoc requests on the way out: the message that brings a request to each officer it asks,
and the requests due soon as deadlines for the daily reminders (bot/messaging/reminders.py).

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
from bot.domain.requests import AUDIENCE_KINDS, reply_command, request_deadline, request_form, request_period
from bot.domain.schedules import Deadline, load_schedules
from bot.messaging.outbox import enqueue, notice_key, to_each_channel
from bot.messaging.recipients import Officer, officers_in_area
from bot.reports.aggregate import UnitRef
from storage.models_requests import KIND_REQUEST, ReportRequest
from storage.uow import UnitOfWork

LIST_LIMIT = 10


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


async def queue_request(
    uow: UnitOfWork, request: ReportRequest, form: Form, sender: str, today: date, now: datetime
) -> list[Officer]:
    """Queue the request to every officer it asks, in the caller's transaction; those reached."""
    kinds = AUDIENCE_KINDS[request.audience]
    holders = await officers_in_area(uow, request.audience, request.area_path, kinds, today)
    by_contact: dict[int, tuple[Officer, list[UnitRef]]] = {}
    for officer in holders:
        by_contact.setdefault(officer.contact_id, (officer, []))[1].append(officer.unit)
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
