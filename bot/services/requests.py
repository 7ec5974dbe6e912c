"""Ad hoc requests (/yeucau, /traloi, /tinhtrang): who may ask whom, sending, answering, and who
has answered.

Authorisation lives here, whatever a dialogue offered: the sender holds Action.REQUEST on the
area and may ask the audience there (ASKABLE: commune officers ask village officers, province
staff ask commune or village officers); an answer comes from an officer of the audience on a
unit inside the area, while the request is open. Sending writes the request, queues it to every
officer asked (bot/messaging/requests.py) and audits, in the caller's transaction. An answer is
an ordinary submission of the request's form (bot/services/submissions.py): a correction is a
new version.

A request can be cancelled by whoever follows it (`cancel_request`): reminders stop, /traloi
no longer offers it, answers to it are refused (RequestCancelled), and the officers asked are
told once. Who has answered counts only the units that have an officer to ask; the others are
said apart (`RequestStatus.unstaffed`). The sender gets the compiled answers on demand
(/tinhtrang) and once after the due date (bot/messaging/requests.py, the `request_answers` job).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.domain.clock import VN_TZ
from bot.domain.forms.loader import FormError, form_from_definition
from bot.domain.forms.model import Form
from bot.domain.permissions import Action, NotAllowed, may_ask
from bot.domain.permissions import area as area_of
from bot.domain.requests import (
    AUDIENCE_KINDS,
    MAX_DAYS_AHEAD,
    MAX_QUESTIONS,
    QUESTION_CHARS,
    TITLE_CHARS,
    is_open,
    reaches,
    request_form,
    typed_definition,
)
from bot.domain.schedules import load_schedules
from bot.messaging.recipients import officers_in_area
from bot.messaging.requests import queue_cancelled, queue_request, request_answers, units_with_officer
from bot.reports.aggregate import UnitRef
from bot.reports.requests import Answers
from bot.services.actor import Actor
from bot.services.submissions import Draft, Submitted, submit_report
from storage.models import Contact, Submission, Unit
from storage.models_requests import ReportRequest
from storage.readonly import ReadOnlyUnitOfWork
from storage.uow import Reads, UnitOfWork


class RequestRefused(ValueError):
    """What a request asks, or when, is not acceptable; `code` says which part."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RequestClosed(Exception):
    """The request's deadline and grace have passed: answers are no longer taken."""

    def __init__(self, request: ReportRequest) -> None:
        super().__init__(f"request {request.id} closed")
        self.request = request


class RequestCancelled(RequestClosed):
    """The request was cancelled: answers are no longer taken."""


@dataclass(frozen=True, slots=True)
class RequestDraft:
    """A request as the dialogue collected it: a form of content/forms/ or typed questions."""

    area_id: int
    audience: str
    due: date
    form_key: str | None = None
    title: str = ""
    questions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sent:
    request: ReportRequest
    form: Form
    officers: int  # how many officers it was queued to


@dataclass(frozen=True, slots=True)
class Answerable:
    """A request the actor may answer, its form, and the actor's units it asks."""

    request: ReportRequest
    form: Form
    units: tuple[Unit, ...]


@dataclass
class RequestStatus:
    request: ReportRequest
    form: Form | None
    answered: list[tuple[UnitRef, Submission]] = field(default_factory=list)
    missing: list[UnitRef] = field(default_factory=list)  # an officer was asked and has not answered
    unstaffed: list[UnitRef] = field(default_factory=list)  # no officer to ask, and no answer

    @property
    def expected(self) -> int:
        """The units that answered or have an officer who could."""
        return len(self.answered) + len(self.missing)


def _sender(actor: Actor) -> Contact:
    """A request goes out in the name of an officer of the association, never from the console."""
    actor.require_any(Action.REQUEST)
    if actor.contact is None:
        raise NotAllowed(Action.REQUEST, None, "a request needs a sender")
    return actor.contact


def request_areas(actor: Actor) -> list[Unit]:
    """The units whose officers the actor may ask (their commune, their province)."""
    return area_of(actor.grants, Action.REQUEST)


def audiences(actor: Actor, area: Unit) -> list[str]:
    """The roles the actor may ask inside `area`, that such an area holds."""
    return [role for role in AUDIENCE_KINDS if may_ask(actor.grants, area, role) and reaches(area.kind, role)]


def _sender_name(actor: Actor, area: Unit) -> str:
    """The actor's own unit over `area`, whose association the officers hear from."""
    return next((u for u in request_areas(actor) if area.path.startswith(u.path)), area).name


async def _checked_area(uow: Reads, actor: Actor, area_id: int, audience: str) -> Unit:
    area = await uow.units.get(area_id)
    if area is None:
        raise NotAllowed(Action.REQUEST, None, f"no unit {area_id}")
    actor.require(Action.REQUEST, area)
    if audience not in AUDIENCE_KINDS or not may_ask(actor.grants, area, audience):
        raise NotAllowed(Action.REQUEST, area, f"may not ask {audience} there")
    if not reaches(area.kind, audience):
        raise RequestRefused("audience")
    return area


async def count_recipients(uow: Reads, actor: Actor, area_id: int, audience: str, today: date) -> int:
    """How many officers a request to `audience` in the area would reach now."""
    _sender(actor)
    area = await _checked_area(uow, actor, area_id, audience)
    holders = await officers_in_area(uow, audience, area.path, AUDIENCE_KINDS[audience], today)
    return len({o.contact_id for o in holders})


def _content(draft: RequestDraft, forms: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """(form key, definition) of what the request asks; RequestRefused when it will not do."""
    kinds = AUDIENCE_KINDS[draft.audience]
    if draft.form_key is not None:
        form = forms.get(draft.form_key)
        if form is None or not form.for_requests or not set(kinds) <= set(form.unit_kinds):
            raise RequestRefused("form")
        return form.key, None
    title = draft.title.strip()
    questions = [q.strip() for q in draft.questions if q.strip()]
    if not title or len(title) > TITLE_CHARS:
        raise RequestRefused("title")
    if not 1 <= len(questions) <= MAX_QUESTIONS or any(len(q) > QUESTION_CHARS for q in questions):
        raise RequestRefused("questions")
    definition = typed_definition(title, questions, kinds)
    try:
        form_from_definition(definition, "typed request")
    except FormError:
        raise RequestRefused("questions") from None
    return None, definition


async def send_request(
    uow: UnitOfWork,
    actor: Actor,
    draft: RequestDraft,
    *,
    forms: dict[str, Any],
    today: date,
    now: datetime,
) -> Sent:
    """Store the request, queue it to every officer it asks, audit. NotAllowed outside the
    actor's area or for an audience they may not ask; RequestRefused for what or when."""
    contact = _sender(actor)
    area = await _checked_area(uow, actor, draft.area_id, draft.audience)
    if not today <= draft.due <= today + timedelta(days=MAX_DAYS_AHEAD):
        raise RequestRefused("due")
    form_key, definition = _content(draft, forms)
    title = forms[form_key].title.get(contact.locale) if form_key else draft.title.strip()
    request = await uow.requests.add(
        ReportRequest(
            created_by_contact_id=contact.id,
            unit_id=area.id,
            area_path=area.path,
            audience=draft.audience,
            form_key=form_key,
            definition=definition,
            title=title[:255],
            due_date=draft.due,
            created_at=now,
        )
    )
    form = request_form(request, forms)
    assert form is not None
    reached = await queue_request(uow, request, form, _sender_name(actor, area), today, now)
    actor.audit(
        uow,
        now,
        "request.create",
        area.id,
        request_id=request.id,
        audience=draft.audience,
        form=form_key or "typed",
        questions=len(form.fields),
        due=draft.due.isoformat(),
        officers=len(reached),
    )
    return Sent(request, form, len(reached))


# ---- answering ---------------------------------------------------------------------------------


def _holdings(actor: Actor) -> list[tuple[str, Unit]]:
    """The actor's roles that requests ask, on units of the kinds those roles answer for."""
    return [(g.role, g.unit) for g in actor.grants if g.unit.kind in AUDIENCE_KINDS.get(g.role, ())]


async def requests_to_answer(
    uow: Reads, actor: Actor, *, content_dir: Path, today: date
) -> list[ReportRequest]:
    """The open requests that ask the actor, the soonest due first."""
    times = load_schedules(content_dir).requests
    holdings = [(role, unit.path) for role, unit in _holdings(actor)]
    return await uow.requests.addressed_to(holdings, today - timedelta(days=times.open_days_after_due))


async def request_to_answer(
    uow: Reads, actor: Actor, request_id: int, *, forms: dict[str, Any], content_dir: Path, today: date
) -> Answerable | None:
    """The request with the actor's units it asks. None when it does not exist or its form left
    content/; NotAllowed when it does not ask the actor; RequestClosed after its grace,
    RequestCancelled once cancelled."""
    request = await uow.requests.get(request_id)
    if request is None:
        return None
    units = tuple(
        unit
        for role, unit in _holdings(actor)
        if role == request.audience and unit.path.startswith(request.area_path)
    )
    if not units:
        raise NotAllowed(Action.REPORT, None, f"request {request_id} does not ask this contact")
    if request.cancelled_at is not None:
        raise RequestCancelled(request)
    if not is_open(request, today, load_schedules(content_dir).requests):
        raise RequestClosed(request)
    form = request_form(request, forms)
    return None if form is None else Answerable(request, form, units)


async def submit_answer(
    uow: UnitOfWork,
    actor: Actor,
    request_id: int,
    draft: Draft,
    *,
    forms: dict[str, Any],
    today: date,
    now: datetime,
    channel: str | None,
    content_dir: Path,
) -> Submitted:
    """Store an answer as the next version of the unit's record of the request."""
    answerable = await request_to_answer(
        uow, actor, request_id, forms=forms, content_dir=content_dir, today=today
    )
    if answerable is None:
        raise NotAllowed(Action.REPORT, None, f"no request {request_id}")
    unit = next((u for u in answerable.units if u.id == draft.unit_id), None)
    if unit is None or draft.form.key != answerable.form.key:
        raise NotAllowed(Action.REPORT, unit, f"request {request_id} does not ask this unit")
    return await submit_report(uow, actor, draft, now=now, channel=channel, content_dir=content_dir)


# ---- who has answered ----------------------------------------------------------------------------


def _may_follow(actor: Actor, request: ReportRequest, area: Unit | None) -> bool:
    """The sender, and staff who may ask inside the request's area, follow its answers."""
    return actor.contact_id == request.created_by_contact_id or (
        area is not None and actor.may(Action.REQUEST, area)
    )


async def visible_requests(uow: Reads, actor: Actor, limit: int = 5) -> list[ReportRequest]:
    """The newest requests the actor sent or that lie inside their area."""
    contact = _sender(actor)
    return await uow.requests.newest(contact.id, [u.path for u in request_areas(actor)], limit)


async def followed_request(uow: Reads, actor: Actor, request_id: int) -> ReportRequest | None:
    """The request, if the actor may follow it (None otherwise: no hint that it exists)."""
    request = await uow.requests.get(request_id)
    if request is None or not _may_follow(actor, request, await uow.units.get(request.unit_id)):
        return None
    return request


async def request_status(
    uow: Reads, actor: Actor, request: ReportRequest, *, forms: dict[str, Any], today: date
) -> RequestStatus:
    """Who has answered (with their latest version) and who has not, among the units asked; the
    units with no officer to ask (and no answer) apart."""
    if not _may_follow(actor, request, await uow.units.get(request.unit_id)):
        raise NotAllowed(Action.REQUEST, None, f"request {request.id}")
    form = request_form(request, forms)
    status = RequestStatus(request, form)
    units = await uow.requests.units_in(request.area_path, AUDIENCE_KINDS[request.audience], today)
    replies = await uow.requests.replies(form.key) if form is not None else {}
    staffed = await units_with_officer(uow, request, today)
    for unit in units:
        if unit.id in replies:
            status.answered.append((UnitRef.of(unit), replies[unit.id]))
        elif unit.id in staffed:
            status.missing.append(UnitRef.of(unit))
        else:
            status.unstaffed.append(UnitRef.of(unit))
    return status


async def cancel_request(uow: UnitOfWork, actor: Actor, request_id: int, now: datetime) -> ReportRequest:
    """Cancel a request the actor follows: no more reminders or answers; the officers asked are
    told once; audited. NotAllowed for a request they do not follow or one already cancelled
    (the first cancel stands)."""
    request = await uow.requests.get(request_id)
    area = await uow.units.get(request.unit_id) if request is not None else None
    if request is None or area is None or not _may_follow(actor, request, area):
        raise NotAllowed(Action.REQUEST, None, f"request {request_id}")
    if request.cancelled_at is not None:
        raise NotAllowed(Action.REQUEST, area, f"request {request_id} already cancelled")
    request.cancelled_at = now
    await uow.session.flush()
    today = now.astimezone(VN_TZ).date()
    told = await queue_cancelled(uow, request, _sender_name(actor, area), today, now)
    actor.audit(uow, now, "request.cancel", area.id, request_id=request.id, officers=len(told))
    return request


async def compile_answers(
    reads: ReadOnlyUnitOfWork,
    actor: Actor,
    request_id: int,
    *,
    forms: dict[str, Any],
    content_dir: Path,
    now: datetime,
) -> tuple[ReportRequest, Form, Answers]:
    """The answers summed per unit (bot/reports/requests.py), the units with no officer to ask
    apart; NotAllowed for others' requests."""
    request = await followed_request(reads, actor, request_id)
    form = request_form(request, forms) if request is not None else None
    if request is None or form is None:
        raise NotAllowed(Action.REQUEST, None, f"request {request_id}")
    answers = await request_answers(reads, request, form, content_dir=content_dir, now=now)
    return request, form, answers
