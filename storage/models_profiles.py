"""The document profile of a unit: who signs its reports and the symbol in their number.

A compiled report is a document the unit's office files (Nghị định 30/2020/NĐ-CP): the signer's
name and title and the *Số: …/BC-HKH* symbol are the unit's own, set by its officers in chat
(/hoso, bot.services.profiles). A unit without a row uses the defaults (bot.reports.document).

Import Base from storage.models; storage.schema imports this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

SIGNER_NAME_MAX = 80
SIGNER_TITLE_MAX = 60
SYMBOL_MAX = 20


class UnitProfile(Base):
    __tablename__ = "unit_profiles"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    signer_name: Mapped[str] = mapped_column(String(SIGNER_NAME_MAX), default="")
    signer_title: Mapped[str] = mapped_column(String(SIGNER_TITLE_MAX), default="")  # "": CHỦ TỊCH
    number_symbol: Mapped[str] = mapped_column(String(SYMBOL_MAX), default="")  # "": BC-HKH
    updated_at: Mapped[datetime]
    updated_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))


class ProfileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, unit_id: int) -> UnitProfile | None:
        return await self.s.scalar(select(UnitProfile).where(UnitProfile.unit_id == unit_id))

    async def put(
        self,
        unit_id: int,
        *,
        signer_name: str,
        signer_title: str,
        number_symbol: str,
        now: datetime,
        contact_id: int | None,
    ) -> UnitProfile:
        """Write the unit's profile (the row is made on first use)."""
        row = await self.get(unit_id)
        if row is None:
            row = UnitProfile(unit_id=unit_id)
            self.s.add(row)
        row.signer_name, row.signer_title, row.number_symbol = signer_name, signer_title, number_symbol
        row.updated_at, row.updated_by_contact_id = now, contact_id
        await self.s.flush()
        return row
