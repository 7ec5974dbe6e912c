"""Invite codes: how a person gets a role on a unit ("ABCD-EFGH", read aloud or typed in chat).

Guessing is bounded (issue 11): wrong codes are counted per person, per web chat client address
and overall over a sliding window (`InviteLimits`); once a count reaches its limit, tries from
there are refused, without looking at the code, until the window moves past the oldest wrong one.
Every wrong code is audited and recorded against the area it concerns, for the weekly digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.invite_codes import ALPHABET, CODE_LENGTH, format_code, is_well_formed, normalise_code
from bot.domain.permissions import Action, NotAllowed, may_invite
from bot.domain.settings import Settings
from bot.services.actor import Actor
from storage.models import ROLES, Invite, Unit
from storage.uow import UnitOfWork

__all__ = ["ALPHABET", "CODE_LENGTH", "format_code", "is_well_formed", "normalise_code"]

_CREATE_ATTEMPTS = 10


class RedeemOutcome(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"  # the staff withdrew it: answered like UNKNOWN, recorded as what it is
    TOO_MANY = "too_many"  # refused unchecked: too many wrong codes lately (RedeemResult.retry_at)


@dataclass(frozen=True, slots=True)
class InviteLimits:
    """Wrong codes allowed within `window`: per contact, per client address, and overall."""

    per_contact: int = 5
    per_address: int = 20
    overall: int = 300
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def of(cls, settings: Settings) -> InviteLimits:
        return cls(
            per_contact=settings.invite_tries_per_contact,
            per_address=settings.invite_tries_per_address,
            overall=settings.invite_tries_overall,
            window=timedelta(minutes=settings.invite_cooldown_minutes),
        )


ADDRESS_KEY = "client_address"  # server_secrets: the key of the stored client-address tags


async def address_tag(uow: UnitOfWork, address: str | None, now: datetime) -> str | None:
    """What is stored of a client address: a keyed hash (HMAC under a server secret), enough to
    count its tries. Unkeyed, the 2^32 IPv4 addresses could be hashed and the tags reversed."""
    if not address:
        return None
    key = await uow.secrets.get_or_create(ADDRESS_KEY, lambda: secrets.token_urlsafe(32), now)
    return hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


async def create_invite(
    uow: UnitOfWork,
    actor: Actor,
    unit: Unit,
    role: str,
    now: datetime,
    expiry_days: int,
    max_uses: int = 1,
    *,
    invitee_name: str | None = None,
) -> Invite:
    """A new invite granting `role` on `unit`; the code is random and unique.

    `invitee_name` is the name of the person it is meant for (a name only), printed on the slip.
    NotAllowed when the actor may not invite on `unit`, or may not hand out `role` (an officer
    invites only to roles below their own); ValueError for a bad role or limit.
    """
    require_invite(actor, unit, role)
    if expiry_days < 1:
        raise ValueError("an invite must be valid for at least one day")
    if max_uses < 1:
        raise ValueError("an invite must allow at least one use")
    for _ in range(_CREATE_ATTEMPTS):
        code = new_code()
        if await uow.invites.by_code(code) is None:
            break
    else:  # 31**8 codes: only a broken random source gets here
        raise RuntimeError("could not find a free invite code")
    invite = await uow.invites.add(
        Invite(
            code=code,
            unit_id=unit.id,
            role=role,
            max_uses=max_uses,
            uses=0,
            expires_at=now + timedelta(days=expiry_days),
            created_by_contact_id=actor.contact_id,
            created_at=now,
            invitee_name=invitee_name,
        )
    )
    actor.audit(
        uow,
        now,
        "invite.create",
        unit.id,
        invite_id=invite.id,
        role=role,
        max_uses=max_uses,
        expires_at=invite.expires_at.isoformat(),
    )
    return invite


def require_invite(actor: Actor, unit: Unit, role: str) -> None:
    actor.require(Action.CREATE_INVITE, unit)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if not actor.is_console and not may_invite(actor.grants, unit, role):
        raise NotAllowed(Action.CREATE_INVITE, unit, f"may not invite a {role}")


class InviteNotFound(LookupError):
    """No invite with that id."""


async def revoke_invite(uow: UnitOfWork, actor: Actor, invite_id: int, now: datetime) -> Invite:
    """Withdraw a code: from now on /start refuses it with the answer for an unknown code.

    Whoever may create the code may revoke it (the same check as create_invite). Revoking a code
    already revoked changes nothing and writes no second audit row. A code already used stays
    used: the role it gave is not taken back (that is a role's revocation, not a code's).
    InviteNotFound for an unknown id; NotAllowed outside the actor's area.
    """
    invite = await uow.invites.get(invite_id)
    if invite is None:
        raise InviteNotFound(invite_id)
    unit = await uow.units.get(invite.unit_id)
    if unit is None:  # pragma: no cover - a foreign key
        raise InviteNotFound(invite_id)
    require_invite(actor, unit, invite.role)
    if invite.revoked_at is not None:
        return invite
    invite.revoked_at = now
    actor.audit(uow, now, "invite.revoke", unit.id, invite_id=invite.id, role=invite.role, uses=invite.uses)
    await uow.invites.flush()
    return invite


async def cooldown_until(
    uow: UnitOfWork, contact_id: int, address: str | None, now: datetime, limits: InviteLimits
) -> datetime | None:
    """When the next try will be allowed, if a limit is reached now; None when one is allowed."""
    counts = await uow.invite_tries.counts(
        now - limits.window, contact_id, await address_tag(uow, address, now)
    )
    waits = [
        oldest + limits.window
        for count, limit, oldest in (
            (counts.contact, limits.per_contact, counts.contact_oldest),
            (counts.address, limits.per_address, counts.address_oldest),
            (counts.overall, limits.overall, counts.overall_oldest),
        )
        if count >= limit and oldest is not None
    ]
    return max(waits) if waits else None


@dataclass(frozen=True, slots=True)
class RedeemResult:
    outcome: RedeemOutcome
    invite: Invite | None = None
    retry_at: datetime | None = None  # TOO_MANY: when a try will be allowed again


async def redeem_invite(
    uow: UnitOfWork,
    code_text: str,
    contact_id: int,
    now: datetime,
    *,
    address: str | None = None,
    limits: InviteLimits | None = None,
    home_unit_id: int | None = None,
) -> RedeemResult:
    """Use a code: on OK the contact holds the invite's role on its unit (not yet committed).

    With `limits`, a try past a limit is refused (TOO_MANY) before the code is looked at, and a
    wrong code is recorded and audited (against the invite's unit when the code exists, else
    `home_unit_id`); `address` is the client's network address where the channel has one.
    """
    if limits is not None:
        retry_at = await cooldown_until(uow, contact_id, address, now, limits)
        if retry_at is not None:
            return RedeemResult(RedeemOutcome.TOO_MANY, None, retry_at)
    result = await _redeem(uow, code_text, contact_id, now)
    if result.outcome is not RedeemOutcome.OK and limits is not None:
        unit_id = result.invite.unit_id if result.invite is not None else home_unit_id
        tag = await address_tag(uow, address, now)
        uow.invite_tries.record(now, contact_id, tag, unit_id, result.outcome.value)
        detail = {"outcome": result.outcome.value, "address": tag}
        if result.invite is not None:
            detail["invite_id"] = str(result.invite.id)
        uow.audit.add(now, "invite.fail", contact_id=contact_id, unit_id=unit_id, **detail)
    return result


async def _redeem(uow: UnitOfWork, code_text: str, contact_id: int, now: datetime) -> RedeemResult:
    code = normalise_code(code_text)
    if not is_well_formed(code):
        return RedeemResult(RedeemOutcome.UNKNOWN)
    invite = await uow.invites.by_code(code)
    if invite is None:
        return RedeemResult(RedeemOutcome.UNKNOWN)
    if invite.revoked_at is not None:
        return RedeemResult(RedeemOutcome.REVOKED, invite)
    if invite.expires_at <= now:
        return RedeemResult(RedeemOutcome.EXPIRED, invite)
    if invite.uses >= invite.max_uses:
        return RedeemResult(RedeemOutcome.USED_UP, invite)
    # The conditional UPDATE is what makes a single-use code single-use when two people race.
    if not await uow.invites.use(invite):
        return RedeemResult(RedeemOutcome.USED_UP, invite)
    grant = await uow.contacts.grant(contact_id, invite.role, invite.unit_id, now, invite.id)
    uow.audit.add(
        now,
        "invite.redeem",
        contact_id=contact_id,
        unit_id=invite.unit_id,
        invite_id=invite.id,
        role=invite.role,
        grant_id=grant.id,
    )
    return RedeemResult(RedeemOutcome.OK, invite)
