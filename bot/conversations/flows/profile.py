"""/hoso (/profile): who signs the unit's compiled reports, and the symbol of their number.

The officer sees the current profile (or the defaults), then answers three questions in turn —
the signer's name, their title, the symbol after *Số: …/* — each with a keep button, confirms,
and the service (bot.services.profiles) checks the permission, saves and audits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from bot.conversations.common import units_held_for
from bot.conversations.engine import (
    CANCEL_WORDS,
    KEEP_WORDS,
    Context,
    Flow,
    FlowState,
    Step,
    ask,
    chosen,
    phase_table,
    word_of,
)
from bot.conversations.widgets.unit_picker import UNIT_PREFIX, unit_options
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.permissions import Action, NotAllowed
from bot.domain.text import shorten
from bot.reports import SUMMARY_KINDS
from bot.reports.document import SYMBOL
from bot.reports.profile import DEFAULT_TITLE
from bot.services.actor import Actor
from bot.services.profiles import (
    BadProfileValue,
    clean_signer_name,
    clean_signer_title,
    clean_symbol,
    set_profile,
)
from storage.models import Unit
from storage.models_profiles import SIGNER_NAME_MAX, SIGNER_TITLE_MAX, SYMBOL_MAX

BUTTON_TEXT = 40


class ProfileState(FlowState):
    phase: Literal["unit", "name", "title", "symbol", "confirm"] = "unit"
    unit_id: int | None = None
    unit_name: str = ""
    signer_name: str = ""
    signer_title: str = ""
    symbol: str = ""


class ProfileFlow(Flow[ProfileState]):
    name = "profile"
    state_type = ProfileState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        units = units_held_for(ctx, Action.SET_PROFILE, SUMMARY_KINDS)
        if not units:
            return Step(
                [
                    Reply(
                        t(
                            "The document profile is set by commune officers and province staff. Send /me to see your role."
                        )
                    )
                ]
            )
        state = ProfileState()
        if len(units) == 1:
            return await self._unit_chosen(ctx, state, units[0])
        state.phase = "unit"
        return Step([ask(state, t("Document profile: for which unit?"), unit_options(units))], state)

    async def resume(self, ctx: Context, state: ProfileState, msg: Incoming) -> Step:
        if word_of(msg) in CANCEL_WORDS:
            return Step([Reply(ctx.t("Cancelled. Nothing was changed."))], None, ("menu", {"quiet": True}))
        return await super().resume(ctx, state, msg)

    async def _on_unit(self, ctx: Context, state: ProfileState, msg: Incoming) -> Step:
        """One of the officer's communes or provinces, picked from the list."""
        pick = chosen(state, msg)
        unit = next(
            (
                g.unit
                for g in ctx.grants
                if pick == f"{UNIT_PREFIX}{g.unit.id}" and g.unit.kind in SUMMARY_KINDS
            ),
            None,
        )
        if unit is None:
            return Step(
                [Reply(ctx.t("Please answer with one of the choices.")), *await self.reprompt(ctx, state)],
                state,
            )
        return await self._unit_chosen(ctx, state, unit)

    async def _unit_chosen(self, ctx: Context, state: ProfileState, unit: Unit) -> Step:
        t = ctx.t
        row = await ctx.uow.profiles.get(unit.id)
        state.unit_id, state.unit_name = unit.id, unit.name
        if row is not None:
            state.signer_name, state.signer_title, state.symbol = (
                row.signer_name,
                row.signer_title,
                row.number_symbol,
            )
        intro = t("Document profile of {unit}: what its compiled reports say.", unit=unit.name)
        return Step([Reply(intro + "\n" + self._summary(ctx, state)), self._ask_name(ctx, state)], state)

    def _summary(self, ctx: Context, state: ProfileState) -> str:
        t = ctx.t
        return "\n".join(
            [
                t("Signer: {name}", name=state.signer_name or t("(no name yet)")),
                t("Signer's title: {title}", title=state.signer_title or DEFAULT_TITLE),
                t("Document number: Số: …/{symbol}", symbol=state.symbol or SYMBOL),
            ]
        )

    def _keep(self, ctx: Context, value: str) -> list[Option]:
        return [Option("keep", ctx.t("Keep: {value}", value=shorten(value, BUTTON_TEXT)))] if value else []

    def _ask_name(self, ctx: Context, state: ProfileState) -> Reply:
        state.phase = "name"
        text = ctx.t("Who signs the reports? Type the full name (e.g. Nông Văn Hải).")
        return ask(state, text, self._keep(ctx, state.signer_name), numbered=False)

    def _ask_title(self, ctx: Context, state: ProfileState) -> Reply:
        state.phase = "title"
        text = ctx.t("Their title in the signature (e.g. CHỦ TỊCH, PHÓ CHỦ TỊCH)?")
        return ask(state, text, self._keep(ctx, state.signer_title or DEFAULT_TITLE), numbered=False)

    def _ask_symbol(self, ctx: Context, state: ProfileState) -> Reply:
        state.phase = "symbol"
        text = ctx.t("The symbol after the number, as in “Số: 12/BC-HKH”: capitals, digits and hyphens.")
        return ask(state, text, self._keep(ctx, state.symbol or SYMBOL), numbered=False)

    @staticmethod
    def _answer(state: ProfileState, msg: Incoming, clean: Callable[[str], str]) -> str | None:
        """The answer cleaned by `clean`; None when the officer kept the value (button or "giữ
        nguyên"); "" when it cannot be used (the caller says why and asks again)."""
        if chosen(state, msg) == "keep" or word_of(msg) in KEEP_WORDS:
            return None
        try:
            return clean(msg.text if msg.kind is Kind.TEXT else "")
        except BadProfileValue:
            return ""

    async def _again(self, ctx: Context, state: ProfileState, problem: str) -> Step:
        return Step([Reply(problem), *await self.reprompt(ctx, state)], state)

    async def _on_name(self, ctx: Context, state: ProfileState, msg: Incoming) -> Step:
        """The signer's full name, typed, or kept."""
        name = self._answer(state, msg, clean_signer_name)
        if name == "":
            return await self._again(
                ctx, state, ctx.t("Please type a name of at most {n} characters.", n=SIGNER_NAME_MAX)
            )
        if name is not None:
            state.signer_name = name
        return Step([self._ask_title(ctx, state)], state)

    async def _on_title(self, ctx: Context, state: ProfileState, msg: Incoming) -> Step:
        """The signer's title (CHỦ TỊCH, PHÓ CHỦ TỊCH…), typed, or kept."""
        title = self._answer(state, msg, clean_signer_title)
        if title == "":
            return await self._again(
                ctx, state, ctx.t("Please type a title of at most {n} characters.", n=SIGNER_TITLE_MAX)
            )
        if title is not None:
            state.signer_title = "" if title == DEFAULT_TITLE else title
        return Step([self._ask_symbol(ctx, state)], state)

    async def _on_symbol(self, ctx: Context, state: ProfileState, msg: Incoming) -> Step:
        """The number's symbol (BC-HKH), typed, or kept; then the profile to confirm."""
        t = ctx.t
        symbol = self._answer(state, msg, clean_symbol)
        if symbol == "":
            problem = t(
                "Please type capitals, digits and hyphens only, e.g. BC-HKH (at most {n}).", n=SYMBOL_MAX
            )
            return await self._again(ctx, state, problem)
        if symbol is not None:
            state.symbol = "" if symbol == SYMBOL else symbol
        state.phase = "confirm"
        text = t("Save this profile for {unit}?", unit=state.unit_name) + "\n" + self._summary(ctx, state)
        options = [Option("save", t("Save")), Option("cancel", t("Cancel"))]
        return Step([ask(state, text, options)], state)

    async def _on_confirm(self, ctx: Context, state: ProfileState, msg: Incoming) -> Step:
        """Save or cancel."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "cancel":
            return Step([Reply(t("Cancelled. Nothing was changed."))], None, ("menu", {"quiet": True}))
        if pick != "save":
            return Step(
                [Reply(t("Please answer with one of the choices.")), *await self.reprompt(ctx, state)], state
            )
        unit = await ctx.uow.units.get(int(state.unit_id or 0))
        try:
            if unit is None:
                raise NotAllowed(Action.SET_PROFILE)
            await set_profile(
                ctx.uow,
                Actor.of(ctx.contact, ctx.grants),
                unit,
                signer_name=state.signer_name,
                signer_title=state.signer_title,
                number_symbol=state.symbol,
                now=ctx.now,
            )
        except (NotAllowed, BadProfileValue):
            return Step(
                [Reply(t("You can no longer change the profile of {unit}.", unit=state.unit_name))], None
            )
        text = t(
            "Saved. The compiled reports of {unit} will carry this signature and number.",
            unit=state.unit_name,
        )
        return Step([Reply(text)], None, ("menu", {"quiet": True}))

    def leave_warning(self, ctx: Context, state: ProfileState) -> str:
        return ctx.t("You were changing the document profile; nothing is saved yet.")

    phases = phase_table(
        {
            "unit": _on_unit,
            "name": _on_name,
            "title": _on_title,
            "symbol": _on_symbol,
            "confirm": _on_confirm,
        }
    )
