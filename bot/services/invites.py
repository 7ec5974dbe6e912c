"""Invite codes: how a person gets a role on a unit ("ABCD-EFGH", read aloud or typed in chat)."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.permissions import Action, NotAllowed, may_invite
from bot.services.actor import Actor
from storage.models import ROLES, Invite, Unit
from storage.uow import UnitOfWork

# No 0/O, 1/I/L: codes are read over the phone and copied from paper.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
_CREATE_ATTEMPTS = 10
# Spaces, dashes of every kind, dots and underscores people put between the two halves.
_SEPARATORS = re.compile(r"[\s\-_.\u2010-\u2015\u2212]+")
_VALID = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")


class RedeemOutcome(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED_UP = "used_up"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What the person typed → the stored form: " abcd-efgh " → "ABCDEFGH"."""
    text = unicodedata.normalize("NFKC", text)  # full-width letters from some phone keyboards
    return _SEPARATORS.sub("", text).upper()


def format_code(code: str) -> str:
    """The stored form → the form to show: "ABCDEFGH" → "ABCD-EFGH"."""
    code = normalise_code(code)
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}" if len(code) == CODE_LENGTH else code


def is_well_formed(code: str) -> bool:
    return _VALID.fullmatch(normalise_code(code)) is not None


async def create_invite(
    uow: UnitOfWork,
    actor: Actor,
    unit: Unit,
    role: str,
    now: datetime,
    expiry_days: int,
    max_uses: int = 1,
) -> Invite:
    """A new invite granting `role` on `unit`; the code is random and unique.

    NotAllowed when the actor may not invite on `unit`, or may not hand out `role` (an officer
    invites only to roles below their own); ValueError for a bad role or limit.
    """
    actor.require(Action.CREATE_INVITE, unit)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if not actor.is_console and not may_invite(actor.grants, unit, role):
        raise NotAllowed(Action.CREATE_INVITE, unit, f"may not invite a {role}")
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


async def redeem_invite(
    uow: UnitOfWork, code_text: str, contact_id: int, now: datetime
) -> tuple[RedeemOutcome, Invite | None]:
    """Use a code: on OK the contact holds the invite's role on its unit (not yet committed)."""
    code = normalise_code(code_text)
    if _VALID.fullmatch(code) is None:
        return RedeemOutcome.UNKNOWN, None
    invite = await uow.invites.by_code(code)
    if invite is None:
        return RedeemOutcome.UNKNOWN, None
    if invite.expires_at <= now:
        return RedeemOutcome.EXPIRED, invite
    if invite.uses >= invite.max_uses:
        return RedeemOutcome.USED_UP, invite
    # The conditional UPDATE is what makes a single-use code single-use when two people race.
    if not await uow.invites.use(invite):
        return RedeemOutcome.USED_UP, invite
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
    return RedeemOutcome.OK, invite
