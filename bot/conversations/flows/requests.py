"""/yeucau (/request): province or commune staff ask the officers of their area for an ad hoc
report (báo cáo đột xuất, seed 000 line 97) — and, for /tinhtrang, who has answered.

Area (their own, or a unit inside it) → which officers → a prepared form or up to five count
questions typed here → the deadline → preview with the number of officers reached → send. The
service (bot.services.requests) checks everything again and queues the request; officers
answer it with /traloi through the report dialogue (bot.conversations.flows.form_runner).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import Field

from bot.conversations.engine import (
    BACK_WORDS,
    CANCEL_WORDS,
    Context,
    Flow,
    FlowState,
    Step,
    ask,
    chosen,
    phase_table,
    word_of,
)
from bot.conversations.widgets.unit_picker import LIST_LIMIT, UnitPicker, nothing_found, unit_options
from bot.domain.clock import VN_TZ
from bot.domain.i18n import N_, Translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import ParseError, date_example, parse_date
from bot.domain.permissions import Action, NotAllowed
from bot.domain.requests import AUDIENCE_KINDS, MAX_DAYS_AHEAD, MAX_QUESTIONS, QUESTION_CHARS, TITLE_CHARS
from bot.domain.text import TITLE_TEXT, shorten
from bot.reports.requests import render_request, request_summary, unstaffed_line
from bot.services.actor import Actor
from bot.services.requests import (
    RequestCancelled,
    RequestClosed,
    RequestDraft,
    RequestRefused,
    RequestStatus,
    audiences,
    cancel_request,
    compile_answers,
    count_recipients,
    followed_request,
    request_areas,
    request_status,
    send_request,
    visible_requests,
)
from storage.models import COMMUNE, PROVINCE, VILLAGE_KINDS, Unit
from storage.models_requests import ReportRequest
from storage.readonly import ReadOnlyUnitOfWork

AREA_KINDS = (PROVINCE, COMMUNE, *VILLAGE_KINDS)
AUDIENCE_LABELS = {
    "village_officer": N_("Village officers (heads of the village branches)"),
    "commune_officer": N_("Commune officers"),
}
DONE_WORDS = frozenset({"xong", "done", "het", "du roi", "finish"})
SHOWN = 10  # answered and missing units listed in /tinhtrang

Phase = Literal["area", "audience", "content", "title", "question", "due", "confirm"]


class RequestState(FlowState):
    phase: Phase = "area"
    area_id: int | None = None
    area_name: str = ""
    audience: str | None = None
    form_key: str | None = None  # a prepared form, or
    title: str = ""  # typed questions under a title
    questions: list[str] = Field(default_factory=list)
    due: date | None = None


class RequestComposer(Flow[RequestState]):
    name = "request"
    state_type = RequestState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        areas = request_areas(Actor.of(ctx.contact, ctx.grants))
        if not areas:
            return Step(
                [
                    Reply(
                        t(
                            "Only commune officers and province staff can send requests. Send /me to see your role."
                        )
                    )
                ]
            )
        state = RequestState()
        return Step([await self._ask_area(ctx, state, areas)], state)

    async def resume(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        if word_of(msg) in CANCEL_WORDS or chosen(state, msg) == "cancel":
            return Step([Reply(ctx.t("Cancelled. Nothing was sent."))], None, ("menu", {"quiet": True}))
        return await super().resume(ctx, state, msg)

    async def _again(self, ctx: Context, state: RequestState, problem: str | None = None) -> Step:
        text = problem or ctx.t("Please answer with one of the choices.")
        return Step([Reply(text), *await self.reprompt(ctx, state)], state)

    # ---- area and audience -------------------------------------------------------------------
    async def _ask_area(self, ctx: Context, state: RequestState, areas: list[Unit]) -> Reply:
        t = ctx.t
        state.phase = "area"
        options = [Option(o.id, t("All of {area}", area=o.label)) for o in unit_options(areas, len(areas))]
        if len(areas) == 1:
            kids = await ctx.uow.units.children(areas[0].id, AREA_KINDS, on=ctx.today)
            options += unit_options(kids, LIST_LIMIT)
        text = t(
            "Ad hoc request: to the officers of which area? Pick your whole area or a unit in it, or type part of its name."
        )
        return ask(state, text, options)

    async def _on_area(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        """Their own area or a unit inside it (picked, or part of its name typed), then whom."""
        t = ctx.t
        picked = await UnitPicker(AREA_KINDS, action=Action.REQUEST).pick(ctx, state, msg)
        if picked.matches:
            options = unit_options(list(picked.matches))
            return Step([ask(state, t("Which one do you mean?"), options)], state)
        if picked.outside is not None:
            return await self._again(
                ctx,
                state,
                t(
                    "{unit} is outside your area: you can ask only the officers of the units you are responsible for.",
                    unit=picked.outside.name,
                ),
            )
        if picked.unit is None:
            return await self._again(ctx, state, nothing_found(t, picked.query) if picked.query else None)
        unit = picked.unit
        roles = audiences(Actor.of(ctx.contact, ctx.grants), unit)
        if not roles:
            return await self._again(
                ctx,
                state,
                t("There are no officers in {unit} that you can ask. Pick a wider area.", unit=unit.name),
            )
        state.area_id, state.area_name = unit.id, unit.name
        if len(roles) == 1:
            state.audience = roles[0]
            return self._ask_content(ctx, state)
        state.phase = "audience"
        options = [Option(f"a:{role}", t(AUDIENCE_LABELS[role])) for role in roles]
        return Step([ask(state, t("Which officers of {unit}?", unit=unit.name), options)], state)

    async def _on_audience(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        """Village officers or commune officers of the area, then what to ask."""
        pick = chosen(state, msg)
        if pick is None or not pick.startswith("a:") or pick[2:] not in AUDIENCE_KINDS:
            return await self._again(ctx, state)
        state.audience = pick[2:]
        return self._ask_content(ctx, state)

    # ---- what to ask ---------------------------------------------------------------------------
    def _forms(self, ctx: Context, audience: str) -> list[Any]:
        kinds = set(AUDIENCE_KINDS[audience])
        return [f for f in ctx.forms.values() if f.for_requests and kinds <= set(f.unit_kinds)]

    def _ask_content(self, ctx: Context, state: RequestState) -> Step:
        t = ctx.t
        state.phase = "content"
        options = [
            Option(f"f:{f.key}", f.title.get(t.locale)) for f in self._forms(ctx, state.audience or "")
        ]
        options.append(Option("typed", t("Type my own questions")))
        text = t(
            "What do you want to ask? Pick a prepared form, or type your own questions (up to {n}), each answered with a number.",
            n=MAX_QUESTIONS,
        )
        return Step([ask(state, text, options)], state)

    async def _on_content(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        """A prepared form (then the deadline), or own questions (then their title)."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "typed":
            state.phase = "title"
            text = t("Type a short title for the request, e.g. “Pupils out of school after the flood”.")
            return Step([ask(state, text)], state)
        forms = {f.key: f for f in self._forms(ctx, state.audience or "")}
        if pick is None or not pick.startswith("f:") or pick[2:] not in forms:
            return await self._again(ctx, state)
        state.form_key = pick[2:]
        return Step([self._ask_due(ctx, state)], state)

    async def _on_title(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        """The request's title, then the first question."""
        t = ctx.t
        text = msg.text.strip() if msg.kind is Kind.TEXT else ""
        if not text:
            return await self._again(ctx, state, t("Please type an answer."))
        if len(text) > TITLE_CHARS:
            return await self._again(
                ctx, state, t("That is too long: at most {limit} characters, please.", limit=TITLE_CHARS)
            )
        state.title = text
        return Step([self._ask_question(ctx, state)], state)

    def _ask_question(self, ctx: Context, state: RequestState) -> Reply:
        t = ctx.t
        state.phase = "question"
        n = len(state.questions) + 1
        if not state.questions:
            text = t(
                "Question 1: type what the officers should count, e.g. “Pupils out of school”. Each question is answered with a whole number."
            )
            return ask(state, text)
        text = t(
            "Question {n} (up to {max}): type the next one, or press Done.",
            n=n,
            max=MAX_QUESTIONS,
        )
        return ask(state, text, [Option("done", t("Done"))], numbered=False)

    async def _on_question(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        """One more question, Done (after at least one), or back (drops the last one)."""
        t = ctx.t
        word = word_of(msg)
        if chosen(state, msg) == "done" or word in DONE_WORDS:
            if not state.questions:
                return await self._again(ctx, state, t("Type at least one question."))
            return Step([self._ask_due(ctx, state)], state)
        if word in BACK_WORDS:
            if state.questions:
                state.questions.pop()
            return Step([self._ask_question(ctx, state)], state)
        text = msg.text.strip() if msg.kind is Kind.TEXT else ""
        if not text:
            return await self._again(ctx, state, t("Please type an answer."))
        if len(text) > QUESTION_CHARS:
            return await self._again(
                ctx, state, t("That is too long: at most {limit} characters, please.", limit=QUESTION_CHARS)
            )
        state.questions.append(text)
        if len(state.questions) >= MAX_QUESTIONS:
            return Step([self._ask_due(ctx, state)], state)
        return Step([self._ask_question(ctx, state)], state)

    # ---- deadline, preview, send ---------------------------------------------------------------
    def _ask_due(self, ctx: Context, state: RequestState) -> Reply:
        state.phase = "due"
        text = ctx.t(
            "By which date should the officers answer? Type a date, e.g. {example}.", example=_example(ctx)
        )
        return ask(state, text)

    async def _on_due(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        """A date from today to 90 days ahead, then the preview."""
        t = ctx.t
        try:
            due = parse_date(msg.text if msg.kind is Kind.TEXT else "", ctx.today)
        except ParseError:
            return await self._again(
                ctx,
                state,
                t(
                    "I could not read this date. Type day/month/year, e.g. {example}.",
                    example=_example(ctx),
                ),
            )
        if not ctx.today <= due <= ctx.today + timedelta(days=MAX_DAYS_AHEAD):
            return await self._again(
                ctx,
                state,
                t("The deadline must be between today and {days} days from now.", days=MAX_DAYS_AHEAD),
            )
        state.due = due
        return await self._preview(ctx, state)

    async def _preview(self, ctx: Context, state: RequestState) -> Step:
        t = ctx.t
        actor = Actor.of(ctx.contact, ctx.grants)
        try:
            count = await count_recipients(
                ctx.uow, actor, int(state.area_id or 0), state.audience or "", ctx.today
            )
        except (NotAllowed, RequestRefused):
            return Step([Reply(t("You can no longer send requests to {unit}.", unit=state.area_name))])
        state.phase = "confirm"
        who = t(AUDIENCE_LABELS[state.audience or "village_officer"])
        lines = [
            t(
                "Request to: {who}, {unit} ({count} officers can be reached).",
                who=who,
                unit=state.area_name,
                count=count,
            )
        ]
        if state.form_key:
            form = ctx.forms[state.form_key]
            lines.append(
                t("Form: {form} ({n} questions).", form=form.title.get(t.locale), n=len(form.fields))
            )
        else:
            lines.append(t("Title: {title}", title=state.title))
            lines += [f"{i}. {q}" for i, q in enumerate(state.questions, 1)]
        lines.append(t("Deadline: {date}.", date=t.date(state.due or ctx.today)))
        lines.append(t("Send this request?"))
        options = [Option("send", t("Send the request")), Option("cancel", t("Cancel"))]
        return Step([ask(state, "\n".join(lines), options)], state)

    async def _on_confirm(self, ctx: Context, state: RequestState, msg: Incoming) -> Step:
        """Send (the service checks and queues it) or cancel."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick is None and word_of(msg) in ("gui", "send", "dong y", "co", "ok", "yes"):
            pick = "send"
        if pick != "send":
            return await self._again(ctx, state)
        draft = RequestDraft(
            area_id=int(state.area_id or 0),
            audience=state.audience or "",
            due=state.due or ctx.today,
            form_key=state.form_key,
            title=state.title,
            questions=tuple(state.questions),
        )
        try:
            sent = await send_request(
                ctx.uow,
                Actor.of(ctx.contact, ctx.grants),
                draft,
                forms=ctx.forms,
                today=ctx.today,
                now=ctx.now,
            )
        except NotAllowed:
            return Step([Reply(t("You can no longer send requests to {unit}.", unit=state.area_name))])
        except RequestRefused as err:
            if err.code == "due":
                state.phase = "due"
                return Step(
                    [
                        Reply(
                            t(
                                "The deadline must be between today and {days} days from now.",
                                days=MAX_DAYS_AHEAD,
                            )
                        ),
                        self._ask_due(ctx, state),
                    ],
                    state,
                )
            return Step([Reply(t("This request cannot be sent. Nothing was sent."))])
        text = t(
            "✅ Request #{id} sent to {count} officers. Send /status to see who has answered.",
            id=sent.request.id,
            count=sent.officers,
        )
        return Step([Reply(text)], None, ("menu", {"quiet": True}))

    def leave_warning(self, ctx: Context, state: RequestState) -> str:
        return ctx.t("You were writing a request; it has not been sent.")

    phases = phase_table(
        {
            "area": _on_area,
            "audience": _on_audience,
            "content": _on_content,
            "title": _on_title,
            "question": _on_question,
            "due": _on_due,
            "confirm": _on_confirm,
        }
    )


def _example(ctx: Context) -> str:
    """A deadline a week from today, written as it is typed (day/month/year in both languages)."""
    return date_example(ctx.today + timedelta(days=7))


# ---- /tinhtrang ----------------------------------------------------------------------------------


def _answered_count(t: Translator, status: RequestStatus) -> str:
    text = t(
        "answered {answered} of {expected}",
        answered=t.number(len(status.answered)),
        expected=t.number(status.expected),
    )
    if status.request.cancelled_at is not None:
        text += t(", cancelled")
    return text


def closed_text(t: Translator, closed: RequestClosed) -> str:
    """Why an answer to a request is no longer taken: cancelled, or past its deadline."""
    if isinstance(closed, RequestCancelled):
        return t("This request was cancelled by its sender: answers are no longer taken.")
    return t(
        "The deadline of this request was {date}: answers are no longer taken.",
        date=t.date(closed.request.due_date),
    )


async def requests_section(ctx: Context) -> tuple[list[str], list[Option]]:
    """The staff member's newest requests with how many have answered, for /tinhtrang."""
    t = ctx.t
    actor = Actor.of(ctx.contact, ctx.grants)
    if not request_areas(actor):
        return [], []
    requests = await visible_requests(ctx.uow, actor)
    if not requests:
        return [t("No requests yet. Ask the officers of your area for a report with /request.")], []
    lines = [t("Your latest requests:")]
    options = []
    for r in requests:
        status = await request_status(ctx.uow, actor, r, forms=ctx.forms, today=ctx.today)
        lines.append(
            f"#{r.id} · “{shorten(r.title, TITLE_TEXT)}” · "
            + t("due {date}", date=t.date(r.due_date))
            + " · "
            + _answered_count(t, status)
        )
        options.append(Option(f"cmd:tinhtrang yc {r.id}", t("Request #{id}", id=r.id)))
    lines.append(
        t(
            "To see who has answered one, send /status request and its number, e.g. /status request {id}.",
            id=requests[0].id,
        )
    )
    return lines, options


async def request_detail(ctx: Context, request_id: int) -> list[Reply]:
    """Who has answered a request and who not yet, then the answers summed (with the .xlsx)."""
    t = ctx.t
    actor = Actor.of(ctx.contact, ctx.grants)
    request = await followed_request(ctx.uow, actor, request_id)
    if request is None:
        return [Reply(t("There is no request #{id} of yours.", id=request_id))]
    status = await request_status(ctx.uow, actor, request, forms=ctx.forms, today=ctx.today)
    lines = [
        t(
            "Request #{id} “{title}”, due {date}:",
            id=request.id,
            title=request.title,
            date=t.date(request.due_date),
        ),
        _answered_count(t, status).capitalize() + ".",
    ]
    if request.cancelled_at is not None:
        lines.append(
            t(
                "Cancelled on {date}: the officers were told, and answers are no longer taken.",
                date=t.date(request.cancelled_at.astimezone(VN_TZ).date()),
            )
        )
    if status.answered:
        shown = [
            t(
                "{unit} (version {version}, {date})",
                unit=u.name,
                version=s.version,
                date=t.date(s.submitted_at.astimezone(ctx.now.tzinfo).date()),
            )
            for u, s in status.answered[:SHOWN]
        ]
        lines.append(
            t("Answered: {units}", units="; ".join(shown) + (" …" if len(status.answered) > SHOWN else ""))
        )
    if status.missing:
        names = ", ".join(u.name for u in status.missing[:SHOWN]) + (
            " …" if len(status.missing) > SHOWN else ""
        )
        lines.append(t("Not yet: {units}", units=names))
    if status.unstaffed:
        lines.append(unstaffed_line(t, status.unstaffed))
    options = [Option(f"cmd:tinhtrang yc {request.id}", t("Refresh"))]
    if request.cancelled_at is None:
        options.append(Option(f"cmd:tinhtrang huy yc {request.id}", t("Cancel the request")))
    replies = [Reply("\n".join(lines), options)]
    if status.form is not None and status.answered:
        replies.append(_answers_later(ctx, request))
    return replies


async def cancel_question(ctx: Context, request_id: int) -> tuple[str, list[Option]] | str:
    """The confirmation asked before cancelling a request, or why it cannot be cancelled."""
    t = ctx.t
    request = await followed_request(ctx.uow, Actor.of(ctx.contact, ctx.grants), request_id)
    if request is None:
        return t("There is no request #{id} of yours.", id=request_id)
    if request.cancelled_at is not None:
        return t("Request #{id} is already cancelled.", id=request_id)
    text = t(
        "Cancel request #{id} “{title}”? The officers asked will be told, reminders stop and answers are no longer taken; the answers already sent stay.",
        id=request.id,
        title=shorten(request.title, TITLE_TEXT),
    )
    return text, [Option("yes", t("Cancel the request")), Option("no", t("Keep the request"))]


async def cancel_answer(ctx: Context, request_id: int) -> str:
    """Cancel the request (the service checks again); what to tell the sender."""
    t = ctx.t
    try:
        await cancel_request(ctx.uow, Actor.of(ctx.contact, ctx.grants), request_id, ctx.now)
    except NotAllowed:
        return t("You can no longer cancel request #{id}.", id=request_id)
    return t("Request #{id} is cancelled: the officers asked are being told.", id=request_id)


def _answers_later(ctx: Context, request: ReportRequest) -> Reply:
    """The answers summed per unit, made once the step is saved (bot.services.later)."""
    t, actor, now, forms = ctx.t, Actor.of(ctx.contact, ctx.grants), ctx.now, ctx.forms
    content_dir, request_id = ctx.app_content_dir, request.id

    async def answers(reads: ReadOnlyUnitOfWork) -> list[Reply]:
        try:
            found, form, compiled_answers = await compile_answers(
                reads, actor, request_id, forms=forms, content_dir=content_dir, now=now
            )
        except NotAllowed:
            return [Reply(t("There is no request #{id} of yours.", id=request_id))]
        files = await asyncio.to_thread(render_request, compiled_answers, form, found, t)
        return [Reply(request_summary(compiled_answers, form, t), attachments=files)]

    return Reply(t("Sorry, the compiled report could not be made. Please try again later."), later=answers)
