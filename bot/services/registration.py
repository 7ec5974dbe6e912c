"""Registration (/start): consent, members choosing their place, officers redeeming an invite.

Each is done by the person for themselves, so there is no permission to check beyond what each
step requires: consent before anything is stored about them, a real place to be a member of, a
valid code. Each write is audited like every other.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.clock import VN_TZ
from bot.services.invites import InviteLimits, RedeemOutcome, RedeemResult, redeem_invite
from storage.models import COMMUNE, MEMBER, VILLAGE_KINDS, Contact, Unit
from storage.uow import UnitOfWork

MEMBER_UNIT_KINDS = (COMMUNE, *VILLAGE_KINDS)


class NotAPlaceToJoin(ValueError):
    """Members register in a commune or a village, not in a province or a dissolved unit."""


async def record_consent(uow: UnitOfWork, contact: Contact, now: datetime) -> None:
    """The person agreed to what the bot stores about them."""
    contact.consent_at = now
    uow.audit.add(now, "contact.consent", contact.id)


async def register_member(uow: UnitOfWork, contact: Contact, unit: Unit, now: datetime) -> None:
    """The person becomes a member in `unit` (their commune, or a village of it)."""
    if unit.kind not in MEMBER_UNIT_KINDS or (
        unit.valid_to is not None and unit.valid_to < now.astimezone(VN_TZ).date()
    ):
        raise NotAPlaceToJoin(unit.name)
    contact.home_unit_id = unit.id
    await uow.contacts.grant(contact.id, MEMBER, unit.id, now)
    uow.audit.add(now, "contact.register_member", contact.id, unit.id)


async def accept_invite(
    uow: UnitOfWork,
    contact: Contact,
    code: str,
    now: datetime,
    *,
    address: str | None = None,
    limits: InviteLimits | None = None,
) -> RedeemResult:
    """Redeem an invite code: on OK the person holds its role on its unit, which becomes their
    home unit (the redeeming, and with `limits` every wrong code, is audited by `redeem_invite`)."""
    result = await redeem_invite(
        uow, code, contact.id, now, address=address, limits=limits, home_unit_id=contact.home_unit_id
    )
    if result.outcome is RedeemOutcome.OK and result.invite is not None:
        contact.home_unit_id = result.invite.unit_id
    return result
