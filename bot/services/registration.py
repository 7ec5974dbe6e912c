"""Registration (/start): consent, members choosing their place, officers redeeming an invite.

Each is done by the person for themselves, so there is no permission to check beyond what each
step requires: consent before anything is stored about them, a real place to be a member of, a
valid code. Each write is audited like every other.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.clock import VN_TZ
from bot.services.invites import RedeemOutcome, redeem_invite
from storage.models import COMMUNE, MEMBER, VILLAGE_KINDS, Contact, Invite, Unit
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
    uow: UnitOfWork, contact: Contact, code: str, now: datetime
) -> tuple[RedeemOutcome, Invite | None]:
    """Redeem an invite code: on OK the person holds its role on its unit, which becomes their
    home unit (the redeeming itself is audited by `redeem_invite`)."""
    outcome, invite = await redeem_invite(uow, code, contact.id, now)
    if outcome is RedeemOutcome.OK and invite is not None:
        contact.home_unit_id = invite.unit_id
    return outcome, invite
