"""The guided report dialogue: unit → period → one question at a time → summary → confirm.

It walks any form of `content/forms/` (village report, activity report, or a new one): the
questions, bounds, defaults and rules all come from the YAML, so adding a field is a YAML edit.
It also answers ad hoc requests (/traloi, bot.services.requests): the request's form, its
period and the officer's units it asks are set at the start, the rest is the same dialogue.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any, Literal, TypeVar

import pydantic

from bot.conversations.common import describe_unit
from bot.conversations.engine import (
    BACK_WORDS,
    CANCEL_WORDS,
    KEEP_WORDS,
    SKIP_WORDS,
    Context,
    Flow,
    FlowState,
    StateLost,
    Step,
    ask,
    chosen,
    offered,
    phase_table,
    word_of,
)
from bot.conversations.flows.requests import closed_text
from bot.conversations.widgets.unit_picker import LIST_LIMIT, UnitPicker, nothing_found, unit_options
from bot.domain.forms.history import (
    carried_source,
    first_found,
    needed_periods,
    opening_sources,
    prev_sources,
    previous_values,
    same_kind_a_year_earlier,
)
from bot.domain.forms.model import Choice, Field, Form, Section
from bot.domain.forms.rules import Expression, Violation, check_rules, format_value
from bot.domain.i18n import Translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import (
    ParseError,
    date_example,
    fold,
    parse_date,
    parse_integer,
    parse_money,
    parse_yes_no,
)
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed, holds, report_action, roles_for
from bot.domain.requests import reply_command, request_form, request_period
from bot.domain.schedules import PeriodNotFiled, load_schedules
from bot.domain.text import TITLE_TEXT, sentence_case, shorten
from bot.reports.review_queue import reviewed
from bot.services.actor import Actor
from bot.services.requests import (
    RequestClosed,
    request_to_answer,
    requests_to_answer,
    submit_answer,
)
from bot.services.reviews import PeriodLocked, lock_for, record_state
from bot.services.submissions import Draft, Submitted, submit_report
from storage.models import COMMUNE, PROVINCE, Submission, Unit

Value = int | str | None  # as kept in the state and the submission (dates as ISO text)
BUTTON_TEXT = 40  # the longest answer shown on a "keep" button; Telegram cuts buttons at 64
T = TypeVar("T")


class AnswerRefused(ValueError):
    """An answer that is not a number problem: not one of the choices, too long, empty."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Phase = Literal["unit", "period", "field", "soft", "summary", "edit"]


class FormState(FlowState):
    phase: Phase = "unit"
    form: str
    unit_id: int | None = None
    unit_name: str = ""
    period: str | None = None  # Period.key
    record_key: str = ""
    values: dict[str, Value] = pydantic.Field(
        default_factory=dict
    )  # answers so far (None: skipped or not asked)
    answered: list[str] = pydantic.Field(default_factory=list)
    history: list[str] = pydantic.Field(default_factory=list)  # the questions answered in order, for "back"
    acked: list[str] = pydantic.Field(default_factory=list)  # soft rules confirmed in this dialogue
    defaults: dict[str, Any] = pydantic.Field(
        default_factory=dict
    )  # offered as "keep": the last report's values
    confirmed: dict[str, Any] = pydantic.Field(
        default_factory=dict
    )  # the values of the version being corrected
    prev: dict[str, Any] = pydantic.Field(
        default_factory=dict
    )  # what the rules' prev() reads, field by field (bot/domain/forms/history.py)
    opening: dict[str, Any] = pydantic.Field(default_factory=dict)  # opening(): the period just before
    last_year: dict[str, Any] = pydantic.Field(default_factory=dict)  # last_year(): a year earlier
    # Figures not asked in this period but shown, carried from an earlier report (ask_in with
    # otherwise: carried), and the period each comes from.
    carried: dict[str, Any] = pydantic.Field(default_factory=dict)
    carried_from: dict[str, str] = pydantic.Field(default_factory=dict)
    field: str | None = None  # the question open
    editing: bool = False  # answering one question again from the summary
    candidate: Value = None  # an answer waiting for a soft warning's confirmation
    soft_rule: str | None = None
    # Answering an ad hoc request (/traloi): which, its deadline, its title, the units it asks.
    request_id: int | None = None
    due: date | None = None
    title: str = ""
    request_units: list[int] = pydantic.Field(default_factory=list)


class FormRunner(Flow[FormState]):
    name = "form"
    state_type = FormState

    # ---- start: which unit, which period -------------------------------------------------
    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        if not holds(ctx.grants, Action.REPORT):
            return Step(
                [
                    Reply(
                        t(
                            "Reports are sent by officers. If you are an officer, ask your commune officer for an invite code and send /start."
                        )
                    )
                ]
            )
        if args.get("answer"):
            return await self._start_answer(ctx, str(args.get("request") or "").strip().lstrip("#"))
        form = ctx.forms[str(args["form"])]
        if not holds(ctx.grants, report_action(form.key)):  # a village officer and the commune's report
            return Step([Reply(t("{form} is sent by commune officers.", form=form.title.get(t.locale)))])
        state = FormState(form=form.key)
        units = await self._candidate_units(ctx, form)
        target = _target(str(args.get("target") or ""), units, form)
        if target is not None:  # "/baocao <unit id> <period>": the button of a returned report
            state.unit_id, state.unit_name = target[0].id, target[0].name
            return await self._period_chosen(ctx, state, form, target[1])
        if len(units) == 1:
            return await self._unit_chosen(ctx, state, form, units[0])
        state.phase = "unit"
        return Step([self._ask_unit(ctx, state, form, units)], state)

    async def restart(self, ctx: Context, raw: Mapping[str, Any]) -> Step:
        if raw.get("request_id") is not None:
            step = await self.start(ctx, {"answer": True, "request": str(raw["request_id"])})
        else:
            step = await self.start(ctx, {"form": raw["form"]})
        step.flow = self.name
        return step

    async def recover(self, ctx: Context, raw: Mapping[str, Any] | None) -> Step:
        if raw is not None and isinstance(raw.get("request_id"), int):
            with_form = await self._request_context(ctx, raw["request_id"])
            if with_form is None:
                return self._form_gone(ctx)
            ctx = with_form
        if not isinstance((raw or {}).get("form"), str) or raw is None or raw["form"] not in ctx.forms:
            return self._form_gone(ctx)
        return await super().recover(ctx, raw)

    # ---- answering an ad hoc request ---------------------------------------------------------
    async def _start_answer(self, ctx: Context, arg: str) -> Step:
        """/traloi: the requests waiting for this officer; /traloi 12: the answer to request 12."""
        t = ctx.t
        actor = Actor.of(ctx.contact, ctx.grants)
        if not arg.isdigit():
            waiting = await requests_to_answer(
                ctx.uow, actor, content_dir=ctx.app_content_dir, today=ctx.today
            )
            if not waiting:
                return Step([Reply(t("There is no request waiting for your answer."))])
            options = [
                Option(
                    "cmd:" + reply_command(r.id).lstrip("/"),
                    t(
                        "#{id} {title} (due {date})",
                        id=r.id,
                        title=shorten(r.title, TITLE_TEXT),
                        date=t.date(r.due_date),
                    ),
                )
                for r in waiting
            ]
            return Step([Reply(t("Requests waiting for your answer:"), options)])
        try:
            found = await request_to_answer(
                ctx.uow, actor, int(arg), forms=ctx.forms, content_dir=ctx.app_content_dir, today=ctx.today
            )
        except NotAllowed:
            return Step([Reply(t("This request was not sent to you."))])
        except RequestClosed as closed:
            return Step([Reply(closed_text(t, closed))])
        if found is None:
            return self._form_gone(ctx)
        form, request = found.form, found.request
        state = FormState(
            form=form.key,
            request_id=request.id,
            due=request.due_date,
            title=form.title.get(t.locale),
            period=request_period(request).key,
            request_units=[u.id for u in found.units],
        )
        ctx = dataclasses.replace(ctx, forms={**ctx.forms, form.key: form})
        if len(found.units) == 1:
            return await self._unit_chosen(ctx, state, form, found.units[0])
        return Step([self._ask_unit(ctx, state, form, list(found.units))], state)

    async def _request_context(self, ctx: Context, request_id: int) -> Context | None:
        """The context with the request's form among the forms (None: the request or its form is gone)."""
        request = await ctx.uow.requests.get(request_id)
        form = request_form(request, ctx.forms) if request is not None else None
        return None if form is None else dataclasses.replace(ctx, forms={**ctx.forms, form.key: form})

    def _period_text(self, ctx: Context, state: FormState, period: Period) -> str:
        """How the dialogue names what is reported: the period, or a request's deadline."""
        if state.due is not None:
            return ctx.t("due {date}", date=ctx.t.date(state.due))
        return period.label(ctx.t)

    async def ask_again(self, ctx: Context, state: FormState) -> Step | None:
        """The open question of the form, with the answers given so far kept."""
        form = ctx.forms[state.form]
        if state.unit_id is None or state.period is None or state.field not in form.field_keys:
            return None
        state.candidate, state.soft_rule = None, None
        return Step([self._ask_field(ctx, state, form, form.field(state.field))], state)

    async def _candidate_units(self, ctx: Context, form: Form) -> list[Unit]:
        """Units in the officer's area that report this form, listed when there are few."""
        out: list[Unit] = []
        for g in ctx.grants:
            if g.role not in roles_for(report_action(form.key)):
                continue
            if g.unit.kind in form.unit_kinds:
                out.append(g.unit)
            if g.unit.kind == COMMUNE:
                kids = await ctx.uow.units.children(g.unit.id, form.unit_kinds, on=ctx.today)
                out += kids
            elif g.unit.kind == PROVINCE:
                out += await ctx.uow.units.children(g.unit.id, form.unit_kinds, on=ctx.today)
        return list({u.id: u for u in out}.values())

    def _ask_unit(self, ctx: Context, state: FormState, form: Form, units: list[Unit]) -> Reply:
        t = ctx.t
        options = unit_options(units)
        text = t("{form}: which unit are you reporting for?", form=form.title.get(t.locale))
        if len(units) > LIST_LIMIT or not units:
            text += "\n" + t("Type part of its name.")
        return ask(state, text, options)

    async def _on_unit(self, ctx: Context, state: FormState, msg: Incoming) -> Step:
        """A unit of the officer's area that reports this form (typed or picked), then the period."""
        t = ctx.t
        form = ctx.forms[state.form]
        picked = await UnitPicker(form.unit_kinds, action=report_action(form.key)).pick(ctx, state, msg)
        if (
            picked.unit is not None
            and state.request_id is not None
            and picked.unit.id not in state.request_units
        ):
            picked = dataclasses.replace(picked, unit=None, outside=picked.unit)
        if picked.unit is not None:
            return await self._unit_chosen(ctx, state, form, picked.unit)
        if picked.matches:
            return Step([self._ask_unit(ctx, state, form, list(picked.matches))], state)
        if picked.outside is not None:
            text = t(
                "{unit} is outside your area: you can report only for the units you are responsible for.",
                unit=picked.outside.name,
            )
        elif picked.query:
            text = nothing_found(t, picked.query)
        else:
            text = t("Please answer with one of the choices.")
        return Step([Reply(text)] + await self.reprompt(ctx, state), state)

    async def _unit_chosen(self, ctx: Context, state: FormState, form: Form, unit: Unit) -> Step:
        t = ctx.t
        state.unit_id = unit.id
        state.unit_name = unit.name
        if state.request_id is not None:  # a request's period is set by its deadline
            return await self._period_chosen(ctx, state, form, Period.parse(_known(state.period, "period")))
        # The default first: the open period whose deadline comes next (Schedules.open_period).
        choices = load_schedules(ctx.app_content_dir).period_choices(form.key, ctx.today, form.period_kinds)
        if len(choices) == 1:
            return await self._period_chosen(ctx, state, form, choices[0])
        state.phase = "period"
        # Button labels start a line: "Năm 2026", where a sentence says "năm 2026".
        options = [Option(p.key, sentence_case(p.label(t))) for p in choices]
        options[0] = Option(
            choices[0].key, sentence_case(t("{period} (default)", period=choices[0].label(t)))
        )
        text = t("{form} for {unit}. Which period?", form=form.title.get(t.locale), unit=unit.name)
        return Step([ask(state, text, options)], state)

    async def _on_period(self, ctx: Context, state: FormState, msg: Incoming) -> Step:
        """A period offered or its key typed (2026-H1; 2026-H2 is told it is not one), then the first question."""
        t = ctx.t
        form = ctx.forms[state.form]
        pick = chosen(state, msg)
        problem = t("Please answer with one of the choices.")
        if pick is None and msg.kind is Kind.TEXT:
            typed = msg.text.strip().upper().replace(" ", "")
            pick = typed if typed in {o[0] for o in offered(state)} else None
            try:
                period = Period.parse(typed)
            except ValueError:
                period = None
            schedules = load_schedules(ctx.app_content_dir)
            if pick is None and period and not schedules.files_for(form.key, period, form.period_kinds):
                problem = not_filed_text(t, period, schedules.covering(form.key, period, form.period_kinds))
        if pick is None:
            return Step([Reply(problem)] + await self.reprompt(ctx, state), state)
        return await self._period_chosen(ctx, state, form, Period.parse(pick))

    async def _period_chosen(self, ctx: Context, state: FormState, form: Form, period: Period) -> Step:
        t = ctx.t
        unit_id = _known(state.unit_id, "unit")
        state.period = period.key
        replies: list[Reply] = []
        previous: Submission | None
        if form.record == "per_period":
            state.record_key = f"{unit_id}:{period.key}"
            locked = await self._locked(ctx, form, unit_id, period)
            if locked is not None:
                return Step([locked], None, ("menu", {"quiet": True}))
            previous = await ctx.uow.submissions.latest(form.key, state.record_key)
            if previous is not None and reviewed(form):
                review = await record_state(ctx.uow, form.key, state.record_key)
                if review.state == "returned" and review.decision is not None:
                    replies.append(
                        Reply(
                            t(
                                "↩️ Version {version} was returned for correction. Reason: {reason}",
                                version=previous.version,
                                reason=review.decision.reason or "",
                            )
                        )
                    )
            if previous is not None:
                replies.append(
                    Reply(
                        t(
                            "A report for this period was already sent (version {version}). What you send now becomes version {next}; the earlier one is kept.",
                            version=previous.version,
                            next=previous.version + 1,
                        )
                    )
                )
                state.defaults = dict(previous.values)
                state.confirmed = dict(previous.values)
            else:
                last = await ctx.uow.submissions.latest_for_unit(form.key, unit_id)
                state.defaults = (
                    {f.key: last.values.get(f.key) for f in form.fields if f.carry_over} if last else {}
                )
                if last is not None and (note := self._history_note(ctx, form, last, period)):
                    replies.append(Reply(note))
            await self._read_history(ctx, state, form, unit_id, period, new=previous is None)
        else:
            state.record_key = uuid.uuid4().hex
            state.defaults = {}
            state.prev = {}
        first = self._next_field(form, state, None)
        intro = t(
            "{form} — {unit} — {period}.",
            form=form.title.get(t.locale),
            unit=state.unit_name,
            period=self._period_text(ctx, state, period),
        )
        intro += "\n" + t("One question at a time. Type “back” to go back, “cancel” to cancel.")
        replies.append(Reply(intro))
        assert first is not None, "a form has at least one question"
        replies.append(self._ask_field(ctx, state, form, first))
        return Step(replies, state)

    async def _locked(self, ctx: Context, form: Form, unit_id: int, period: Period) -> Reply | None:
        """Said up front, before any question: the period is locked for this officer."""
        unit = await ctx.uow.units.get(unit_id)
        if unit is None:
            return None
        since = await lock_for(
            ctx.uow,
            Actor.of(ctx.contact, ctx.grants),
            form,
            unit,
            period,
            now=ctx.now,
            schedules=load_schedules(ctx.app_content_dir),
        )
        return None if since is None else Reply(locked_text(ctx, unit.name, period, unit.kind))

    def _history_note(self, ctx: Context, form: Form, last: Submission, period: Period) -> str | None:
        """A report kept from a period the form is no longer filed for (2026-H2, before the
        village report had only H1 and the year: migration 0009), inside the period chosen:
        shown, so the officer knows it is not counted and this report is the one that counts."""
        try:
            old = Period.parse(last.period)
        except ValueError:
            return None
        schedules = load_schedules(ctx.app_content_dir)
        if schedules.files_for(form.key, old, form.period_kinds) or not (
            period.contains(old.start) and period.contains(old.end)
        ):
            return None
        t = ctx.t
        return t(
            "The report sent for {old} (version {version}) is kept as history but not counted: {period} covers it. Please send the report for {period}.",
            old=old.label(t),
            version=last.version,
            period=period.label(t),
        )

    async def _read_history(
        self, ctx: Context, state: FormState, form: Form, unit_id: int, period: Period, *, new: bool
    ) -> None:
        """The unit's earlier reports the rules and the carried figures read (which ones:
        bot/domain/forms/history.py): prev() field by field, opening(), last_year(), and the
        figures shown but not asked in this period."""
        reports: dict[str, dict[str, Any]] = {}
        schedules = load_schedules(ctx.app_content_dir)
        for earlier in needed_periods(form, period):
            if not schedules.files_for(form.key, earlier, form.period_kinds):
                continue  # a report kept as history (2025-H2: migration 0009) is not read
            row = await ctx.uow.submissions.latest(form.key, f"{unit_id}:{earlier.key}")
            if row is not None:
                reports[earlier.key] = dict(row.values)
        state.prev = previous_values(form, period, reports)
        state.opening = dict(first_found(opening_sources(period, form.period_kinds), reports))
        state.last_year = dict(reports.get(same_kind_a_year_earlier(period).key) or {})
        state.carried, state.carried_from = {}, {}
        for f in form.fields:
            source = carried_source(period, f.ask_in) if f.carried else None
            if source is not None:
                state.carried[f.key] = (reports.get(source.key) or {}).get(f.key)
                state.carried_from[f.key] = source.key
            elif new and f.carry_over and f.ask_in:
                # A stock asked only in some periods: the last report that asked it.
                state.defaults[f.key] = first_found(prev_sources(form, f, period), reports).get(f.key)

    # ---- questions ------------------------------------------------------------------------
    def _asked(self, form: Form, state: FormState, f: Field) -> bool:
        if state.period is not None and not f.asked_in(Period.parse(state.period).kind):
            return False
        if not f.ask_if:
            return True
        return bool(
            _expression(form.key, f.ask_if, form.field_keys).evaluate(self._env(form, state), state.prev)
        )

    def _next_field(self, form: Form, state: FormState, after: str | None) -> Field | None:
        keys = form.field_keys
        start = 0 if after is None else keys.index(after) + 1
        for f in form.fields[start:]:
            if self._asked(form, state, f):
                return f
            state.values[f.key] = None
        return None

    def _ask_field(self, ctx: Context, state: FormState, form: Form, f: Field, prefix: str = "") -> Reply:
        t = ctx.t
        state.phase = "field"
        state.field = f.key
        asked = [g for g in form.fields if self._asked(form, state, g)]
        number = next((i for i, g in enumerate(asked, 1) if g.key == f.key), len(asked))
        lines = [prefix] if prefix else []
        lines += ["ℹ️ " + line for line in self._carried_lines(ctx, state, form, before=f.key)]
        lines.append(
            t("Question {n}/{total}: {label}", n=number, total=len(asked), label=f.label.get(t.locale))
        )
        if f.help:
            lines.append(f.help.get(t.locale))
        options: list[Option] = []
        if f.type == "choice":
            options = [Option(f"c:{c.value}", c.label.get(t.locale)) for c in self._choices(state, f)]
        keep, yours = self._keep(state, f)
        if keep is not None and self._refusal(ctx, state, form, f, keep) is None:
            # Never offered when it would be refused: pressing it would only repeat the error.
            shown = display_value(ctx, f, keep)
            lines.append(
                t("Your answer: {value}", value=shown) if yours else t("Last time: {value}", value=shown)
            )
            lines.append(t("Type “keep” to leave it unchanged."))
            options.insert(0, Option("keep", t("Keep: {value}", value=shorten(shown, BUTTON_TEXT))))
        if f.optional:
            options.append(Option("skip", t("Skip")))
        if state.history:
            options.append(Option("back", t("Back")))
        hint = {
            "integer": t("Type a whole number."),
            "money": t("Type an amount, e.g. 500k, 2.5 million or 1,200,000."),
            "date": t("Type a date as day/month/year, e.g. {example}.", example=date_example(ctx.today)),
        }.get(f.type)
        if hint:
            lines.append(hint)
        return ask(state, "\n".join(lines), options, numbered=f.type == "choice")

    async def _on_field(self, ctx: Context, state: FormState, msg: Incoming) -> Step:
        """The answer to the open question (or back, skip, keep), checked against bounds and rules."""
        t = ctx.t
        form = ctx.forms[state.form]
        f = self._open_field(form, state)
        pick = chosen(state, msg)
        word = word_of(msg)
        if pick == "back" or word in BACK_WORDS:
            if state.editing:  # changing one answer from the summary: back to the list of answers
                state.editing = False
                section = next((s for s in form.sections if f.key in s.fields), None)
                return Step([self._ask_edit(ctx, state, form, section)], state)
            return self._go_back(ctx, state, form)
        if pick == "skip" or word in SKIP_WORDS:
            if not f.optional:
                return Step(
                    [Reply(t("This question cannot be skipped."))] + await self.reprompt(ctx, state), state
                )
            return await self._accept(ctx, state, form, f, None)
        keep, _ = self._keep(state, f)
        if (pick == "keep" or word in KEEP_WORDS) and keep is not None:
            return await self._check_and_accept(ctx, state, form, f, keep)
        if word in KEEP_WORDS:  # "gn" where no earlier figure exists: not "this is not a number"
            return Step(
                [Reply(t("There is no earlier figure to keep for this question. Please type the figure."))]
                + await self.reprompt(ctx, state),
                state,
            )
        if msg.kind not in (Kind.TEXT, Kind.OPTION):
            return Step(
                [Reply(t("I can only read typed answers here."))] + await self.reprompt(ctx, state), state
            )
        try:
            value = self._parse(ctx, f, msg, pick)
        except (ParseError, AnswerRefused) as err:
            return Step([Reply(self._parse_problem(ctx, f, err))] + await self.reprompt(ctx, state), state)
        if f.type == "choice" and value not in {c.value for c in self._choices(state, f)}:
            period = Period.parse(_known(state.period, "period"))
            text = ctx.t(
                "“{choice}” cannot be chosen for {period}.",
                choice=display_value(ctx, f, value),
                period=period.label(ctx.t),
            )
            return Step([Reply(text)] + await self.reprompt(ctx, state), state)
        return await self._check_and_accept(ctx, state, form, f, value)

    def _choices(self, state: FormState, f: Field) -> tuple[Choice, ...]:
        """The choices offered in this report's period (a title is recognised only at year end)."""
        if state.period is None:
            return f.choices
        return f.choices_in(Period.parse(state.period).kind)

    def _default(self, state: FormState, f: Field) -> Any:
        """The answer offered as "keep", unless it is a choice this period does not offer."""
        default = state.defaults.get(f.key)
        if f.type == "choice" and default not in {c.value for c in self._choices(state, f)}:
            return None
        return default

    def _keep(self, state: FormState, f: Field) -> tuple[Any, bool]:
        """What "keep" keeps, and whether it is the officer's own answer: the answer given in this
        dialogue (back at an earlier question, or changing one from the summary), else the last
        report's value; (None, False) when there is nothing to keep."""
        if f.key in state.answered and state.values.get(f.key) is not None:
            value = state.values[f.key]
            if f.type != "choice" or value in {c.value for c in self._choices(state, f)}:
                return value, True
        default = self._default(state, f)
        return (None, False) if default is None or default == "" else (default, False)

    def _carried_lines(
        self, ctx: Context, state: FormState, form: Form, *, before: str | None = None
    ) -> list[str]:
        """The figures shown but not asked: all of them, or (`before`) those in the form just
        before that question, since the last one asked."""
        keys = list(form.field_keys)
        if before is None:
            wanted = keys
        else:
            wanted = []
            for key in reversed(keys[: keys.index(before)]):
                if key not in state.carried_from:
                    break
                wanted.insert(0, key)
        return [self._carried_line(ctx, state, form.field(k)) for k in wanted if k in state.carried_from]

    def _carried_line(self, ctx: Context, state: FormState, f: Field) -> str:
        t = ctx.t
        value = state.carried.get(f.key)
        return t(
            "{label} — {period} (carried over, not asked now): {value}",
            label=f.label.get(t.locale),
            period=Period.parse(state.carried_from[f.key]).label(t),
            value=display_value(ctx, f, value) if value is not None else t("not reported"),
        )

    def _parse(self, ctx: Context, f: Field, msg: Incoming, pick: str | None) -> Value:
        if f.type == "choice":
            if pick and pick.startswith("c:"):
                return pick[2:]
            typed = fold(msg.text)
            for c in f.choices:
                if typed in {
                    fold(c.value),
                    fold(c.label.vi),
                    fold(c.label.en),
                    *(fold(a) for a in c.aliases),
                }:
                    return c.value
            raise AnswerRefused("not_a_choice")
        text = msg.text.strip()
        if f.type == "integer":
            return parse_integer(text)
        if f.type == "money":
            return parse_money(text)
        if f.type == "date":
            return parse_date(text, ctx.today).isoformat()
        if not text:
            raise AnswerRefused("empty")
        limit = f.max_length or ctx.settings.max_text_length
        if len(text) > limit:
            raise AnswerRefused("too_long")
        return text

    def _parse_problem(self, ctx: Context, f: Field, err: ParseError | AnswerRefused) -> str:
        t = ctx.t
        code = err.code
        if code == "not_a_choice":
            return t("Please answer with one of the choices.")
        if code == "too_long":
            return t(
                "That is too long: at most {limit} characters, please.",
                limit=f.max_length or ctx.settings.max_text_length,
            )
        if code == "empty":
            return t("Please type an answer.")
        if code == "negative":
            return t("The number cannot be negative.")
        if code == "not_whole":
            return t("Please type a whole number, without decimals.")
        if code == "too_large":
            return t("This number is too large.")
        if code == "bad_date":
            return t(
                "I could not read this date. Type day/month/year, e.g. {example}.",
                example=date_example(ctx.today),
            )
        if f.type == "money":
            return t("This is not an amount. Type e.g. 500k, 2.5 million or 1,200,000.")
        return t("This is not a number. Type a whole number, e.g. 120 (or “none” or 0 for zero).")

    def _bounds_problem(self, ctx: Context, f: Field, value: Value) -> str | None:
        """Why a number is outside the field's bounds (None: within them)."""
        t = ctx.t
        if not isinstance(value, int) or f.type not in ("integer", "money"):
            return None
        if f.min is not None and value < f.min:
            return t(
                "{label} must be at least {min}.",
                label=f.label.get(t.locale),
                min=display_value(ctx, f, f.min),
            )
        if f.max is not None and value > f.max:
            return t(
                "{label} must be at most {max}.",
                label=f.label.get(t.locale),
                max=display_value(ctx, f, f.max),
            )
        return None

    def _violations(
        self, ctx: Context, state: FormState, form: Form, f: Field, value: Value
    ) -> list[Violation]:
        """The rules `value` as the answer to `f` breaks, given the answers so far."""
        trial = {**state.values, f.key: value}
        return check_rules(
            form,
            self._typed(form, trial),
            self._typed(form, state.prev),
            self._context(state),
            answered={*state.answered, f.key},
            focus=f.key,
            locale=ctx.t.locale,
            opening=self._typed(form, state.opening),
            last_year=self._typed(form, state.last_year),
        )

    def _refusal(self, ctx: Context, state: FormState, form: Form, f: Field, value: Value) -> str | None:
        """Why `value` would be refused as the answer to `f` (bounds, hard rules); None: it would not."""
        problem = self._bounds_problem(ctx, f, value)
        if problem is not None:
            return problem
        hard = [v for v in self._violations(ctx, state, form, f, value) if v.rule.severity == "hard"]
        return "⚠️ " + hard[0].message if hard else None

    async def _check_and_accept(
        self, ctx: Context, state: FormState, form: Form, f: Field, value: Value
    ) -> Step:
        """Bounds and hard rules refuse the answer; a soft rule asks to confirm it first."""
        t = ctx.t
        problem = self._bounds_problem(ctx, f, value)
        violations = [] if problem is not None else self._violations(ctx, state, form, f, value)
        hard = [v for v in violations if v.rule.severity == "hard"]
        if problem is None and hard:
            problem = "⚠️ " + hard[0].message
        if problem is not None:
            # Asked afresh, not repeated as it was: a "keep" the rule refuses is no longer offered.
            return Step([Reply(problem), self._ask_field(ctx, state, form, f)], state)
        trial = {**state.values, f.key: value}
        soft = [v for v in violations if not self._acknowledged(state, v.rule.id, v.rule.fields, trial)]
        if soft:
            state.phase = "soft"
            state.candidate = value
            state.soft_rule = soft[0].rule.id
            prompt = ask(
                state,
                "❓ " + soft[0].message,
                [Option("yes", t("Yes, keep it")), Option("no", t("No, re-enter"))],
            )
            return Step([prompt], state)
        return await self._accept(ctx, state, form, f, value)

    async def _on_soft(self, ctx: Context, state: FormState, msg: Incoming) -> Step:
        """Keep the answer a soft rule questioned, re-enter it, or type the corrected figure."""
        t = ctx.t
        form = ctx.forms[state.form]
        pick = chosen(state, msg)
        if pick is None and msg.kind is Kind.TEXT:
            yn = parse_yes_no(msg.text)
            pick = None if yn is None else ("yes" if yn else "no")
        f = self._open_field(form, state)
        if pick == "yes":
            candidate = state.candidate
            if state.soft_rule is not None:
                state.acked.append(state.soft_rule)
            state.candidate, state.soft_rule = None, None
            return await self._check_and_accept(ctx, state, form, f, candidate)
        if pick == "no" or word_of(msg) in BACK_WORDS:
            state.candidate, state.soft_rule = None, None
            return Step([self._ask_field(ctx, state, form, f)], state)
        if pick is None and msg.kind is Kind.TEXT and f.type in ("integer", "money", "date"):
            # People answer "are you sure?" by typing the corrected figure: take it as the answer.
            try:
                value = self._parse(ctx, f, msg, None)
            except (ParseError, AnswerRefused):
                pass
            else:
                state.candidate, state.soft_rule = None, None
                return await self._check_and_accept(ctx, state, form, f, value)
        return Step(
            [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
        )

    async def _accept(self, ctx: Context, state: FormState, form: Form, f: Field, value: Value) -> Step:
        state.values[f.key] = value
        if f.key not in state.answered:
            state.answered.append(f.key)
        if state.editing:
            state.editing = False
            return await self._finish_questions(ctx, state, form)
        state.history.append(f.key)
        nxt = self._next_field(form, state, f.key)
        if nxt is None:
            return await self._finish_questions(ctx, state, form)
        return Step([self._ask_field(ctx, state, form, nxt)], state)

    def _acknowledged(
        self, state: FormState, rule_id: str, fields: tuple[str, ...], values: dict[str, Any]
    ) -> bool:
        """A soft warning is settled when confirmed in this dialogue, or, in a correction, when
        the version being corrected was sent with the same values (it was confirmed then)."""
        if rule_id in state.acked:
            return True
        confirmed: dict[str, Any] = state.confirmed or {}
        return bool(confirmed) and all(confirmed.get(k) == values.get(k) for k in fields)

    def _go_back(self, ctx: Context, state: FormState, form: Form) -> Step:
        t = ctx.t
        if not state.history:
            return Step(
                [
                    Reply(t("This is the first question.")),
                    self._ask_field(ctx, state, form, self._open_field(form, state)),
                ],
                state,
            )
        previous = form.field(state.history.pop())
        return Step([self._ask_field(ctx, state, form, previous)], state)

    # ---- summary and confirmation ------------------------------------------------------------
    async def _finish_questions(self, ctx: Context, state: FormState, form: Form) -> Step:
        """Every rule once more on the whole form (an edit can break a rule checked earlier)."""
        t = ctx.t
        violations = check_rules(
            form,
            self._typed(form, state.values),
            self._typed(form, state.prev),
            self._context(state),
            answered=set(state.answered),
            focus=None,
            locale=t.locale,
            opening=self._typed(form, state.opening),
            last_year=self._typed(form, state.last_year),
        )
        for v in violations:
            if v.rule.severity == "hard" or not self._acknowledged(
                state, v.rule.id, v.rule.fields, state.values
            ):
                target = next((k for k in reversed(state.answered) if k in v.rule.fields), state.answered[-1])
                state.editing = True
                icon = "⚠️ " if v.rule.severity == "hard" else "❓ "
                return Step(
                    [self._ask_field(ctx, state, form, form.field(target), prefix=icon + v.message)], state
                )
        return Step([self._summary(ctx, state, form)], state)

    def _summary(self, ctx: Context, state: FormState, form: Form) -> Reply:
        t = ctx.t
        state.phase = "summary"
        period = Period.parse(_known(state.period, "period"))
        lines = [
            t(
                "Please check your report — {unit}, {period}:",
                unit=state.unit_name,
                period=self._period_text(ctx, state, period),
            )
        ]
        for f in form.fields:
            value = state.values.get(f.key)
            if f.key in state.answered and value is not None:
                lines.append(f"• {f.label.get(t.locale)}: {display_value(ctx, f, value)}")
            elif f.key in state.carried_from:
                lines.append("• " + self._carried_line(ctx, state, f))
        lines.append(t("Send this report?"))
        options = [
            Option("confirm", t("Send")),
            Option("edit", t("Change an answer")),
            Option("cancel", t("Cancel")),
        ]
        return ask(state, "\n".join(lines), options)

    async def _on_summary(self, ctx: Context, state: FormState, msg: Incoming) -> Step:
        """Send, change an answer (then which), or cancel."""
        t = ctx.t
        form = ctx.forms[state.form]
        pick = chosen(state, msg)
        if pick is None and msg.kind is Kind.TEXT:
            yn = parse_yes_no(msg.text)
            pick = "confirm" if yn else None
            if word_of(msg) in ("sua", "edit", "thay doi"):
                pick = "edit"
        if pick == "confirm":
            return await self._save(ctx, state, form)
        if pick == "cancel":
            return Step([Reply(t("Cancelled. Nothing was saved."))])
        if pick == "edit":
            return Step([self._ask_edit(ctx, state, form, None)], state)
        # Only the question again, not the whole summary above it.
        again = Reply(t("Send this report?"), [Option(i, label) for i, label in offered(state)])
        return Step([Reply(t("Please answer with one of the choices.")), again], state)

    def _ask_edit(self, ctx: Context, state: FormState, form: Form, section: Section | None) -> Reply:
        """Which answer to change: the form's sections first (when it has more than one with
        answers), then the answers of the section chosen; always a way back to the summary."""
        t = ctx.t
        state.phase = "edit"
        answered = [k for k in form.field_keys if k in state.answered]
        sections = [s for s in form.sections if any(k in s.fields for k in answered)]
        if section is None and len(sections) > 1:
            options = [Option(f"s:{s.key}", s.label.get(t.locale)) for s in sections]
            text = t("Which part of the report do you want to change?")
        else:
            keys = [k for k in answered if section is None or k in section.fields]
            options = [Option(f"f:{k}", form.field(k).label.get(t.locale)) for k in keys]
            if section is not None:
                text = t(
                    "{section}: which answer do you want to change?", section=section.label.get(t.locale)
                )
            else:
                text = t("Which answer do you want to change?")
        options.append(Option("summary", t("Back to the summary")))
        return ask(state, text, options)

    async def _on_edit(self, ctx: Context, state: FormState, msg: Incoming) -> Step:
        """A part of the report (then its answers), an answer to ask again, or back to the summary."""
        form = ctx.forms[state.form]
        pick = chosen(state, msg)
        if pick == "summary" or word_of(msg) in BACK_WORDS:
            # Through every rule again: the list may have been reached from a rule's complaint.
            return await self._finish_questions(ctx, state, form)
        if pick is not None and pick.startswith("s:") and pick[2:] in form.section_keys:
            section = form.section(pick[2:])
            keys = [k for k in section.fields if k in state.answered]
            if len(keys) != 1:
                return Step([self._ask_edit(ctx, state, form, section)], state)
            pick = "f:" + keys[0]
        if pick is None or not pick.startswith("f:") or pick[2:] not in form.field_keys:
            return Step(
                [Reply(ctx.t("Please answer with one of the choices."))] + await self.reprompt(ctx, state),
                state,
            )
        state.editing = True
        return Step([self._ask_field(ctx, state, form, form.field(pick[2:]))], state)

    async def _save(self, ctx: Context, state: FormState, form: Form) -> Step:
        t = ctx.t
        draft = Draft(
            form,
            state.record_key,
            _known(state.unit_id, "unit"),
            _known(state.period, "period"),
            state.values,
        )
        try:
            done = await self._submit(ctx, state, draft)
        except PeriodLocked as locked:  # the period locked while the dialogue was open
            kind = locked.unit.kind if locked.unit is not None else ""
            text = locked_text(ctx, state.unit_name, locked.period, kind) + "\n" + t("Nothing was saved.")
            return Step([Reply(text)])
        except NotAllowed:  # roles may change mid-dialogue
            return Step([Reply(t("You can no longer report for this unit. Nothing was saved."))])
        except PeriodNotFiled as gone:  # a dialogue begun before the period was retired
            text = t(
                "{period} is no longer a reporting period, so nothing was saved. Please start the report again.",
                period=gone.period.label(t),
            )
            if gone.covered_by is not None:
                text += " " + t("The report for {covering} covers it.", covering=gone.covered_by.label(t))
            return Step([Reply(text)], None, ("menu", {"quiet": True}))
        except RequestClosed as closed:
            return Step([Reply(closed_text(t, closed))])
        saved, unit, before = done.submission, done.unit, done.previous
        values = saved.values
        where = await describe_unit(ctx, unit)
        lines = [
            t(
                "✅ Saved: {form}, {unit}, {period} (version {version}). Thank you!",
                form=form.title.get(t.locale),
                unit=where,
                period=self._period_text(ctx, state, Period.parse(_known(state.period, "period"))),
                version=saved.version,
            )
        ]
        if values.get("is_lifelong_learning_week"):
            lines.append(t("This activity counts for the Lifelong Learning Week."))
        if before is not None:
            changes = [
                f"• {f.label.get(t.locale)}: "
                f"{display_value(ctx, f, before.values.get(f.key))} → {display_value(ctx, f, values.get(f.key))}"
                for f in form.fields
                if before.values.get(f.key) != values.get(f.key)
            ]
            lines.append(
                t("Changes from version {version}:", version=before.version)
                if changes
                else t("No changes from version {version}.", version=before.version)
            )
            lines += changes
        return Step([Reply("\n".join(lines))], None, ("menu", {"quiet": True}))

    async def _submit(self, ctx: Context, state: FormState, draft: Draft) -> Submitted:
        """A report through the report service; an answer to a request through the request's."""
        actor = Actor.of(ctx.contact, ctx.grants)
        if state.request_id is not None:
            return await submit_answer(
                ctx.uow,
                actor,
                state.request_id,
                draft,
                forms=ctx.forms,
                today=ctx.today,
                now=ctx.now,
                channel=ctx.channel,
                content_dir=ctx.app_content_dir,
            )
        return await submit_report(
            ctx.uow, actor, draft, now=ctx.now, channel=ctx.channel, content_dir=ctx.app_content_dir
        )

    # ---- plumbing ---------------------------------------------------------------------------
    async def resume(self, ctx: Context, state: FormState, msg: Incoming) -> Step:
        if state.request_id is not None:
            with_form = await self._request_context(ctx, state.request_id)
            if with_form is None:
                return self._form_gone(ctx)
            ctx = with_form
        if state.form not in ctx.forms:  # the form was removed from content/ while a dialogue was open
            return self._form_gone(ctx)
        if word_of(msg) in CANCEL_WORDS or chosen(state, msg) == "cancel":
            return Step([Reply(ctx.t("Cancelled. Nothing was saved."))])
        return await super().resume(ctx, state, msg)

    def _form_gone(self, ctx: Context) -> Step:
        return Step([Reply(ctx.t("This form is no longer available. Nothing was saved."))])

    def _open_field(self, form: Form, state: FormState) -> Field:
        """The question open; a state that names none or an unknown one is lost (see Flow.recover)."""
        if state.field is None or state.field not in form.field_keys:
            raise StateLost(f"no question {state.field!r} in form {form.key}")
        return form.field(state.field)

    def leave_warning(self, ctx: Context, state: FormState) -> str:
        form = ctx.forms.get(state.form)
        title = form.title.get(ctx.t.locale) if form else state.title
        return ctx.t(
            "You have an unfinished report ({form}). If you leave, your answers are not saved.", form=title
        )

    def _typed(self, form: Form, values: dict[str, Any]) -> dict[str, object]:
        """State values as the rules see them: dates as dates."""
        out: dict[str, object] = {}
        for key, value in values.items():
            try:
                f = form.field(key)
            except KeyError:
                continue
            out[key] = date.fromisoformat(value) if f.type == "date" and isinstance(value, str) else value
        return out

    def _env(self, form: Form, state: FormState) -> dict[str, object]:
        return {**self._typed(form, state.values), **self._context(state)}

    def _context(self, state: FormState) -> dict[str, object]:
        if state.period is None:
            return {}
        period = Period.parse(state.period)
        return {"period_start": period.start, "period_end": period.end}

    phases = phase_table(
        {
            "unit": _on_unit,
            "period": _on_period,
            "field": _on_field,
            "soft": _on_soft,
            "summary": _on_summary,
            "edit": _on_edit,
        }
    )


def locked_text(ctx: Context, unit_name: str, period: Period, unit_kind: str) -> str:
    """The period is locked; who can reopen it: the officers of the unit above (province staff
    for a commune's own report, the commune officer for a village's)."""
    t = ctx.t
    if unit_kind == COMMUNE:
        return t(
            "🔒 The {period} report of {unit} is locked: the deadline and the days for corrections have passed. Ask province staff to reopen it if it must change.",
            period=period.label(t),
            unit=unit_name,
        )
    return t(
        "🔒 The {period} report of {unit} is locked: the deadline and the days for corrections have passed. Ask your commune officer to reopen it if it must change.",
        period=period.label(t),
        unit=unit_name,
    )


def _target(arg: str, units: list[Unit], form: Form) -> tuple[Unit, Period] | None:
    """'<unit id> <period key>' naming a unit of the officer's area and a period of the form."""
    parts = arg.split()
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    unit = next((u for u in units if u.id == int(parts[0])), None)
    try:
        period = Period.parse(parts[1])
    except ValueError:
        return None
    if unit is None or period.kind not in form.period_kinds:
        return None
    return unit, period


def not_filed_text(t: Translator, period: Period, covered_by: Period | None) -> str:
    """Why a period typed (or kept from before) is not one the form is filed for."""
    if covered_by is not None:
        return t(
            "{period} is not a reporting period: the report for {covering} covers it. Please choose one of the periods offered.",
            period=period.label(t),
            covering=covered_by.label(t),
        )
    return t(
        "{period} is not a reporting period of this form. Please choose one of the periods offered.",
        period=period.label(t),
    )


def display_value(ctx: Context, f: Field, value: Any) -> str:
    """A value as the user should read it back, as in the rule messages: '1.250.000 ₫', a label."""
    return format_value(f, value, ctx.t.locale)


def _known(value: T | None, what: str) -> T:
    """A part of the state every later phase relies on; its absence means the state is lost."""
    if value is None:
        raise StateLost(f"no {what} in the state")
    return value


@lru_cache(maxsize=256)
def _expression(form_key: str, source: str, names: tuple[str, ...]) -> Expression:
    return Expression.parse(source, {*names, "period_start", "period_end"})
