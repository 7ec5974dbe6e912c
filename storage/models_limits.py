"""Tables and queries of the abuse limits and of retention (issue 11).

`InviteTry`: one row per wrong invite code typed. The limits count them in a sliding window
(per contact, per client address, overall: bot/services/invites.py), so they hold across
instances and restarts; the weekly digest tells commune officers about those of their area.
The audit log keeps its own row of each.

`RetentionRepository`: what the nightly prune job (bot/messaging/retention.py) deletes once its
retention period is over: contacts who never consented, processed update ids, old dialogue rows,
old wrong invite codes, messages sent long ago (their outbox rows and deliveries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    case,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import (
    AuditEntry,
    Base,
    ChannelIdentity,
    Contact,
    DialogueState,
    Invite,
    OutboxMessage,
    ProcessedUpdate,
    RoleGrant,
    Submission,
    Unit,
)
from storage.models_channels import LinkCode
from storage.models_console import ConsoleLink, ConsoleSession
from storage.models_files import KeptFile
from storage.models_outreach import (
    QUEUED,
    SENDING,
    Broadcast,
    Delivery,
    Notice,
    SentItem,
    Subscription,
)
from storage.repositories import OutboxRepository


class InviteTry(Base):
    """A wrong invite code: unknown, expired or used up."""

    __tablename__ = "invite_tries"
    __table_args__ = (
        Index("ix_invite_tries_contact_at", "contact_id", "at"),
        Index("ix_invite_tries_address_at", "address_tag", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    # No foreign key: a contact pruned or deleted leaves the count of what was tried intact.
    contact_id: Mapped[int | None] = mapped_column(Integer)
    address_tag: Mapped[str | None] = mapped_column(String(32))  # a hash of the client address
    # The area the try concerns: the invite's unit when the code exists, else the person's home unit.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    outcome: Mapped[str] = mapped_column(String(16))


@dataclass(frozen=True, slots=True)
class TryCounts:
    """Wrong codes in the window, and the oldest of each: when the window moves past it, one
    more try is allowed."""

    contact: int
    address: int
    overall: int
    contact_oldest: datetime | None
    address_oldest: datetime | None
    overall_oldest: datetime | None


class InviteTryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def counts(self, since: datetime, contact_id: int, address_tag: str | None) -> TryCounts:
        """One query over the window (at most a few hundred rows: tries stop being recorded at the limit)."""
        mine = InviteTry.contact_id == contact_id
        theirs = InviteTry.address_tag == address_tag if address_tag is not None else InviteTry.id.is_(None)
        q = select(
            func.count(),
            func.coalesce(func.sum(case((mine, 1), else_=0)), 0),
            func.coalesce(func.sum(case((theirs, 1), else_=0)), 0),
            func.min(case((mine, InviteTry.at))),
            func.min(case((theirs, InviteTry.at))),
            func.min(InviteTry.at),
        ).where(InviteTry.at > since)  # at `since` + window a try is allowed again
        overall, contact, address, c_old, a_old, o_old = (await self.s.execute(q)).one()
        return TryCounts(
            int(contact), int(address), int(overall), *(_aware(x) for x in (c_old, a_old, o_old))
        )

    def record(
        self, at: datetime, contact_id: int, address_tag: str | None, unit_id: int | None, outcome: str
    ) -> None:
        self.s.add(
            InviteTry(at=at, contact_id=contact_id, address_tag=address_tag, unit_id=unit_id, outcome=outcome)
        )

    async def by_unit_path(self, start: datetime, end: datetime) -> list[tuple[str, int]]:
        """Wrong codes in [start, end) by the path of the unit they concern (the digest adds up
        each area's from these; tries concerning no unit are left out)."""
        q = (
            select(Unit.path, func.count())
            .select_from(InviteTry)
            .join(Unit, Unit.id == InviteTry.unit_id)
            .where(InviteTry.at >= start, InviteTry.at < end)
            .group_by(Unit.path)
        )
        return [(path, int(n)) for path, n in (await self.s.execute(q)).all()]


def _aware(value: Any) -> datetime | None:
    """MIN() over a CASE loses the column type: SQLite hands back a string, naive."""
    if value is None:
        return None
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(at, datetime)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# Tables whose rows belong to a contact and go with them when an unconsented contact is pruned.
_OWNED_BY_CONTACT = (
    Delivery,
    OutboxMessage,
    Notice,
    SentItem,
    Subscription,
    LinkCode,
    DialogueState,
    KeptFile,
    ConsoleLink,
    ConsoleSession,
)
# A contact with a row in any of these is kept whatever their consent: the rows are records.
_RECORDS = (
    (RoleGrant, RoleGrant.contact_id),
    (Submission, Submission.submitted_by_contact_id),
    (AuditEntry, AuditEntry.contact_id),
    (Invite, Invite.created_by_contact_id),
    (Broadcast, Broadcast.created_by_contact_id),
)


class RetentionRepository:
    """Deletes in batches: each call one statement (or a few), the caller commits between them."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    @property
    def _is_pg(self) -> bool:
        return self.s.get_bind().dialect.name == "postgresql"

    async def prune_unconsented(self, last_seen_before: datetime, limit: int) -> int:
        """Delete up to `limit` contacts who never consented, were last seen before the cutoff and
        have no records; with their identities, dialogue and queued messages. The number deleted."""
        seen = func.coalesce(Contact.last_seen_at, Contact.created_at)
        q = select(Contact.id).where(Contact.consent_at.is_(None), seen < last_seen_before)
        for _table, column in _RECORDS:
            q = q.where(~exists().where(column == Contact.id))
        q = q.order_by(Contact.id).limit(limit)
        if self._is_pg:
            # A step holding the contact's row lock is using it: skip it, and re-check under the lock.
            q = q.with_for_update(of=Contact, skip_locked=True)
        ids = list((await self.s.execute(q)).scalars())
        if not ids:
            return 0
        link_codes = select(LinkCode.id).where(LinkCode.contact_id.in_(ids))
        identities = select(ChannelIdentity.id).where(ChannelIdentity.contact_id.in_(ids))
        # Codes of other contacts redeemed by these identities keep their row, without the identity.
        await self.s.execute(
            update(LinkCode)
            .where(LinkCode.used_by_identity_id.in_(identities), LinkCode.id.not_in(link_codes))
            .values(used_by_identity_id=None)
            .execution_options(synchronize_session=False)
        )
        for table in _OWNED_BY_CONTACT:
            await self.s.execute(
                delete(table).where(table.contact_id.in_(ids)).execution_options(synchronize_session=False)
            )
        await self.s.execute(
            delete(ChannelIdentity)
            .where(ChannelIdentity.contact_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        result = await self.s.execute(
            delete(Contact).where(Contact.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def prune_sent(self, created_before: datetime, limit: int) -> int:
        """Delete up to `limit` outbox rows created before the cutoff whose delivery is final
        (sent, failed, blocked, cancelled), with their deliveries; never one queued or being
        sent, whatever its age. Broadcasts keep their counts (OutboxRepository.delete)."""
        pending = exists().where(
            Delivery.outbox_id == OutboxMessage.id, Delivery.status.in_((QUEUED, SENDING))
        )
        q = (
            select(OutboxMessage.id)
            .where(OutboxMessage.created_at < created_before, ~pending)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        # No row lock: a final row never changes again, and an erasure deleting the same rows
        # takes their locks in the same order (deliveries, then outbox rows), so one waits.
        ids = list((await self.s.execute(q)).scalars())
        return await OutboxRepository(self.s).delete(ids)

    async def prune_updates(self, before: datetime, limit: int) -> int:
        """Forget up to `limit` processed update ids older than `before`."""
        return await self._delete_ids(ProcessedUpdate, ProcessedUpdate.processed_at < before, limit)

    async def prune_dialogues(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` dialogue rows untouched since `before` (a step re-creates the row)."""
        if self._is_pg:
            q = (
                select(DialogueState.contact_id)
                .where(DialogueState.updated_at < before)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = list((await self.s.execute(q)).scalars())
            if not ids:
                return 0
            cond: Any = and_(DialogueState.contact_id.in_(ids), DialogueState.updated_at < before)
        else:
            sub = select(DialogueState.contact_id).where(DialogueState.updated_at < before).limit(limit)
            cond = DialogueState.contact_id.in_(sub)
        result = await self.s.execute(
            delete(DialogueState).where(cond).execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def prune_invite_tries(self, before: datetime, limit: int) -> int:
        return await self._delete_ids(InviteTry, InviteTry.at < before, limit)

    async def _delete_ids(self, model: Any, condition: Any, limit: int) -> int:
        ids = select(model.id).where(condition).order_by(model.id).limit(limit)
        result = await self.s.execute(
            delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
