"""/start: language → consent → member (province → commune → village) or officer (invite code).

"/start CODE" (a Telegram deep link from a printed slip, t.me/<bot>?start=CODE) skips what the code
makes unneeded: the consent question comes first, in the contact's language with a button for the
other one, and agreeing redeems the code; a contact who consented before is registered at once.
Consent is never skipped for someone who has not given it (Law 91/2025/QH15).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, ConfigDict, Field

from bot.conversations.common import describe_unit, role_label
from bot.conversations.engine import Context, Flow, FlowState, Step, ask, chosen, phase_table, word_of
from bot.conversations.flows.outreach_flows import topics_invitation
from bot.conversations.widgets.unit_picker import UnitPicker, nothing_found, unit_options
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import parse_yes_no
from bot.services.invites import InviteLimits, RedeemOutcome
from bot.services.personal_data import decline_consent
from bot.services.registration import NotAPlaceToJoin, accept_invite, record_consent, register_member
from storage.models import COMMUNE, PROVINCE, VILLAGE_KINDS, Unit

MAX_CODE_TRIES = 5
VILLAGES_LISTED = 10

Phase = Literal["language", "consent", "who", "code", "province", "commune", "village"]


class OnboardingState(FlowState):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    # Rows written before typed state called the phase "step".
    phase: Phase = Field(default="language", validation_alias=AliasChoices("phase", "step"))
    code: str | None = None  # from a "/start CODE" deep link, redeemed after consent
    tries: int = 0
    province_id: int | None = None
    commune_id: int | None = None


class Onboarding(Flow[OnboardingState]):
    name = "onboarding"
    state_type = OnboardingState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        state = OnboardingState()
        if args.get("code"):  # "/start ABCD-EFGH" from a deep link
            if ctx.contact.consent_at is not None:
                return await self._redeem(ctx, state, str(args["code"]))
            state.code = str(args["code"])
            return Step([self._ask_consent(ctx, state)], state)
        text = "Xin chào! Mời anh/chị chọn ngôn ngữ.\nHello! Please choose your language."
        reply = ask(state, text, [Option("vi", "Tiếng Việt"), Option("en", "English")])
        return Step([reply], state)

    async def restart(self, ctx: Context, raw: Mapping[str, Any]) -> Step:
        step = await self.start(ctx, {"code": raw.get("code")} if isinstance(raw.get("code"), str) else {})
        step.flow = self.name
        return step

    async def _on_language(self, ctx: Context, state: OnboardingState, msg: Incoming) -> Step:
        """Tiếng Việt or English, then the consent question."""
        pick = chosen(state, msg) or {"tieng viet": "vi", "viet": "vi", "english": "en"}.get(word_of(msg))
        if pick not in ("vi", "en"):
            return Step(
                [Reply("Anh/chị vui lòng chọn 1 hoặc 2. / Please choose 1 or 2.")]
                + await self.reprompt(ctx, state),
                state,
            )
        ctx.set_locale(translator(pick))
        return Step([self._ask_consent(ctx, state)], state)

    def _ask_consent(self, ctx: Context, state: OnboardingState) -> Reply:
        t = ctx.t
        state.phase = "consent"
        # What Law 91/2025/QH15 asks consent to name: the purpose, the data, how long, how to withdraw.
        text = "\n".join(
            [
                t(
                    "Khuyến học Bot helps village and commune officers report study-promotion figures, and sends members learning tips."
                ),
                t(
                    "For this we store your name and id in this chat app, your language, the area and role you choose, the reports you send, and the messages we send you."
                ),
                t(
                    "We keep them while you use the bot. Reports you send are official records of your village or commune and stay after you leave, without your name."
                ),
                t(
                    "You can see your data with /mydata, stop messages with /stop, and withdraw your consent and delete your data with /deletemydata, at any time."
                ),
                t("Do you agree?"),
            ]
        )
        options = [Option("yes", t("I agree")), Option("no", t("I do not agree"))]
        if state.code:  # the language question was skipped: the other language, one press away
            options.append(Option("en", "English") if t.locale == "vi" else Option("vi", "Tiếng Việt"))
        return ask(state, text, options)

    async def _on_consent(self, ctx: Context, state: OnboardingState, msg: Incoming) -> Step:
        """Agree: record consent, then member or officer (or redeem the deep link's code)."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick in ("vi", "en"):  # the language switch offered with a deep link's code
            ctx.set_locale(translator(pick))
            return Step([self._ask_consent(ctx, state)], state)
        if pick is None:
            yn = parse_yes_no(msg.text) if msg.kind is Kind.TEXT else None
            pick = None if yn is None else ("yes" if yn else "no")
        if pick is None:
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        if pick == "no":
            if await decline_consent(ctx.uow, ctx.contact, ctx.now) is None:  # agreed before
                return Step(
                    [
                        Reply(
                            t(
                                "You agreed earlier, so your registration stays as it is. To withdraw your consent and delete your data, send /deletemydata."
                            )
                        )
                    ]
                )
            return Step(
                [
                    Reply(
                        t(
                            "Understood: nothing about you is kept and we will not message you. Send /start if you change your mind."
                        )
                    )
                ]
            )
        await record_consent(ctx.uow, ctx.contact, ctx.now)
        if state.code:
            code, state.code = state.code, None
            return await self._redeem(ctx, state, code)
        return Step([self._ask_who(ctx, state)], state)

    def _ask_who(self, ctx: Context, state: OnboardingState) -> Reply:
        t = ctx.t
        state.phase = "who"
        return ask(
            state,
            t("Are you a member of the public, or an officer with an invite code?"),
            [Option("member", t("Member / resident")), Option("officer", t("I have an invite code"))],
        )

    async def _on_who(self, ctx: Context, state: OnboardingState, msg: Incoming) -> Step:
        """Member (then the province) or officer (then the invite code); a typed code is redeemed."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "member":
            return Step([self._ask_province(ctx, state)], state)
        if pick == "officer":
            state.phase = "code"
            state.tries = 0
            return Step([ask(state, t("Type your invite code (for example: ABCD-EFGH)."))], state)
        if msg.kind is Kind.TEXT and len(msg.text.strip()) in (8, 9):  # typed a code straight away
            return await self._redeem(ctx, state, msg.text)
        return Step(
            [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
        )

    async def _on_code(self, ctx: Context, state: OnboardingState, msg: Incoming) -> Step:
        """The invite code typed, or a switch to registering as a member."""
        t = ctx.t
        if msg.kind is not Kind.TEXT or not msg.text.strip():
            return Step([Reply(t("Please type the code as text."))] + await self.reprompt(ctx, state), state)
        if chosen(state, msg) == "member":
            return Step([self._ask_province(ctx, state)], state)
        return await self._redeem(ctx, state, msg.text)

    def _ask_province(self, ctx: Context, state: OnboardingState) -> Reply:
        state.phase = "province"
        return ask(state, ctx.t("Type the name of your province or city (for example: Cao Bằng)."))

    async def _redeem(self, ctx: Context, state: OnboardingState, code: str) -> Step:
        t = ctx.t
        result = await accept_invite(
            ctx.uow,
            ctx.contact,
            code,
            ctx.now,
            address=ctx.client_address,
            limits=InviteLimits.of(ctx.settings),
        )
        outcome, invite = result.outcome, result.invite
        if outcome is RedeemOutcome.OK and invite is not None:
            unit = await ctx.uow.units.get(invite.unit_id)
            where = await describe_unit(ctx, unit) if unit else ""
            await ctx.refresh_grants()
            done = t(
                "Welcome! You are registered as {role} of {unit}.",
                role=role_label(t, invite.role),
                unit=where,
            )
            return Step([Reply(done)], None, ("menu", {}))
        if outcome is RedeemOutcome.TOO_MANY:
            wait = (result.retry_at or ctx.now) - ctx.now
            minutes = max(1, -(-int(wait.total_seconds()) // 60))
            return Step(
                [
                    Reply(
                        t(
                            "Too many wrong codes have been tried. Please wait {minutes} minutes, then send /start and type the code again.",
                            minutes=t.number(minutes),
                        )
                    )
                ]
            )
        state.phase = "code"
        state.tries += 1
        problem = {
            RedeemOutcome.UNKNOWN: t("This code is not valid. Check the letters and try again."),
            # A revoked code gets the same answer: whoever holds it learns nothing more.
            RedeemOutcome.REVOKED: t("This code is not valid. Check the letters and try again."),
            RedeemOutcome.EXPIRED: t("This code has expired. Ask your commune officer for a new one."),
            RedeemOutcome.USED_UP: t(
                "This code has already been used. Ask your commune officer for a new one."
            ),
        }[outcome]
        if state.tries >= MAX_CODE_TRIES:
            return Step([Reply(problem + "\n" + t("Too many attempts. Send /start to begin again."))])
        prompt = ask(
            state,
            t("Type the code again, or register as a member instead."),
            [Option("member", t("Register as a member"))],
        )
        return Step([Reply(problem), prompt], state)

    async def _pick(
        self, ctx: Context, state: OnboardingState, msg: Incoming, picker: UnitPicker
    ) -> tuple[Unit | None, list[Reply]]:
        """The unit the user means, or what to say when there is not exactly one."""
        t = ctx.t
        picked = await picker.pick(ctx, state, msg)
        if picked.unit is not None:
            return picked.unit, []
        if picked.matches:
            return None, [ask(state, t("Which one do you mean?"), unit_options(picked.matches))]
        if picked.query:
            return None, [Reply(nothing_found(t, picked.query))]
        return None, [Reply(t("Please type a name."))]

    async def _on_province(self, ctx: Context, state: OnboardingState, msg: Incoming) -> Step:
        """A province typed (or picked among several that match), then the commune."""
        unit, replies = await self._pick(ctx, state, msg, UnitPicker((PROVINCE,)))
        if unit is None:
            return Step(replies, state)
        state.province_id = unit.id
        state.phase = "commune"
        return Step(
            [ask(state, ctx.t("{province}. Now type the name of your commune or ward.", province=unit.name))],
            state,
        )

    async def _on_commune(self, ctx: Context, state: OnboardingState, msg: Incoming) -> Step:
        """A commune of the province, then its villages (or done, if it has none)."""
        unit, replies = await self._pick(ctx, state, msg, UnitPicker((COMMUNE,), state.province_id))
        if unit is None:
            return Step(replies, state)
        state.commune_id = unit.id
        villages = await ctx.uow.units.children(unit.id, VILLAGE_KINDS, on=ctx.today)
        if not villages:
            return await self._finish_member(ctx, state, unit)
        state.phase = "village"
        options = unit_options(villages, VILLAGES_LISTED)
        options.append(Option("none", ctx.t("Not listed / skip")))
        text = ctx.t("{commune}. Which village or residential group do you live in?", commune=unit.name)
        if len(villages) > VILLAGES_LISTED:
            text += "\n" + ctx.t("Or type part of its name.")
        return Step([ask(state, text, options)], state)

    async def _on_village(self, ctx: Context, state: OnboardingState, msg: Incoming) -> Step:
        """A village of the commune, or none: registered as a member there."""
        commune = await ctx.uow.units.get(int(state.commune_id or 0))
        if commune is None:  # no commune in the state (an older one): start the place again
            return Step([self._ask_province(ctx, state)], state)
        if chosen(state, msg) == "none" or word_of(msg) in ("bo qua", "skip"):
            return await self._finish_member(ctx, state, commune)
        unit, replies = await self._pick(ctx, state, msg, UnitPicker(VILLAGE_KINDS, commune.id))
        if unit is None:
            return Step(replies, state)
        return await self._finish_member(ctx, state, unit)

    async def _finish_member(self, ctx: Context, state: OnboardingState, unit: Unit) -> Step:
        t = ctx.t
        try:
            await register_member(ctx.uow, ctx.contact, unit, ctx.now)
        except NotAPlaceToJoin:  # a place from an older state, since dissolved: choose again
            return Step([self._ask_province(ctx, state)], state)
        await ctx.refresh_grants()
        where = await describe_unit(ctx, unit)
        done = t("Thank you! You are registered as a member in {unit}.", unit=where)
        # Topics are offered as commands, not as a question: nothing is left waiting for an answer.
        return Step([Reply(done), topics_invitation(ctx)])

    phases = phase_table(
        {
            "language": _on_language,
            "consent": _on_consent,
            "who": _on_who,
            "code": _on_code,
            "province": _on_province,
            "commune": _on_commune,
            "village": _on_village,
        }
    )
