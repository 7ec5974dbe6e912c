"""/lienket (/link): one person, several channels, one contact.

On the channel where the person is registered (A), `/lienket` shows a one-time code valid for a
few minutes. Typing `/lienket CODE` on another channel (B) moves B's identities to A's contact
(bot/services/linking.py); the dialogue then greets B in A's language and picks up A's open
dialogue, if any.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from bot.conversations.engine import Context, Flow, FlowState, Handler, StateLost, Step
from bot.domain.i18n import Translator, translator
from bot.domain.messages import Reply
from bot.domain.permissions import load_grants
from bot.services.actor import Actor
from bot.services.invites import format_code
from bot.services.linking import LinkProblem, LinkRefused, NotRegistered, issue_link_code, link_accounts


def _refusal(t: Translator, problem: LinkProblem) -> str:
    if problem is LinkProblem.OWN:
        return t("This code belongs to the account you are using here. Send it from your other app.")
    if problem is LinkProblem.USED:
        return t("This link code has already been used. Send /lienket in your other app to get a new one.")
    if problem is LinkProblem.EXPIRED:
        return t("This link code has expired. Send /lienket in your other app to get a new one.")
    return t("This link code is not valid. Send /lienket in your other app to get one.")


class Linking(Flow[FlowState]):
    """Linking answers within one message: it has no phases and never stores a state."""

    name = "linking"
    state_type = FlowState
    phases: ClassVar[Mapping[str, Handler]] = {}

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        code = str(args.get("code") or "").strip()
        if code:
            return await self._use(ctx, code)
        return await self._issue(ctx)

    async def recover(self, ctx: Context, raw: Mapping[str, Any] | None) -> Step:
        """A stored 'linking' state (there should be none) just ends."""
        return Step([ctx.menu(ctx)])

    async def _issue(self, ctx: Context) -> Step:
        """On channel A: a fresh code for this contact."""
        t = ctx.t
        minutes = ctx.settings.link_code_expiry_minutes
        try:
            issued = await issue_link_code(
                ctx.uow, Actor.of(ctx.contact, ctx.grants), ctx.channel, ctx.now, minutes
            )
        except NotRegistered:
            return Step(
                [
                    Reply(
                        t(
                            "To link this chat to your account, first send /lienket in the app where you are registered. It gives you a code; then send /lienket followed by that code here."
                        )
                    )
                ]
            )
        shown = format_code(issued.code)
        text = "\n".join(
            [
                t("Your link code: {code}", code=shown),
                t(
                    "Within {minutes} minutes, open the bot in your other app (Zalo or Telegram) and send:",
                    minutes=minutes,
                ),
                f"/lienket {shown}",
                t(
                    "That app will then use this same account: your role, your area and any unfinished report."
                ),
            ]
        )
        return Step([Reply(text)])

    async def _use(self, ctx: Context, typed: str) -> Step:
        """On channel B: attach this chat (and whatever else this contact had) to the code's contact."""
        t = ctx.t
        try:
            target = await link_accounts(
                ctx.uow, Actor.of(ctx.contact, ctx.grants), typed, ctx.channel, ctx.now
            )
        except LinkRefused as refused:
            return Step([Reply(_refusal(t, refused.problem))])
        return Step(await self._welcome(ctx, target.id))

    async def _welcome(self, ctx: Context, contact_id: int) -> list[Reply]:
        """Confirm in the linked account's language, and pick up its open dialogue if any."""
        target = await ctx.uow.contacts.get(contact_id)
        assert target is not None
        linked = Context(
            uow=ctx.uow,
            settings=ctx.settings,
            forms=ctx.forms,
            contact=target,
            grants=await load_grants(ctx.uow, target.id),
            t=translator(target.locale),
            now=ctx.now,
            channel=ctx.channel,
            flows=ctx.flows,
            menu=ctx.menu,
        )
        t = linked.t
        done = Reply(t("✅ Linked. This chat now uses the same account as your other app."))
        row = await ctx.uow.dialogues.get(target.id)
        expiry = timedelta(hours=ctx.settings.dialogue_expiry_hours)
        flow = ctx.flows.get(row.flow) if row is not None and row.flow else None
        if row is not None and flow is not None and row.updated_at + expiry >= ctx.now:
            try:
                prompt = await flow.reprompt(linked, flow.load(row.state))
            except StateLost:  # written by another version: its next message will recover it
                prompt = []
            if prompt:
                return [done, Reply(t("You can carry on here where you left off:")), *prompt]
        return [done, linked.menu(linked, t("What would you like to do next?"))]
