"""/thon: a commune officer lists, adds and renames the commune's villages and creates invite codes."""

from __future__ import annotations

from typing import Any

from bot.conversations.engine import Context, Flow, State, Step, ask, chosen, word_of
from bot.domain.clock import VN_TZ
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import fold
from bot.domain.permissions import Action, NotAllowed, may_act_on, roles_for
from bot.domain.permissions import area as area_of
from bot.services.actor import Actor
from bot.services.invites import create_invite, format_code
from bot.services.units import BadVillageName, DuplicateVillage, add_village, rename_village
from storage.models import COMMUNE, RESIDENTIAL_GROUP, VILLAGE, VILLAGE_KINDS, VILLAGE_OFFICER, Unit


class Villages(Flow):
    name = "villages"

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
            return Step([Reply(t("Only commune officers manage villages. Send /toi to see your role."))])
        state: State = {}
        if len(communes) == 1 and not wider:
            return await self._menu(ctx, state, communes[0])
        state["phase"] = "commune"
        options = [Option(f"unit:{u.id}", u.name) for u in communes[:10]]
        return Step([ask(state, t("Which commune? Type part of its name."), options)], state)

    async def resume(self, ctx: Context, state: State, msg: Incoming) -> Step:
        if word_of(msg) in ("huy", "cancel", "xong", "done", "thoat"):
            return Step([Reply(ctx.t("Done."))], None, ("menu", {"quiet": True}))
        handler = getattr(self, f"_on_{state['phase']}")
        step: Step = await handler(ctx, state, msg)
        return step

    async def _unit_from(
        self, ctx: Context, state: State, msg: Incoming, kinds: tuple[str, ...], parent: Unit | None
    ) -> Unit | None:
        pick = chosen(state, msg)
        if pick and pick.startswith("unit:"):
            unit = await ctx.uow.units.get(int(pick[5:]))
        elif msg.kind is Kind.TEXT and fold(msg.text):
            area = area_of(ctx.grants, Action.MANAGE_VILLAGES)
            found = await ctx.uow.units.search(
                fold(msg.text)[:60], kinds, parent.id if parent else None, limit=2, within=area
            )
            unit = found[0] if len(found) == 1 else None
        else:
            unit = None
        if unit is None or unit.kind not in kinds or not may_act_on(ctx.grants, unit, Action.MANAGE_VILLAGES):
            return None
        return unit

    async def _on_commune(self, ctx: Context, state: State, msg: Incoming) -> Step:
        unit = await self._unit_from(ctx, state, msg, (COMMUNE,), None)
        if unit is None:
            return Step([Reply(ctx.t("No commune of your area matches. Type part of its name."))], state)
        return await self._menu(ctx, state, unit)

    async def _menu(self, ctx: Context, state: State, commune: Unit, note: str | None = None) -> Step:
        t = ctx.t
        state["phase"] = "menu"
        state["commune_id"] = commune.id
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

    async def _commune(self, ctx: Context, state: State) -> Unit:
        unit = await ctx.uow.units.get(int(state["commune_id"]))
        assert unit is not None
        return unit

    async def _on_menu(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "done":
            return Step([Reply(t("Done."))], None, ("menu", {"quiet": True}))
        if pick == "add":
            state["phase"] = "add_name"
            return Step(
                [ask(state, t("Type the name of the new village, e.g. “Thôn Nà Rụa” or “Tổ dân phố 5”."))],
                state,
            )
        if pick in ("rename", "invite"):
            state["phase"] = f"{pick}_pick"
            commune = await self._commune(ctx, state)
            villages = await ctx.uow.units.children(commune.id, VILLAGE_KINDS, on=ctx.today)
            options = [Option(f"unit:{v.id}", v.name) for v in villages[:10]]
            text = t("Which village?") + ("\n" + t("Or type part of its name.") if len(villages) > 10 else "")
            return Step([ask(state, text, options)], state)
        return Step(
            [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
        )

    async def _on_add_name(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        if msg.kind is not Kind.TEXT or not msg.text.strip():
            return Step([Reply(t("Please type a name."))], state)
        state["new_name"] = msg.text.strip()[:200]
        state["phase"] = "add_kind"
        options = [
            Option(VILLAGE, t("Village (thôn, bản, ấp, xóm…)")),
            Option(RESIDENTIAL_GROUP, t("Residential group (tổ dân phố, khu phố)")),
        ]
        return Step([ask(state, t("Is it a village or a residential group?"), options)], state)

    async def _on_add_kind(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        kind = chosen(state, msg)
        if kind not in (VILLAGE, RESIDENTIAL_GROUP):
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        commune = await self._commune(ctx, state)
        actor = Actor.of(ctx.contact, ctx.grants)
        try:
            unit = await add_village(ctx.uow, actor, commune, state.pop("new_name"), kind, ctx.now)
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
        return await self._menu(ctx, state, commune, t("Added: {name}.", name=unit.name))

    async def _on_rename_pick(self, ctx: Context, state: State, msg: Incoming) -> Step:
        commune = await self._commune(ctx, state)
        unit = await self._unit_from(ctx, state, msg, VILLAGE_KINDS, commune)
        if unit is None:
            return Step(
                [Reply(ctx.t("No village of this commune matches."))] + await self.reprompt(ctx, state), state
            )
        state["village_id"] = unit.id
        state["phase"] = "rename_name"
        return Step([ask(state, ctx.t("New name for {name}?", name=unit.name))], state)

    async def _on_rename_name(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        commune = await self._commune(ctx, state)
        village = await ctx.uow.units.get(int(state["village_id"]))
        if village is None or msg.kind is not Kind.TEXT or not msg.text.strip():
            return Step([Reply(t("Please type a name."))], state)
        old = village.name
        actor = Actor.of(ctx.contact, ctx.grants)
        try:
            await rename_village(ctx.uow, actor, village, msg.text.strip()[:200], ctx.now)
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
        return await self._menu(ctx, state, commune, t("Renamed: {old} → {new}.", old=old, new=village.name))

    async def _on_invite_pick(self, ctx: Context, state: State, msg: Incoming) -> Step:
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
