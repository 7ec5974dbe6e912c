"""The unit's document profile as the document needs it (bot.reports.document.Profile).

Read where compiled reports are made — the /baocaotonghop dialogue, the scheduled delivery and
the CLI — through either unit of work; a unit without a row gets the defaults.
"""

from __future__ import annotations

from bot.reports.document import SYMBOL, Profile
from storage.uow import Reads

DEFAULT_TITLE = "CHỦ TỊCH"  # seed 001 line 157: the chair signs for the committee (TM. BCH)


async def unit_profile(reads: Reads, unit_id: int | None) -> Profile:
    """The profile of the unit (the defaults when it has none, or for the national report)."""
    row = None if unit_id is None else await reads.profiles.get(unit_id)
    if row is None:
        return Profile()
    return Profile(
        signer_name=row.signer_name,
        signer_title=row.signer_title,
        symbol=row.number_symbol or SYMBOL,
    )
