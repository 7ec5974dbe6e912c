"""/baocaotonghop (/summary): a compiled report on demand — unit → period → summary and files.

A commune officer with one commune goes straight to the period; province staff pick their
province or type part of a commune's name. The service (bot.services.reports) decides whether
the officer may have the unit's report; the dialogue only asks and renders.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.conversations.engine import CANCEL_WORDS, Context, Flow, State, Step, ask, chosen, word_of
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import fold
from bot.domain.permissions import Action, NotAllowed, roles_for
from bot.domain.permissions import area as area_of
from bot.domain.schedules import ReportPeriod, load_schedules
from bot.reports import SUMMARY_KINDS
from bot.reports.aggregate import VILLAGE_FORM
from bot.reports.compiled import may_compile, render, summary_text
from bot.services.actor import Actor
from bot.services.reports import compile_report
from storage.models import COMMUNE, Unit

LIST_LIMIT = 10


class Summary(Flow):
    name = "summary"

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        units = [
            g.unit
            for g in ctx.grants
            if g.role in roles_for(Action.COMPILE_REPORT) and g.unit.kind in SUMMARY_KINDS
        ]
        if not units:
            return Step(
                [
                    Reply(
                        t(
                            "Compiled reports are for commune officers and province staff. Send /toi to see your role."
                        )
                    )
                ]
            )
        state: State = {}
        if len(units) == 1 and units[0].kind == COMMUNE:
            return self._unit_chosen(ctx, state, units[0])
        return Step([self._ask_unit(ctx, state, units)], state)

    def _ask_unit(self, ctx: Context, state: State, units: list[Unit]) -> Reply:
        t = ctx.t
        state["phase"] = "unit"
        options = [Option(f"unit:{u.id}", u.name) for u in units[:LIST_LIMIT]]
        text = t("Compiled report: for which unit?")
        if any(u.kind != COMMUNE for u in units) or len(units) > LIST_LIMIT:
            text += "\n" + t("Or type part of a commune's name.")
        return ask(state, text, options)

    async def resume(self, ctx: Context, state: State, msg: Incoming) -> Step:
        if word_of(msg) in CANCEL_WORDS:
            return Step([Reply(ctx.t("Cancelled."))], None, ("menu", {"quiet": True}))
        handler = getattr(self, f"_on_{state['phase']}")
        step: Step = await handler(ctx, state, msg)
        return step

    async def _on_unit(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        pick = chosen(state, msg)
        unit: Unit | None = None
        if pick and pick.startswith("unit:") and pick[5:].isdigit():
            unit = await ctx.uow.units.get(int(pick[5:]))
        elif msg.kind is Kind.TEXT and fold(msg.text):
            query = fold(msg.text)[:60]
            area = area_of(ctx.grants, Action.COMPILE_REPORT)
            found = await ctx.uow.units.search(query, SUMMARY_KINDS, within=area, on=ctx.today)
            if len(found) == 1:
                unit = found[0]
            elif found:
                return Step([self._ask_unit(ctx, state, found)], state)
            else:
                elsewhere = await ctx.uow.units.search(query, SUMMARY_KINDS, limit=1)
                text = (
                    t(
                        "{unit} is outside your area: you can get compiled reports only for the units you are responsible for.",
                        unit=elsewhere[0].name,
                    )
                    if elsewhere
                    else t(
                        "Nothing found for “{query}”. Try another spelling or part of the name.",
                        query=msg.text.strip()[:60],
                    )
                )
                return Step([Reply(text), *await self.reprompt(ctx, state)], state)
        if unit is None:
            return Step(
                [Reply(t("Please answer with one of the choices.")), *await self.reprompt(ctx, state)], state
            )
        if not may_compile(ctx.grants, unit):
            text = t(
                "{unit} is outside your area: you can get compiled reports only for the units you are responsible for.",
                unit=unit.name,
            )
            return Step([Reply(text), *await self.reprompt(ctx, state)], state)
        return self._unit_chosen(ctx, state, unit)

    def _unit_chosen(self, ctx: Context, state: State, unit: Unit) -> Step:
        t = ctx.t
        state.update(phase="period", unit_id=unit.id, unit_name=unit.name)
        periods = load_schedules(ctx.app_content_dir).recent_periods(VILLAGE_FORM, ctx.today)
        options = [Option(p.key, p.label(t)) for p in periods]
        options[0] = Option(periods[0].key, t("{period} (default)", period=periods[0].label(t)))
        text = t(
            "Compiled report for {unit}: which period? You can also type one, e.g. 2025-H1 or 2025.",
            unit=unit.name,
        )
        return Step([ask(state, text, options)], state)

    async def _on_period(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        pick = chosen(state, msg)
        if pick is None and msg.kind is Kind.TEXT:
            pick = msg.text.strip()
        try:
            period = ReportPeriod.parse(pick or "")
        except ValueError:
            return Step(
                [Reply(t("Please answer with one of the choices.")), *await self.reprompt(ctx, state)], state
            )
        try:
            compiled = await compile_report(
                ctx.uow,
                Actor.of(ctx.contact, ctx.grants),
                int(state["unit_id"]),
                period,
                content_dir=ctx.app_content_dir,
                forms=ctx.forms,
                now=ctx.now,
            )
        except NotAllowed:  # roles may change while the dialogue is open
            return Step(
                [Reply(t("You can no longer get reports for {unit}.", unit=state.get("unit_name", "")))]
            )
        files = await asyncio.to_thread(render, compiled, t)
        return Step([Reply(summary_text(compiled, t), attachments=files)], None, ("menu", {"quiet": True}))

    def leave_warning(self, ctx: Context, state: State) -> str:
        return ctx.t("You were choosing a compiled report.")
