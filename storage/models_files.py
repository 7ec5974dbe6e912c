"""Files kept for the person they were made for: compiled reports to download again (issue 10).

`kept_files`: one row per file given to a contact on the web chat, under an unguessable id (the
last part of the download link, GET /api/webchat/files/{id}). The bytes are the `report_files`
row (stored once by content hash, whoever receives them). The id alone is not enough: the
download checks that the web chat client asking is an identity of the same contact, and that
the row is younger than `kept_file_days` (bot/channels/webchat/channel.py). The nightly
retention job (bot/messaging/retention.py) deletes expired rows, then the `report_files` rows
no kept file holds and nothing has used for as long.

Import Base from storage.models; storage.schema imports this module.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, ChannelIdentity
from storage.models_reports import ReportFile

ID_BYTES = 24  # 192 random bits, 32 characters in the link


class KeptFile(Base):
    """A file one contact may download until it expires."""

    __tablename__ = "kept_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("report_files.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True, slots=True)
class Download:
    filename: str
    content_type: str
    data: bytes


class KeptFileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def keep(
        self, contact_id: int, file_id: int, filename: str, content_type: str, now: datetime
    ) -> str:
        """A new unguessable id for `file_id`, readable by `contact_id` only."""
        key = secrets.token_urlsafe(ID_BYTES)
        self.s.add(
            KeptFile(
                id=key,
                contact_id=contact_id,
                file_id=file_id,
                filename=filename,
                content_type=content_type,
                created_at=now,
            )
        )
        await self.s.flush()
        return key

    async def download(self, key: str, channel: str, external_id: str, since: datetime) -> Download | None:
        """The file `key` if the identity (channel, external_id) belongs to the contact it was
        kept for and it was kept after `since`; None otherwise, whichever check failed."""
        q = (
            select(KeptFile.filename, KeptFile.content_type, ReportFile.data)
            .join(ReportFile, ReportFile.id == KeptFile.file_id)
            .join(ChannelIdentity, ChannelIdentity.contact_id == KeptFile.contact_id)
            .where(
                KeptFile.id == key,
                KeptFile.created_at >= since,
                ChannelIdentity.channel == channel,
                ChannelIdentity.external_id == external_id,
            )
            .limit(1)
        )
        row = (await self.s.execute(q)).first()
        return None if row is None else Download(row[0], row[1], bytes(row[2]))

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` kept files made before `before`."""
        ids = select(KeptFile.id).where(KeptFile.created_at < before).order_by(KeptFile.id).limit(limit)
        result = await self.s.execute(
            delete(KeptFile).where(KeptFile.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def prune_stored(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` stored report files last used before `before` that no kept file
        holds (a message still queued after that long goes without them)."""
        used = func.coalesce(ReportFile.used_at, ReportFile.created_at)
        ids = (
            select(ReportFile.id)
            .where(used < before, ~exists().where(KeptFile.file_id == ReportFile.id))
            .order_by(ReportFile.id)
            .limit(limit)
        )
        result = await self.s.execute(
            delete(ReportFile).where(ReportFile.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
