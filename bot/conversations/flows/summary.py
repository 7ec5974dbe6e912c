"""/baocaotonghop (/summary): a compiled report on demand — unit → period → summary and files.

A commune officer with one commune goes straight to the period; province staff pick their
province or type part of a commune's name. The service (bot.services.reports) decides whether
the officer may have the unit's report; the dialogue only asks and renders. The report itself is
made after the step is saved, outside its transaction (`Reply.later`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from bot.conversations.common import units_held_for
from bot.conversations.engine import (
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
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.periods import FIRST_REPORT_YEAR, Period, typed_report_period
from bot.domain.permissions import Action, NotAllowed
from bot.domain.schedules import load_schedules
from bot.domain.text import sentence_case, shorten
from bot.reports import SUMMARY_KINDS
from bot.reports.aggregate import VILLAGE_FORM
from bot.reports.compiled import render, summary_text
from bot.reports.profile import unit_profile
from bot.services.actor import Actor
from bot.services.reports import compile_report
from storage.models import COMMUNE, Unit
from storage.readonly import ReadOnlyUnitOfWork


class SummaryState(FlowState):
    phase: Literal["unit", "period"] = "unit"
    unit_id: int | None = None
    unit_name: str = ""


class Summary(Flow[SummaryState]):
    name = "summary"
    state_type = SummaryState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        units = units_held_for(ctx, Action.COMPILE_REPORT, SUMMARY_KINDS)
        if not units:
            return Step(
                [
                    Reply(
                        t(
                            "Compiled reports are for commune officers and province staff. Send /me to see your role."
                        )
                    )
                ]
            )
        state = SummaryState()
        if len(units) == 1 and units[0].kind == COMMUNE:
            return self._unit_chosen(ctx, state, units[0])
        return Step([self._ask_unit(ctx, state, units)], state)

    def _ask_unit(self, ctx: Context, state: SummaryState, units: list[Unit]) -> Reply:
        t = ctx.t
        state.phase = "unit"
        options = unit_options(units)
        text = t("Compiled report: for which unit?")
        if any(u.kind != COMMUNE for u in units) or len(units) > LIST_LIMIT:
            text += "\n" + t("Or type part of a commune's name.")
        return ask(state, text, options)

    async def resume(self, ctx: Context, state: SummaryState, msg: Incoming) -> Step:
        if word_of(msg) in CANCEL_WORDS:
            return Step([Reply(ctx.t("Cancelled."))], None, ("menu", {"quiet": True}))
        return await super().resume(ctx, state, msg)

    async def _on_unit(self, ctx: Context, state: SummaryState, msg: Incoming) -> Step:
        """A commune or province of the officer's area (typed or picked), then the period."""
        t = ctx.t
        picked = await UnitPicker(SUMMARY_KINDS, action=Action.COMPILE_REPORT).pick(ctx, state, msg)
        if picked.unit is not None:
            return self._unit_chosen(ctx, state, picked.unit)
        if picked.matches:
            return Step([self._ask_unit(ctx, state, list(picked.matches))], state)
        if picked.outside is not None:
            text = t(
                "{unit} is outside your area: you can get compiled reports only for the units you are responsible for.",
                unit=picked.outside.name,
            )
        elif picked.query:
            text = nothing_found(t, picked.query)
        else:
            text = t("Please answer with one of the choices.")
        return Step([Reply(text), *await self.reprompt(ctx, state)], state)

    def _unit_chosen(self, ctx: Context, state: SummaryState, unit: Unit) -> Step:
        t = ctx.t
        state.phase, state.unit_id, state.unit_name = "period", unit.id, unit.name
        periods = load_schedules(ctx.app_content_dir).recent_periods(VILLAGE_FORM, ctx.today)
        # Button labels start a line: "Năm 2026", where a sentence says "năm 2026".
        options = [Option(p.key, sentence_case(p.label(t))) for p in periods]
        options[0] = Option(
            periods[0].key, sentence_case(t("{period} (default)", period=periods[0].label(t)))
        )
        last_year = ctx.today.year - 1
        text = t(
            "Compiled report for {unit}: which period? You can also type one, e.g. “{half}” or “{year}”.",
            unit=unit.name,
            half=Period("half_year", last_year, 1).label(t),
            year=Period("year", last_year, 0).label(t),
        )
        return Step([ask(state, text, options)], state)

    async def _on_period(self, ctx: Context, state: SummaryState, msg: Incoming) -> Step:
        """A period offered or typed ("6 tháng đầu năm 2025", "2025-H1"): the report is sent."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick is not None:
            return Step([self._report_later(ctx, state, Period.parse(pick))], None)
        typed = msg.text.strip() if msg.kind is Kind.TEXT else ""
        try:
            period = typed_report_period(typed, ctx.today)
        except ValueError:
            if not typed:
                text = t("Please answer with one of the choices.")
            else:  # "9999", "2030", "abc": say which periods there are
                text = t(
                    "“{typed}” is not a period with a report. Type a year from {first} to {last} "
                    "(e.g. {year}) or a half-year (e.g. “{half}”), or pick one of the choices.",
                    typed=shorten(typed, 40),
                    first=FIRST_REPORT_YEAR,
                    last=ctx.today.year,
                    year=ctx.today.year - 1,
                    half=Period("half_year", ctx.today.year - 1, 1).label(t),
                )
            return Step([Reply(text), *await self.reprompt(ctx, state)], state)
        return Step([self._report_later(ctx, state, period)], None)

    def _report_later(self, ctx: Context, state: SummaryState, period: Period) -> Reply:
        """The report, made once this step is saved: read outside the dialogue's transaction,
        off the event loop, and drawn in a worker thread (bot.services.later)."""
        t, actor, now, forms = ctx.t, Actor.of(ctx.contact, ctx.grants), ctx.now, ctx.forms
        content_dir, unit_id, unit_name = (
            ctx.app_content_dir,
            int(state.unit_id or 0),
            state.unit_name,
        )
        menu = ctx.menu(ctx, t("What would you like to do next?"))

        async def report(reads: ReadOnlyUnitOfWork) -> list[Reply]:
            try:
                compiled = await compile_report(
                    reads, actor, unit_id, period, content_dir=content_dir, forms=forms, now=now
                )
            except NotAllowed:  # roles may change while the dialogue is open
                return [Reply(t("You can no longer get reports for {unit}.", unit=unit_name))]
            profile = await unit_profile(reads, unit_id)
            files = await asyncio.to_thread(render, compiled, t, profile=profile)
            return [Reply(summary_text(compiled, t), attachments=files), menu]

        return Reply(t("Sorry, the compiled report could not be made. Please try again later."), later=report)

    def leave_warning(self, ctx: Context, state: SummaryState) -> str:
        return ctx.t("You were choosing a compiled report.")

    phases = phase_table({"unit": _on_unit, "period": _on_period})
