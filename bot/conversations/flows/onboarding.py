"""/start: language → consent → member (province → commune → village) or officer (invite code)."""

from __future__ import annotations

from typing import Any

from bot.conversations.common import describe_unit, role_label
from bot.conversations.engine import Context, Flow, State, Step, ask, chosen, word_of
from bot.conversations.flows.outreach_flows import topics_invitation
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import fold, parse_yes_no
from bot.services.invites import RedeemOutcome, redeem_invite
from storage.models import COMMUNE, MEMBER, PROVINCE, VILLAGE_KINDS, Unit

MAX_CODE_TRIES = 5


class Onboarding(Flow):
    name = "onboarding"

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        state: State = {"step": "language"}
        if args.get("code"):  # "/start ABCD-EFGH" from a deep link
            state["code"] = str(args["code"])
        text = "Chào bạn! Mời chọn ngôn ngữ.\nHello! Please choose your language."
        reply = ask(state, text, [Option("vi", "Tiếng Việt"), Option("en", "English")])
        return Step([reply], state)

    async def resume(self, ctx: Context, state: State, msg: Incoming) -> Step:
        handler = getattr(self, f"_on_{state['step']}")
        step: Step = await handler(ctx, state, msg)
        return step

    async def _on_language(self, ctx: Context, state: State, msg: Incoming) -> Step:
        pick = chosen(state, msg) or {"tieng viet": "vi", "viet": "vi", "english": "en"}.get(word_of(msg))
        if pick not in ("vi", "en"):
            return Step(
                [Reply("Vui lòng chọn 1 hoặc 2. / Please choose 1 or 2.")] + await self.reprompt(ctx, state),
                state,
            )
        ctx.set_locale(translator(pick))
        return Step([self._ask_consent(ctx, state)], state)

    def _ask_consent(self, ctx: Context, state: State) -> Reply:
        t = ctx.t
        state["step"] = "consent"
        text = "\n".join(
            [
                t(
                    "Khuyến học Bot helps village and commune officers report study-promotion figures, and sends members learning tips."
                ),
                t(
                    "We store your chat name, the area and role you choose, and the reports you send. You can stop messages at any time."
                ),
                t("Do you agree?"),
            ]
        )
        return ask(state, text, [Option("yes", t("I agree")), Option("no", t("I do not agree"))])

    async def _on_consent(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        pick = chosen(state, msg)
        if pick is None:
            yn = parse_yes_no(msg.text) if msg.kind is Kind.TEXT else None
            pick = None if yn is None else ("yes" if yn else "no")
        if pick is None:
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        if pick == "no":
            return Step(
                [
                    Reply(
                        t(
                            "Understood: nothing more is stored and we will not message you. Send /start if you change your mind."
                        )
                    )
                ]
            )
        ctx.contact.consent_at = ctx.now
        ctx.uow.audit.add(ctx.now, "contact.consent", ctx.contact.id)
        if state.get("code"):
            return await self._redeem(ctx, state, state.pop("code"))
        return Step([self._ask_who(ctx, state)], state)

    def _ask_who(self, ctx: Context, state: State) -> Reply:
        t = ctx.t
        state["step"] = "who"
        return ask(
            state,
            t("Are you a member of the public, or an officer with an invite code?"),
            [Option("member", t("Member / resident")), Option("officer", t("I have an invite code"))],
        )

    async def _on_who(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "member":
            state["step"] = "province"
            return Step(
                [ask(state, t("Type the name of your province or city (for example: Cao Bằng)."))], state
            )
        if pick == "officer":
            state["step"] = "code"
            state["tries"] = 0
            return Step([ask(state, t("Type your invite code (for example: ABCD-EFGH)."))], state)
        if msg.kind is Kind.TEXT and len(msg.text.strip()) in (8, 9):  # typed a code straight away
            return await self._redeem(ctx, state, msg.text)
        return Step(
            [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
        )

    async def _on_code(self, ctx: Context, state: State, msg: Incoming) -> Step:
        t = ctx.t
        if msg.kind is not Kind.TEXT or not msg.text.strip():
            return Step([Reply(t("Please type the code as text."))] + await self.reprompt(ctx, state), state)
        if chosen(state, msg) == "member":
            state["step"] = "province"
            return Step(
                [ask(state, t("Type the name of your province or city (for example: Cao Bằng)."))], state
            )
        return await self._redeem(ctx, state, msg.text)

    async def _redeem(self, ctx: Context, state: State, code: str) -> Step:
        t = ctx.t
        outcome, invite = await redeem_invite(ctx.uow, code, ctx.contact.id, ctx.now)
        if outcome is RedeemOutcome.OK and invite is not None:
            unit = await ctx.uow.units.get(invite.unit_id)
            where = await describe_unit(ctx, unit) if unit else ""
            ctx.contact.home_unit_id = invite.unit_id
            await ctx.refresh_grants()
            done = t(
                "Welcome! You are registered as {role} of {unit}.",
                role=role_label(t, invite.role),
                unit=where,
            )
            return Step([Reply(done)], None, ("menu", {}))
        state["step"] = "code"
        state["tries"] = int(state.get("tries", 0)) + 1
        problem = {
            RedeemOutcome.UNKNOWN: t("This code is not valid. Check the letters and try again."),
            RedeemOutcome.EXPIRED: t("This code has expired. Ask your commune officer for a new one."),
            RedeemOutcome.USED_UP: t(
                "This code has already been used. Ask your commune officer for a new one."
            ),
        }[outcome]
        if state["tries"] >= MAX_CODE_TRIES:
            return Step([Reply(problem + "\n" + t("Too many attempts. Send /start to begin again."))])
        prompt = ask(
            state,
            t("Type the code again, or register as a member instead."),
            [Option("member", t("Register as a member"))],
        )
        return Step([Reply(problem), prompt], state)

    async def _pick_unit(
        self, ctx: Context, state: State, msg: Incoming, kinds: tuple[str, ...], parent_id: int | None
    ) -> tuple[Unit | None, list[Reply]]:
        """Find the unit the user means: a chosen option, or a diacritics-insensitive name search."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick and pick.startswith("unit:"):
            unit = await ctx.uow.units.get(int(pick[5:]))
            if unit is not None and unit.kind in kinds and (parent_id is None or unit.parent_id == parent_id):
                return unit, []
        if msg.kind is not Kind.TEXT or not fold(msg.text):
            return None, [Reply(t("Please type a name."))]
        query = fold(msg.text)[:60]
        found = await ctx.uow.units.search(query, kinds, parent_id, limit=8, on=ctx.today)
        exact = [u for u in found if u.name_folded == query or u.name_folded.endswith(" " + query)]
        if len(exact) == 1:
            return exact[0], []
        if len(found) == 1:
            return found[0], []
        if not found:
            return None, [
                Reply(
                    t(
                        "Nothing found for “{query}”. Try another spelling or part of the name.",
                        query=msg.text.strip()[:60],
                    )
                )
            ]
        options = [Option(f"unit:{u.id}", u.name) for u in found]
        return None, [ask(state, t("Which one do you mean?"), options)]

    async def _on_province(self, ctx: Context, state: State, msg: Incoming) -> Step:
        unit, replies = await self._pick_unit(ctx, state, msg, (PROVINCE,), None)
        if unit is None:
            return Step(replies, state)
        state["province_id"] = unit.id
        state["step"] = "commune"
        return Step(
            [ask(state, ctx.t("{province}. Now type the name of your commune or ward.", province=unit.name))],
            state,
        )

    async def _on_commune(self, ctx: Context, state: State, msg: Incoming) -> Step:
        unit, replies = await self._pick_unit(ctx, state, msg, (COMMUNE,), int(state["province_id"]))
        if unit is None:
            return Step(replies, state)
        state["commune_id"] = unit.id
        villages = await ctx.uow.units.children(unit.id, VILLAGE_KINDS, on=ctx.today)
        if not villages:
            return await self._finish_member(ctx, unit)
        state["step"] = "village"
        options = [Option(f"unit:{v.id}", v.name) for v in villages[:10]]
        options.append(Option("none", ctx.t("Not listed / skip")))
        text = ctx.t("{commune}. Which village or residential group do you live in?", commune=unit.name)
        if len(villages) > 10:
            text += "\n" + ctx.t("Or type part of its name.")
        return Step([ask(state, text, options)], state)

    async def _on_village(self, ctx: Context, state: State, msg: Incoming) -> Step:
        commune = await ctx.uow.units.get(int(state["commune_id"]))
        assert commune is not None
        if chosen(state, msg) == "none" or word_of(msg) in ("bo qua", "skip"):
            return await self._finish_member(ctx, commune)
        unit, replies = await self._pick_unit(ctx, state, msg, VILLAGE_KINDS, commune.id)
        if unit is None:
            return Step(replies, state)
        return await self._finish_member(ctx, unit)

    async def _finish_member(self, ctx: Context, unit: Unit) -> Step:
        t = ctx.t
        ctx.contact.home_unit_id = unit.id
        await ctx.uow.contacts.grant(ctx.contact.id, MEMBER, unit.id, ctx.now)
        await ctx.refresh_grants()
        ctx.uow.audit.add(ctx.now, "contact.register_member", ctx.contact.id, unit.id)
        where = await describe_unit(ctx, unit)
        done = t("Thank you! You are registered as a member in {unit}.", unit=where)
        # Topics are offered as commands, not as a question: nothing is left waiting for an answer.
        return Step([Reply(done), topics_invitation(ctx)])
