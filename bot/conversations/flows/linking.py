"""/lienket (/link): one person, several channels, one contact.

On the channel where the person is registered (A), `/lienket` shows a one-time code valid for a
few minutes. Typing `/lienket CODE` on another channel (B) moves B's identities to A's contact:
from then on B sees A's role, area and any unfinished dialogue, because all of those belong to
the contact, not to the channel. Roles B's old contact held are granted to A's as well, so
linking never takes anything away. Codes are as long as invite codes (31^8 possibilities) and
single-use, so they cannot be guessed within their lifetime.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from bot.conversations.engine import Context, Flow, FlowState, Handler, StateLost, Step
from bot.domain.i18n import translator
from bot.domain.messages import Reply
from bot.domain.permissions import load_grants
from bot.services.invites import format_code, is_well_formed, new_code, normalise_code
from storage.models_channels import ChannelRepository, LinkCode

_CREATE_ATTEMPTS = 10


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
        if ctx.contact.consent_at is None:
            return Step(
                [
                    Reply(
                        t(
                            "To link this chat to your account, first send /lienket in the app where you are registered. It gives you a code; then send /lienket followed by that code here."
                        )
                    )
                ]
            )
        repo = ChannelRepository(ctx.uow.session)
        for _ in range(_CREATE_ATTEMPTS):
            code = new_code()
            if not await repo.code_exists(code):
                break
        else:  # 31**8 codes: only a broken random source gets here
            raise RuntimeError("could not find a free link code")
        minutes = ctx.settings.link_code_expiry_minutes
        await repo.add_code(
            LinkCode(
                code=code,
                contact_id=ctx.contact.id,
                channel=ctx.channel,
                created_at=ctx.now,
                expires_at=ctx.now + timedelta(minutes=minutes),
            )
        )
        ctx.uow.audit.add(ctx.now, "link.code_issued", ctx.contact.id, channel=ctx.channel)
        shown = format_code(code)
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
        repo = ChannelRepository(ctx.uow.session)
        code = normalise_code(typed)
        link = await repo.code_for_update(code) if is_well_formed(code) else None
        if link is None:
            return Step(
                [Reply(t("This link code is not valid. Send /lienket in your other app to get one."))]
            )
        if link.contact_id == ctx.contact.id:
            return Step(
                [
                    Reply(
                        t("This code belongs to the account you are using here. Send it from your other app.")
                    )
                ]
            )
        if link.used_at is not None:
            return Step(
                [
                    Reply(
                        t(
                            "This link code has already been used. Send /lienket in your other app to get a new one."
                        )
                    )
                ]
            )
        if link.expires_at <= ctx.now:
            return Step(
                [Reply(t("This link code has expired. Send /lienket in your other app to get a new one."))]
            )
        target = await ctx.uow.contacts.get(link.contact_id)
        identities = await ctx.uow.contacts.identities(ctx.contact.id)
        here = next(
            (i for i in identities if i.channel == ctx.channel), identities[0] if identities else None
        )
        if target is None or here is None or not await repo.use_code(link, here.id, ctx.now):
            return Step(
                [
                    Reply(
                        t(
                            "This link code has already been used. Send /lienket in your other app to get a new one."
                        )
                    )
                ]
            )

        old = ctx.contact
        for identity in identities:
            await repo.move_identity(identity, target.id)
        for grant in await repo.active_grants(old.id):
            await ctx.uow.contacts.grant(target.id, grant.role, grant.unit_id, ctx.now, grant.invite_id)
        if target.home_unit_id is None:
            target.home_unit_id = old.home_unit_id
        ctx.uow.audit.add(
            ctx.now,
            "contact.link",
            target.id,
            channel=ctx.channel,
            code_channel=link.channel,
            from_contact_id=old.id,
            identity_ids=[i.id for i in identities],
        )
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
