"""The queries of a person's data rights (Law 91/2025/QH15): what is kept about a contact, and
its deletion. docs/privacy.md lists the tables, and what each of these does with them.

Deleting removes what identifies the person (their chats, name, roles, preferences, dialogue,
the messages kept for them) and keeps what is an official record: the reports they filed stay,
attributed to their unit and to the role they filed them in; audit rows and broadcasts keep
pointing at the contact row, which is left as an empty stub. A contact nothing points at (someone
who never registered) is removed altogether.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import Exists

from storage.models import (
    OFFICER_ROLES,
    AuditEntry,
    ChannelIdentity,
    Contact,
    DialogueState,
    Invite,
    OutboxMessage,
    RoleGrant,
    Submission,
    Unit,
)
from storage.models_channels import LinkCode
from storage.models_console import ConsoleLink, ConsoleSession
from storage.models_files import KeptFile
from storage.models_outreach import SENDING, Broadcast, Delivery, Notice, SentItem, Subscription
from storage.repositories import OutboxRepository


@dataclass(frozen=True, slots=True)
class FiledReport:
    """One version of a report the person filed, with its unit's name."""

    form_key: str
    unit_name: str
    period: str
    version: int
    submitted_at: datetime
    channel: str | None
    values: dict[str, object]


@dataclass(frozen=True, slots=True)
class RoleHeld:
    role: str
    unit: Unit
    granted_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeptMessages:
    """The messages kept in the outbox for the person: how many, and since when."""

    count: int
    oldest: datetime | None


class PersonalDataRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # ------------------------------------------------------------------ what is kept

    async def roles_ever(self, contact_id: int) -> list[RoleHeld]:
        """Every role the contact holds or held, with its unit, oldest first."""
        q = (
            select(RoleGrant, Unit)
            .join(Unit, Unit.id == RoleGrant.unit_id)
            .where(RoleGrant.contact_id == contact_id)
            .order_by(RoleGrant.id)
        )
        return [RoleHeld(g.role, u, g.granted_at, g.revoked_at) for g, u in (await self.s.execute(q)).all()]

    async def reports_filed(self, contact_id: int) -> list[FiledReport]:
        """Every version of every report the contact filed, oldest first."""
        q = (
            select(Submission, Unit.name)
            .join(Unit, Unit.id == Submission.unit_id)
            .where(Submission.submitted_by_contact_id == contact_id)
            .order_by(Submission.submitted_at, Submission.id)
        )
        return [
            FiledReport(
                s.form_key, name, s.period, s.version, s.submitted_at, s.channel, dict(s.values or {})
            )
            for s, name in (await self.s.execute(q)).all()
        ]

    async def actions(self, contact_id: int) -> list[AuditEntry]:
        """The audit rows naming the contact, oldest first."""
        q = select(AuditEntry).where(AuditEntry.contact_id == contact_id).order_by(AuditEntry.id)
        return list((await self.s.execute(q)).scalars())

    async def kept_messages(self, contact_id: int) -> KeptMessages:
        q = select(func.count(OutboxMessage.id), func.min(OutboxMessage.created_at)).where(
            OutboxMessage.contact_id == contact_id
        )
        count, oldest = (await self.s.execute(q)).one()
        return KeptMessages(int(count), oldest)

    # ------------------------------------------------------------------ deleting

    async def erase(self, contact_id: int) -> dict[str, int]:
        """Delete what identifies the contact, keep the official records; the rows changed per
        table. The contact row itself is the caller's (an ORM object locked in the session):
        its columns are cleared there, and `delete_if_unreferenced` may remove it afterwards."""
        counts: dict[str, int] = {}
        counts["submissions"] = await self._anonymise_reports(contact_id)
        counts["role_grants"] = await self._delete(RoleGrant, RoleGrant.contact_id == contact_id)
        # Messages kept for the person, except one a sender holds right now (it finishes it).
        sending = select(Delivery.outbox_id).where(
            Delivery.contact_id == contact_id, Delivery.status == SENDING
        )
        # (Broadcasts keep their figures: OutboxRepository.delete counts what it deletes.)
        kept = select(OutboxMessage.id).where(
            OutboxMessage.contact_id == contact_id, OutboxMessage.id.not_in(sending)
        )
        counts["outbox"] = await OutboxRepository(self.s).delete(list((await self.s.execute(kept)).scalars()))
        counts["notices"] = await self._delete(Notice, Notice.contact_id == contact_id)
        counts["sent_items"] = await self._delete(SentItem, SentItem.contact_id == contact_id)
        counts["subscriptions"] = await self._delete(Subscription, Subscription.contact_id == contact_id)
        counts["kept_files"] = await self._delete(KeptFile, KeptFile.contact_id == contact_id)
        counts["console_sessions"] = await self._delete(
            ConsoleSession, ConsoleSession.contact_id == contact_id
        ) + await self._delete(ConsoleLink, ConsoleLink.contact_id == contact_id)
        mine = select(ChannelIdentity.id).where(ChannelIdentity.contact_id == contact_id)
        await self.s.execute(
            update(LinkCode)
            .where(LinkCode.used_by_identity_id.in_(mine))
            .values(used_by_identity_id=None)
            .execution_options(synchronize_session=False)
        )
        counts["link_codes"] = await self._delete(LinkCode, LinkCode.contact_id == contact_id)
        counts["channel_identities"] = await self._delete(
            ChannelIdentity, ChannelIdentity.contact_id == contact_id
        )
        await self.s.execute(
            update(DialogueState)
            .where(DialogueState.contact_id == contact_id)
            .values(flow=None, state={})
            .execution_options(synchronize_session=False)
        )
        return counts

    async def _anonymise_reports(self, contact_id: int) -> int:
        """The contact's reports keep the role they were filed in, and lose the person: the most
        specific role the contact held over the report's unit (an officer role before a member's)."""
        held = [(r.role, r.unit.path) for r in await self.roles_ever(contact_id)]
        q = (
            select(Submission.id, Unit.path)
            .join(Unit, Unit.id == Submission.unit_id)
            .where(Submission.submitted_by_contact_id == contact_id)
        )
        by_role: dict[str | None, list[int]] = {}
        for submission_id, path in (await self.s.execute(q)).all():
            covering = [(role, p) for role, p in held if path.startswith(p)]
            covering.sort(key=lambda rp: (rp[0] in OFFICER_ROLES, len(rp[1])), reverse=True)
            by_role.setdefault(covering[0][0] if covering else None, []).append(submission_id)
        for role, ids in by_role.items():
            for start in range(0, len(ids), 500):
                await self.s.execute(
                    update(Submission)
                    .where(Submission.id.in_(ids[start : start + 500]))
                    .values(submitted_by_contact_id=None, submitted_by_role=role)
                    .execution_options(synchronize_session=False)
                )
        return sum(len(ids) for ids in by_role.values())

    async def _delete(self, model: type[object], *where: object) -> int:
        stmt = delete(model).where(*where).execution_options(synchronize_session=False)  # type: ignore[arg-type]
        result = await self.s.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def is_referenced(self, contact_id: int) -> bool:
        """Whether a record that must stay points at the contact (an audit row, a report, an
        invite or a broadcast they made, a message being sent to them)."""
        checks: Sequence[Exists] = (
            exists().where(AuditEntry.contact_id == contact_id),
            exists().where(Submission.submitted_by_contact_id == contact_id),
            exists().where(Invite.created_by_contact_id == contact_id),
            exists().where(
                or_(
                    Broadcast.created_by_contact_id == contact_id,
                    Broadcast.cancelled_by_contact_id == contact_id,
                )
            ),
            exists().where(OutboxMessage.contact_id == contact_id),
            exists().where(Delivery.contact_id == contact_id),
            exists().where(RoleGrant.contact_id == contact_id),
            exists().where(ChannelIdentity.contact_id == contact_id),
        )
        for check in checks:
            if (await self.s.execute(select(check))).scalar():
                return True
        return False

    async def delete_if_unreferenced(self, contact: Contact) -> bool:
        """Remove an erased contact altogether when nothing points at it; True when removed."""
        if await self.is_referenced(contact.id):
            return False
        await self.s.execute(
            delete(DialogueState)
            .where(DialogueState.contact_id == contact.id)
            .execution_options(synchronize_session=False)
        )
        await self.s.delete(contact)
        await self.s.flush()
        return True
