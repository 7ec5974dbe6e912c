"""One person, several channels, one contact (/lienket): link codes and linking.

On the channel where the person is registered (A), `issue_link_code` makes a one-time code valid
for a few minutes. `link_accounts` on another channel (B) moves B's identities to A's contact:
from then on B sees A's role, area and any unfinished dialogue, because all of those belong to
the contact, not to the channel. Roles B's old contact held are granted to A's as well, so
linking never takes anything away. Codes are as long as invite codes (31^8 possibilities) and
single-use, so they cannot be guessed within their lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.permissions import Action
from bot.services.actor import Actor
from bot.services.invites import is_well_formed, new_code, normalise_code
from storage.models import Contact
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


class LinkRefused(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(f"link code refused: {problem}")
        self.problem = problem


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    expires_at: datetime


def _contact(actor: Actor) -> Contact:
    if actor.contact is None:
        raise ValueError("linking joins the chats of a person, not the console")
    return actor.contact


async def issue_link_code(
    uow: UnitOfWork, actor: Actor, channel: str, now: datetime, expiry_minutes: int
) -> IssuedCode:
    """On channel A: a fresh code for the actor. NotRegistered before they agreed."""
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


async def link_accounts(uow: UnitOfWork, actor: Actor, typed: str, channel: str, now: datetime) -> Contact:
    """On channel B: attach the actor's chats (and roles) to the code's contact, which is returned.

    LinkRefused says why a code cannot be used. The audit row names the contact the chats now
    belong to, and the contact they came from.
    """
    actor.require_any(Action.LINK)
    old = _contact(actor)
    code = normalise_code(typed)
    link = await uow.channels.code_for_update(code) if is_well_formed(code) else None
    if link is None:
        raise LinkRefused(LinkProblem.INVALID)
    if link.contact_id == old.id:
        raise LinkRefused(LinkProblem.OWN)
    if link.used_at is not None:
        raise LinkRefused(LinkProblem.USED)
    if link.expires_at <= now:
        raise LinkRefused(LinkProblem.EXPIRED)
    target = await uow.contacts.get(link.contact_id)
    identities = await uow.contacts.identities(old.id)
    here = next((i for i in identities if i.channel == channel), identities[0] if identities else None)
    if target is None or here is None or not await uow.channels.use_code(link, here.id, now):
        raise LinkRefused(LinkProblem.USED)
    for identity in identities:
        await uow.channels.move_identity(identity, target.id)
    for grant in await uow.channels.active_grants(old.id):
        await uow.contacts.grant(target.id, grant.role, grant.unit_id, now, grant.invite_id)
    if target.home_unit_id is None:
        target.home_unit_id = old.home_unit_id
    uow.audit.add(
        now,
        "contact.link",
        target.id,
        channel=channel,
        code_channel=link.channel,
        from_contact_id=old.id,
        identity_ids=[i.id for i in identities],
    )
    return target
