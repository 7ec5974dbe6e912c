"""Reaching officers: who holds which role where, the outbox, files, and the notices log.

Reminders, digests and compiled reports are queued in the outbox (one row per channel identity
of the officer), in the same transaction as the `notices_sent` rows that keep them from ever
being queued twice. Files go into `report_files` once (by content hash) and the payload refers
to them:

    {"text": "...", "options": [],
     "attachments": [{"filename": "...xlsx", "content_type": "...", "file_id": 12, "size": 14021}]}

`attachments_of(session, payload)` turns that back into `bot.domain.messages.Attachment`s for a sender
(it also accepts inline {"data_b64": ...} attachments).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.messages import Attachment
from bot.reports.aggregate import UnitRef
from storage.models import ChannelIdentity, Contact, RoleGrant, Unit
from storage.models_reports import NoticeSent, ReportFile
from storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class Recipient:
    """An officer in a role on a unit, with the channels to reach them."""

    contact_id: int
    locale: str
    role: str
    unit: UnitRef
    identities: tuple[tuple[str, str], ...]  # (channel, external_id), not blocked


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def officers(
    session: AsyncSession,
    roles: Sequence[str],
    *,
    unit_ids: Sequence[int] | None = None,
    unit_kinds: Sequence[str] | None = None,
) -> list[Recipient]:
    """Active role holders (on `unit_ids`, or on units of `unit_kinds`) reachable on some channel."""
    rows: list[tuple[RoleGrant, Contact, Unit]] = []
    base = (
        select(RoleGrant, Contact, Unit)
        .join(Contact, Contact.id == RoleGrant.contact_id)
        .join(Unit, Unit.id == RoleGrant.unit_id)
        .where(RoleGrant.role.in_(roles), RoleGrant.revoked_at.is_(None))
        .order_by(RoleGrant.contact_id, RoleGrant.unit_id)
    )
    if unit_kinds is not None:
        base = base.where(Unit.kind.in_(unit_kinds))
    if unit_ids is None:
        rows = [tuple(r) for r in await session.execute(base)]  # type: ignore[misc]
    else:
        for chunk in _chunks(sorted(set(unit_ids))):
            rows += [tuple(r) for r in await session.execute(base.where(RoleGrant.unit_id.in_(chunk)))]  # type: ignore[misc]
    contact_ids = sorted({c.id for _, c, _ in rows})
    reach: dict[int, list[tuple[str, str]]] = {}
    for chunk in _chunks(contact_ids):
        q = select(ChannelIdentity).where(
            ChannelIdentity.contact_id.in_(chunk), ChannelIdentity.blocked_at.is_(None)
        )
        for ident in (await session.execute(q.order_by(ChannelIdentity.id))).scalars():
            reach.setdefault(ident.contact_id, []).append((ident.channel, ident.external_id))
    return [
        Recipient(c.id, c.locale, g.role, UnitRef.of(u), tuple(reach[c.id]))
        for g, c, u in rows
        if reach.get(c.id)
    ]


async def already_sent(
    session: AsyncSession,
    kind: str,
    subject: str,
    period: str,
    contact_id: int,
    unit_ids: Sequence[int] | None = None,
) -> set[int]:
    """Units about which this notice already went to this contact."""
    q = select(NoticeSent.unit_id).where(
        NoticeSent.kind == kind,
        NoticeSent.subject == subject,
        NoticeSent.period == period,
        NoticeSent.contact_id == contact_id,
    )
    if unit_ids is not None:
        q = q.where(NoticeSent.unit_id.in_(unit_ids))
    return set((await session.execute(q)).scalars())


def mark_sent(
    uow: UnitOfWork,
    kind: str,
    subject: str,
    period: str,
    unit_ids: Iterable[int],
    contact_id: int,
    now: datetime,
) -> None:
    for unit_id in unit_ids:
        uow.session.add(
            NoticeSent(
                kind=kind, subject=subject, period=period, unit_id=unit_id, contact_id=contact_id, sent_at=now
            )
        )


async def store_file(uow: UnitOfWork, attachment: Attachment, now: datetime) -> ReportFile:
    """The file's row, inserted unless the same bytes are stored already."""
    digest = hashlib.sha256(attachment.data).hexdigest()
    found = (
        await uow.session.execute(select(ReportFile).where(ReportFile.sha256 == digest))
    ).scalar_one_or_none()
    if found is not None:
        return found
    row = ReportFile(
        sha256=digest,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=len(attachment.data),
        data=attachment.data,
        created_at=now,
    )
    uow.session.add(row)
    await uow.session.flush()
    return row


async def enqueue(
    uow: UnitOfWork,
    recipient: Recipient,
    text: str,
    now: datetime,
    files: Sequence[Attachment] = (),
) -> int:
    """Queue one message to every channel the officer uses; the number of outbox rows."""
    attachments = []
    for f in files:
        row = await store_file(uow, f, now)
        attachments.append(
            {"filename": f.filename, "content_type": f.content_type, "file_id": row.id, "size": row.size}
        )
    payload: dict[str, Any] = {"text": text, "options": []}
    if attachments:
        payload["attachments"] = attachments
    for channel, external_id in recipient.identities:
        uow.outbox.add(recipient.contact_id, channel, external_id, dict(payload), now)
    return len(recipient.identities)


async def attachments_of(session: AsyncSession, payload: dict[str, Any]) -> list[Attachment]:
    """The attachments an outbox payload names, with their bytes (for the outbox sender)."""
    out: list[Attachment] = []
    for item in payload.get("attachments") or ():
        if "data_b64" in item:
            data = base64.b64decode(item["data_b64"])
        else:
            row = await session.get(ReportFile, int(item["file_id"]))
            if row is None:
                continue
            data = row.data
        out.append(Attachment(str(item["filename"]), str(item["content_type"]), data))
    return out
