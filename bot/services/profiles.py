"""The document profile of a unit (/hoso): who signs its compiled reports, and the symbol of
their number (*Số: …/BC-HKH*). Officers who get the unit's compiled reports set it
(Action.SET_PROFILE); each change is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.domain.permissions import Action
from bot.domain.text import clean_name
from bot.services.actor import Actor
from storage.models import Unit
from storage.models_profiles import SIGNER_NAME_MAX, SIGNER_TITLE_MAX, SYMBOL_MAX, UnitProfile
from storage.uow import UnitOfWork

# A document symbol is capitals, digits and hyphens ("BC-HKH", "BC-KH"; Nghị định 30/2020,
# appendix III); Đ is a capital too.
_SYMBOL = re.compile(r"[0-9A-ZĐ]+(?:-[0-9A-ZĐ]+)*")


class BadProfileValue(ValueError):
    """A name or title too long, or a symbol that is not capitals, digits and hyphens."""

    def __init__(self, field: str) -> None:
        super().__init__(f"bad {field}")
        self.field = field


@dataclass(frozen=True)
class ProfileValues:
    """What the officer typed, cleaned and checked: "" keeps the document's default."""

    signer_name: str
    signer_title: str
    number_symbol: str


def clean_signer_name(text: str) -> str:
    cleaned = clean_name(text)
    if len(cleaned) > SIGNER_NAME_MAX:
        raise BadProfileValue("signer_name")
    return cleaned


def clean_signer_title(text: str) -> str:
    cleaned = clean_name(text)
    if len(cleaned) > SIGNER_TITLE_MAX:
        raise BadProfileValue("signer_title")
    return cleaned.upper()


def clean_symbol(text: str) -> str:
    cleaned = clean_name(text).upper().replace(" ", "")
    if cleaned and (len(cleaned) > SYMBOL_MAX or not _SYMBOL.fullmatch(cleaned)):
        raise BadProfileValue("number_symbol")
    return cleaned


async def set_profile(
    uow: UnitOfWork,
    actor: Actor,
    unit: Unit,
    *,
    signer_name: str,
    signer_title: str,
    number_symbol: str,
    now: datetime,
) -> UnitProfile:
    """Save the unit's profile. NotAllowed outside the actor's area, BadProfileValue."""
    actor.require(Action.SET_PROFILE, unit)
    values = ProfileValues(
        clean_signer_name(signer_name), clean_signer_title(signer_title), clean_symbol(number_symbol)
    )
    row = await uow.profiles.put(
        unit.id,
        signer_name=values.signer_name,
        signer_title=values.signer_title,
        number_symbol=values.number_symbol,
        now=now,
        contact_id=actor.contact_id,
    )
    actor.audit(
        uow,
        now,
        "profile.set",
        unit.id,
        signer_name=values.signer_name,
        signer_title=values.signer_title,
        number_symbol=values.number_symbol,
    )
    return row
