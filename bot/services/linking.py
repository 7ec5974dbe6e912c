"""One person, several chats, one contact (/lienket), and a chat taken out again (/huylienket).

On the chat where the person is registered (A), `issue_link_code` makes a one-time code valid for
a few minutes. Typed in another chat (B), the code first only shows whose account B would join
(`preview_link`: the account's name, roles, areas and chats); nothing moves until B confirms
(`link_chat`). Then B's chat — only that one — becomes a chat of A's contact and from then on
sees A's role, area and any unfinished dialogue, because those belong to the contact.

What the code's holder can gain is bounded (issue 11, "role theft"): nothing ever moves from the
redeemer to the issuer (no role, no area), so persuading an officer to type one's code yields
nothing; and a chat that holds an officer role cannot be joined to another account at all (the
officer issues the code from their officer account and types it in the new chat instead). What
the redeeming chat had on its own is not carried over; if no other chat uses that old contact,
its personal data is deleted as `/xoadulieu` would (bot.services.personal_data).

Codes are as long as invite codes (31^8 possibilities) and single-use, so they cannot be guessed
within their lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.permissions import Action
from bot.services.actor import Actor
from bot.services.invites import is_well_formed, new_code, normalise_code
from bot.services.personal_data import forget_contact
from storage.models import OFFICER_ROLES, ChannelIdentity, Contact, Unit
from storage.models_channels import LinkCode
from storage.uow import UnitOfWork

_CREATE_ATTEMPTS = 10


class NotRegistered(Exception):
    """A code is shown only on a channel where the person is registered (has agreed)."""


class LinkProblem(StrEnum):
    INVALID = "invalid"  # malformed or unknown
    OWN = "own"  # the code belongs to the contact using it
    USED = "used"
    EXPIRED = "expired"
    OFFICER = "officer"  # the redeeming chat holds an officer role: it cannot join another account
    ONLY_CHAT = "only_chat"  # /huylienket in the account's only chat: nothing to detach it from


class LinkRefused(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(f"link refused: {problem}")
        self.problem = problem


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkPreview:
    """What the redeemer is shown before confirming: the account the code would join them to,
    and what their chat holds now that would not be carried over."""

    code: str  # normalised
    account: Contact
    roles: list[tuple[str, Unit]]
    channels: list[str]  # the account's chats, by channel
    left_behind: list[tuple[str, Unit]]  # the redeeming contact's own roles


def _contact(actor: Actor) -> Contact:
    if actor.contact is None:
        raise ValueError("linking joins the chats of a person, not the console")
    return actor.contact


async def issue_link_code(
    uow: UnitOfWork, actor: Actor, channel: str, now: datetime, expiry_minutes: int
) -> IssuedCode:
    """On chat A: a fresh code for the actor. NotRegistered before they agreed."""
    actor.require_any(Action.LINK)
    contact = _contact(actor)
    if contact.consent_at is None:
        raise NotRegistered()
    for _ in range(_CREATE_ATTEMPTS):
        code = new_code()
        if not await uow.channels.code_exists(code):
            break
    else:  # 31**8 codes: only a broken random source gets here
        raise RuntimeError("could not find a free link code")
    expires_at = now + timedelta(minutes=expiry_minutes)
    await uow.channels.add_code(
        LinkCode(code=code, contact_id=contact.id, channel=channel, created_at=now, expires_at=expires_at)
    )
    actor.audit(uow, now, "link.code_issued", channel=channel)
    return IssuedCode(code, expires_at)


async def _usable_code(uow: UnitOfWork, actor: Actor, typed: str, now: datetime) -> tuple[LinkCode, Contact]:
    """The code's row (locked) and its account, or LinkRefused saying why not."""
    actor.require_any(Action.LINK)
    redeemer = _contact(actor)
    code = normalise_code(typed)
    link = await uow.channels.code_for_update(code) if is_well_formed(code) else None
    if link is None:
        raise LinkRefused(LinkProblem.INVALID)
    if link.contact_id == redeemer.id:
        raise LinkRefused(LinkProblem.OWN)
    if any(g.role in OFFICER_ROLES for g in actor.grants):
        raise LinkRefused(LinkProblem.OFFICER)
    if link.used_at is not None:
        raise LinkRefused(LinkProblem.USED)
    if link.expires_at <= now:
        raise LinkRefused(LinkProblem.EXPIRED)
    account = await uow.contacts.get(link.contact_id)
    if account is None or account.consent_at is None:  # the account was deleted meanwhile
        raise LinkRefused(LinkProblem.INVALID)
    return link, account


async def preview_link(uow: UnitOfWork, actor: Actor, typed: str, now: datetime) -> LinkPreview:
    """On chat B: whose account the code would join this chat to. Nothing is written."""
    link, account = await _usable_code(uow, actor, typed, now)
    return LinkPreview(
        code=link.code,
        account=account,
        roles=await uow.contacts.roles_with_units(account.id),
        channels=sorted({i.channel for i in await uow.contacts.identities(account.id)}),
        left_behind=[(g.role, g.unit) for g in actor.grants],
    )


async def link_chat(
    uow: UnitOfWork,
    actor: Actor,
    code: str,
    chat: tuple[str, str],
    now: datetime,
    *,
    account_id: int,
) -> Contact:
    """On chat B, after the person confirmed joining `account_id`: the chat (channel, external
    id) becomes a chat of the code's account, which is returned. Everything is checked again
    (the code may have been used or expired meanwhile, or the chat given an officer role); a
    code that now names another account is refused as invalid."""
    link, account = await _usable_code(uow, actor, code, now)
    old = _contact(actor)
    if account.id != account_id:
        raise LinkRefused(LinkProblem.INVALID)
    identity = await _identity(uow, old, chat)
    if not await uow.channels.use_code(link, identity.id, now):
        raise LinkRefused(LinkProblem.USED)
    await uow.channels.move_identity(identity, account.id)
    uow.audit.add(
        now,
        "contact.link",
        account.id,
        channel=chat[0],
        code_channel=link.channel,
        from_contact_id=old.id,
        identity_id=identity.id,
    )
    if not await uow.contacts.identities(old.id):  # nothing uses the old contact any more
        await forget_contact(uow, old, now)
    return account


async def unlink_chat(uow: UnitOfWork, actor: Actor, chat: tuple[str, str], now: datetime) -> Contact:
    """/huylienket: this chat leaves the actor's account and starts afresh as a new, unregistered
    contact (returned); the account keeps its other chats, roles and reports. Messages queued
    for the account on this chat are cancelled. LinkRefused(ONLY_CHAT) for the account's only chat."""
    actor.require_any(Action.LINK)
    account = _contact(actor)
    identity = await _identity(uow, account, chat)
    if len(await uow.contacts.identities(account.id)) <= 1:
        raise LinkRefused(LinkProblem.ONLY_CHAT)
    fresh = await uow.channels.detach_identity(identity, now, account.locale)
    cancelled = await uow.outbox.cancel_queued(now, "chat unlinked", contact_id=account.id, chat=chat)
    actor.audit(
        uow,
        now,
        "contact.unlink",
        channel=chat[0],
        identity_id=identity.id,
        to_contact_id=fresh.id,
        cancelled=cancelled,
    )
    return fresh


async def _identity(uow: UnitOfWork, contact: Contact, chat: tuple[str, str]) -> ChannelIdentity:
    identity = await uow.channels.identity(*chat)
    if identity is None or identity.contact_id != contact.id:
        raise ValueError(f"the {chat[0]} chat is not one of contact {contact.id}'s")
    return identity
