"""/thon: a commune officer lists, adds and renames the commune's villages and creates invite codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from bot.conversations.engine import Context, Flow, FlowState, Step, ask, chosen, phase_table, word_of
from bot.conversations.widgets.unit_picker import LIST_LIMIT, UnitPicker, unit_options
from bot.domain.clock import VN_TZ
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.permissions import Action, NotAllowed, roles_for
from bot.services.actor import Actor
from bot.services.invites import create_invite, format_code
from bot.services.units import BadVillageName, DuplicateVillage, add_village, rename_village
from storage.models import COMMUNE, RESIDENTIAL_GROUP, VILLAGE, VILLAGE_KINDS, VILLAGE_OFFICER, Unit

Phase = Literal["commune", "menu", "add_name", "add_kind", "rename_pick", "rename_name", "invite_pick"]


class VillagesState(FlowState):
    phase: Phase = "commune"
    commune_id: int | None = None
    new_name: str = ""
    village_id: int | None = None


class Villages(Flow[VillagesState]):
    name = "villages"
    state_type = VillagesState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        communes = [
            g.unit
            for g in ctx.grants
            if g.role in roles_for(Action.MANAGE_VILLAGES) and g.unit.kind == COMMUNE
        ]
        wider = [
            g.unit
            for g in ctx.grants
            if g.role in roles_for(Action.MANAGE_VILLAGES) and g.unit.kind != COMMUNE
        ]
        if not communes and not wider:
            return Step([Reply(t("Only commune officers manage villages. Send /me to see your role."))])
        state = VillagesState()
        if len(communes) == 1 and not wider:
            return await self._menu(ctx, state, communes[0])
        state.phase = "commune"
        options = unit_options(communes)
        return Step([ask(state, t("Which commune? Type part of its name."), options)], state)

    async def resume(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        if word_of(msg) in ("huy", "cancel", "xong", "done", "thoat"):
            return Step([Reply(ctx.t("Done."))], None, ("menu", {"quiet": True}))
        return await super().resume(ctx, state, msg)

    async def ask_again(self, ctx: Context, state: VillagesState) -> Step | None:
        commune = await ctx.uow.units.get(state.commune_id) if state.commune_id else None
        return await self._menu(ctx, state, commune) if commune is not None else None

    async def _unit_from(
        self, ctx: Context, state: VillagesState, msg: Incoming, kinds: tuple[str, ...], parent: Unit | None
    ) -> Unit | None:
        """The one unit of the officer's area the message names (several matching count as none)."""
        picker = UnitPicker(kinds, parent.id if parent else None, Action.MANAGE_VILLAGES)
        return (await picker.pick(ctx, state, msg)).unit

    async def _on_commune(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        """A commune of the officer's area, then its villages and what to do."""
        unit = await self._unit_from(ctx, state, msg, (COMMUNE,), None)
        if unit is None:
            return Step([Reply(ctx.t("No commune of your area matches. Type part of its name."))], state)
        return await self._menu(ctx, state, unit)

    async def _menu(self, ctx: Context, state: VillagesState, commune: Unit, note: str | None = None) -> Step:
        t = ctx.t
        state.phase = "menu"
        state.commune_id = commune.id
        villages = await ctx.uow.units.children(commune.id, VILLAGE_KINDS, on=ctx.today)
        lines = [note] if note else []
        lines.append(
            t("{commune} has {n} villages and residential groups:", commune=commune.name, n=len(villages))
        )
        lines += [f"• {v.name}" for v in villages[:40]]
        options = [
            Option("add", t("Add a village")),
            Option("rename", t("Rename a village")),
            Option("invite", t("Invite code for a village officer")),
            Option("done", t("Done")),
        ]
        return Step([ask(state, "\n".join(lines), options)], state)

    async def _commune(self, ctx: Context, state: VillagesState) -> Unit:
        unit = await ctx.uow.units.get(int(state.commune_id or 0))
        assert unit is not None
        return unit

    async def _on_menu(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        """Add, rename, invite code, or done."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "done":
            return Step([Reply(t("Done."))], None, ("menu", {"quiet": True}))
        if pick == "add":
            state.phase = "add_name"
            return Step(
                [ask(state, t("Type the name of the new village, e.g. “Thôn Nà Rụa” or “Tổ dân phố 5”."))],
                state,
            )
        if pick in ("rename", "invite"):
            state.phase = "rename_pick" if pick == "rename" else "invite_pick"
            commune = await self._commune(ctx, state)
            villages = await ctx.uow.units.children(commune.id, VILLAGE_KINDS, on=ctx.today)
            options = unit_options(villages)
            more = len(villages) > LIST_LIMIT
            text = t("Which village?") + ("\n" + t("Or type part of its name.") if more else "")
            return Step([ask(state, text, options)], state)
        return Step(
            [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
        )

    async def _on_add_name(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        """The new village's name, then whether it is a village or a residential group."""
        t = ctx.t
        if msg.kind is not Kind.TEXT or not msg.text.strip():
            return Step([Reply(t("Please type a name."))], state)
        state.new_name = msg.text.strip()[:200]
        state.phase = "add_kind"
        options = [
            Option(VILLAGE, t("Village (thôn, bản, ấp, xóm…)")),
            Option(RESIDENTIAL_GROUP, t("Residential group (tổ dân phố, khu phố)")),
        ]
        return Step([ask(state, t("Is it a village or a residential group?"), options)], state)

    async def _on_add_kind(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        """Village or residential group: the village is added, back to the menu."""
        t = ctx.t
        kind = chosen(state, msg)
        if kind not in (VILLAGE, RESIDENTIAL_GROUP):
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        commune = await self._commune(ctx, state)
        new_name, state.new_name = state.new_name, ""
        change = add_village(ctx.uow, Actor.of(ctx.contact, ctx.grants), commune, new_name, kind, ctx.now)
        return await self._changed(
            ctx, state, commune, change, lambda unit: t("Added: {name}.", name=unit.name)
        )

    async def _on_rename_pick(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        """The village to rename, then its new name."""
        commune = await self._commune(ctx, state)
        unit = await self._unit_from(ctx, state, msg, VILLAGE_KINDS, commune)
        if unit is None:
            return Step(
                [Reply(ctx.t("No village of this commune matches."))] + await self.reprompt(ctx, state), state
            )
        state.village_id = unit.id
        state.phase = "rename_name"
        return Step([ask(state, ctx.t("New name for {name}?", name=unit.name))], state)

    async def _on_rename_name(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        """The village's new name: renamed, back to the menu."""
        t = ctx.t
        commune = await self._commune(ctx, state)
        village = await ctx.uow.units.get(int(state.village_id or 0))
        if village is None or msg.kind is not Kind.TEXT or not msg.text.strip():
            return Step([Reply(t("Please type a name."))], state)
        old = village.name
        change = rename_village(
            ctx.uow, Actor.of(ctx.contact, ctx.grants), village, msg.text.strip()[:200], ctx.now
        )
        return await self._changed(
            ctx, state, commune, change, lambda unit: t("Renamed: {old} → {new}.", old=old, new=unit.name)
        )

    async def _changed(
        self,
        ctx: Context,
        state: VillagesState,
        commune: Unit,
        change: Awaitable[Unit],
        done: Callable[[Unit], str],
    ) -> Step:
        """Apply an addition or a renaming and say how it went: the service raises what was wrong."""
        t = ctx.t
        try:
            unit = await change
        except NotAllowed:
            return Step(
                [Reply(t("You can no longer manage the villages of {commune}.", commune=commune.name))]
            )
        except DuplicateVillage:
            return await self._menu(
                ctx, state, commune, t("This commune already has a village with that name.")
            )
        except BadVillageName:
            return await self._menu(
                ctx, state, commune, t("That name cannot be used (at most 100 characters).")
            )
        return await self._menu(ctx, state, commune, done(unit))

    async def _on_invite_pick(self, ctx: Context, state: VillagesState, msg: Incoming) -> Step:
        """The village whose officer is invited: a code is created, back to the menu."""
        t = ctx.t
        commune = await self._commune(ctx, state)
        unit = await self._unit_from(ctx, state, msg, VILLAGE_KINDS, commune)
        if unit is None:
            return Step(
                [Reply(t("No village of this commune matches."))] + await self.reprompt(ctx, state), state
            )
        actor = Actor.of(ctx.contact, ctx.grants)
        try:
            invite = await create_invite(
                ctx.uow, actor, unit, VILLAGE_OFFICER, ctx.now, ctx.settings.invite_expiry_days
            )
        except NotAllowed:
            return Step(
                [Reply(t("You can no longer manage the villages of {commune}.", commune=commune.name))]
            )
        expires = t.date(invite.expires_at.astimezone(VN_TZ).date())
        note = t(
            "Invite code for the officer of {village}: {code} (single use, valid until {date}). The officer sends /start to the bot and types this code.",
            village=unit.name,
            code=format_code(invite.code),
            date=expires,
        )
        return await self._menu(ctx, state, commune, note)

    phases = phase_table(
        {
            "commune": _on_commune,
            "menu": _on_menu,
            "add_name": _on_add_name,
            "add_kind": _on_add_kind,
            "rename_pick": _on_rename_pick,
            "rename_name": _on_rename_name,
            "invite_pick": _on_invite_pick,
        }
    )
