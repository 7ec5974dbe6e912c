"""/lienket (/link): one person, several chats, one account; /huylienket (/unlink) takes a chat out.

On the chat where the person is registered (A), `/lienket` shows a one-time code valid for a
few minutes. Typing `/lienket CODE` in another chat (B) first shows whose account B would join —
its name, roles, areas and chats — and links only once B confirms (bot/services/linking.py says
what may and may not move). B is then greeted in A's language and picks up A's open dialogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from bot.conversations.common import channel_name, describe_unit, role_label
from bot.conversations.engine import Context, Flow, FlowState, StateLost, Step, ask, chosen, phase_table
from bot.domain.i18n import Translator, translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import parse_yes_no
from bot.domain.permissions import load_grants
from bot.services.actor import Actor
from bot.services.invites import format_code
from bot.services.linking import (
    LinkPreview,
    LinkProblem,
    LinkRefused,
    NotRegistered,
    issue_link_code,
    link_chat,
    preview_link,
    unlink_chat,
)


def _refusal(t: Translator, problem: LinkProblem) -> str:
    if problem is LinkProblem.OWN:
        return t("This code belongs to the account you are using here. Send it from your other app.")
    if problem is LinkProblem.USED:
        return t("This link code has already been used. Send /link in your other app to get a new one.")
    if problem is LinkProblem.EXPIRED:
        return t("This link code has expired. Send /link in your other app to get a new one.")
    if problem is LinkProblem.OFFICER:
        return t(
            "This chat holds an officer role, so it cannot join another account. To use your officer account in another app, send /link here and type the code it gives you in the other app."
        )
    return t("This link code is not valid. Send /link in your other app to get one.")


class LinkingState(FlowState):
    phase: Literal["confirm"] = "confirm"
    code: str  # normalised, as the preview found it
    account_id: int  # the account the person was shown


class Linking(Flow[LinkingState]):
    """`/lienket` answers at once; `/lienket CODE` asks to confirm the account shown, then links."""

    name = "linking"
    state_type = LinkingState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        code = str(args.get("code") or "").strip()
        if code:
            return await self._preview(ctx, code)
        return await self._issue(ctx)

    async def restart(self, ctx: Context, raw: Mapping[str, Any]) -> Step:
        """A confirmation this version cannot read: ask again from the code it stored, if any."""
        code = raw.get("code")
        step = await self.start(ctx, {"code": code} if isinstance(code, str) else {})
        step.flow = self.name
        return step

    async def _issue(self, ctx: Context) -> Step:
        """On chat A: a fresh code for this contact."""
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
                            "To link this chat to your account, first send /link in the app where you are registered. It gives you a code; then send /link followed by that code here."
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
                t("Never give this code to anyone else: whoever types it joins your account."),
            ]
        )
        return Step([Reply(text)])

    async def _preview(self, ctx: Context, typed: str) -> Step:
        """On chat B: whose account this is; nothing moves before the person confirms."""
        t = ctx.t
        try:
            preview = await preview_link(ctx.uow, Actor.of(ctx.contact, ctx.grants), typed, ctx.now)
        except LinkRefused as refused:
            return Step([Reply(_refusal(t, refused.problem))])
        state = LinkingState(code=preview.code, account_id=preview.account.id)
        text = await self._describe(ctx, preview)
        options = [Option("link", t("Yes, link this chat")), Option("cancel", t("No, do not link"))]
        return Step([ask(state, text, options)], state)

    async def _describe(self, ctx: Context, preview: LinkPreview) -> str:
        t = ctx.t
        lines = [
            t("This code belongs to this account:"),
            "• " + t("Name: {name}", name=preview.account.display_name or t("(no name)")),
        ]
        for role, unit in preview.roles:
            lines.append(f"• {role_label(t, role)}: {await describe_unit(ctx, unit)}")
        if not preview.roles:
            lines.append("• " + t("No role yet"))
        used_on = ", ".join(channel_name(t, c) for c in preview.channels)
        lines.append("• " + t("Used on: {channels}", channels=used_on))
        lines.append("")
        lines.append(
            t(
                "If you link, this chat will use that account: its roles, its areas and any unfinished report. Only link if this is your own account."
            )
        )
        if preview.left_behind:
            mine = "; ".join(
                [
                    f"{role_label(t, role)}: {await describe_unit(ctx, unit)}"
                    for role, unit in preview.left_behind
                ]
            )
            lines.append(t("What this chat holds now is not carried over: {roles}.", roles=mine))
        lines.append(t("Link this chat to this account?"))
        return "\n".join(lines)

    async def _on_confirm(self, ctx: Context, state: LinkingState, msg: Incoming) -> Step:
        """Yes: link this chat to the account shown; no: nothing changes."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick is None and msg.kind is Kind.TEXT:
            yn = parse_yes_no(msg.text)
            pick = None if yn is None else ("link" if yn else "cancel")
        if pick is None:
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        if pick == "cancel":
            return Step([Reply(t("Nothing was linked."))], None, ("menu", {}))
        try:
            account = await link_chat(
                ctx.uow,
                Actor.of(ctx.contact, ctx.grants),
                state.code,
                ctx.chat,
                ctx.now,
                account_id=state.account_id,
            )
        except LinkRefused as refused:
            return Step([Reply(_refusal(t, refused.problem))])
        return Step(await self._welcome(ctx, account.id))

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
            external_id=ctx.external_id,
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

    phases = phase_table({"confirm": _on_confirm})


async def unlink_reply(ctx: Context) -> Reply:
    """/huylienket: this chat leaves the account; the account's other chats go on."""
    t = ctx.t
    try:
        await unlink_chat(ctx.uow, Actor.of(ctx.contact, ctx.grants), ctx.chat, ctx.now)
    except LinkRefused:
        return Reply(
            t(
                "This is the only chat of your account, so there is nothing to unlink it from. To delete your data instead, send /deletemydata."
            )
        )
    return Reply(
        t(
            "This chat is no longer linked to your account; your other apps keep it, with your roles and reports. Send /start here to register again, or /link to link it again."
        )
    )
