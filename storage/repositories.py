"""Repositories own the queries. They flush when they need an id; they never commit."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    AuditEntry,
    ChannelIdentity,
    Contact,
    DialogueState,
    FormVersion,
    Invite,
    OutboxMessage,
    ProcessedUpdate,
    RoleGrant,
    Submission,
    Unit,
)
from storage.models_outreach import (
    CANCELLED,
    KIND_OTHER,
    KIND_REPLY,
    QUEUED,
    SENDING,
    SENT,
    Broadcast,
    BroadcastCount,
    Delivery,
    Subscription,
)
from storage.models_reports import JobRun, ReportFile, SchedulerLease


class UnitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, unit_id: int) -> Unit | None:
        return await self.s.get(Unit, unit_id)

    async def by_code(self, code: str) -> Unit | None:
        return (await self.s.execute(select(Unit).where(Unit.code == code))).scalar_one_or_none()

    async def many(self, unit_ids: Sequence[int]) -> list[Unit]:
        """The units of `unit_ids` that exist, in no particular order."""
        return list((await self.s.execute(select(Unit).where(Unit.id.in_(unit_ids)))).scalars())

    async def add(self, unit: Unit) -> Unit:
        """Insert a unit and set its materialised path from its parent's."""
        self.s.add(unit)
        await self.s.flush()
        parent_path = "/"
        if unit.parent_id is not None:
            parent = await self.get(unit.parent_id)
            if parent is None:
                raise ValueError(f"no parent unit {unit.parent_id}")
            parent_path = parent.path
        unit.path = f"{parent_path}{unit.id}/"
        await self.s.flush()
        return unit

    async def children(
        self, parent_id: int | None, kinds: Sequence[str] | None = None, *, on: Any = None
    ) -> list[Unit]:
        q = select(Unit).where(Unit.parent_id == parent_id if parent_id else Unit.parent_id.is_(None))
        if kinds:
            q = q.where(Unit.kind.in_(kinds))
        if on is not None:
            q = q.where(or_(Unit.valid_to.is_(None), Unit.valid_to >= on))
        return list((await self.s.execute(q.order_by(Unit.name_folded))).scalars())

    async def child_by_folded_name(self, parent_id: int, name_folded: str) -> Unit | None:
        q = select(Unit).where(Unit.parent_id == parent_id, Unit.name_folded == name_folded)
        return (await self.s.execute(q)).scalars().first()

    async def search(
        self,
        folded: str,
        kinds: Sequence[str],
        parent_id: int | None = None,
        limit: int = 8,
        *,
        on: Any = None,
        within: Sequence[Unit] = (),
    ) -> list[Unit]:
        """Units whose folded name contains `folded` (already lower case, no diacritics).

        `within` keeps only units in the subtrees of the given units.
        """
        pattern = "%" + folded.replace("\\", "").replace("%", "").replace("_", "") + "%"
        q = select(Unit).where(Unit.kind.in_(kinds), Unit.name_folded.like(pattern))
        if parent_id is not None:
            q = q.where(Unit.parent_id == parent_id)
        if within:
            q = q.where(or_(*(Unit.path.like(u.path + "%") for u in within)))
        if on is not None:
            q = q.where(or_(Unit.valid_to.is_(None), Unit.valid_to >= on))
        q = q.order_by(func.length(Unit.name_folded), Unit.name_folded).limit(limit)
        return list((await self.s.execute(q)).scalars())

    async def count(self, kind: str | None = None) -> int:
        q = select(func.count(Unit.id))
        if kind:
            q = q.where(Unit.kind == kind)
        return int((await self.s.execute(q)).scalar_one())

    async def ancestors(self, unit: Unit) -> list[Unit]:
        """The unit's ancestors, root first."""
        ids = [int(p) for p in unit.path.strip("/").split("/") if p][:-1]
        if not ids:
            return []
        rows = {u.id: u for u in (await self.s.execute(select(Unit).where(Unit.id.in_(ids)))).scalars()}
        return [rows[i] for i in ids if i in rows]

    @staticmethod
    def is_within(unit: Unit, ancestor: Unit) -> bool:
        """True when `unit` is `ancestor` or lies in its subtree."""
        return unit.path.startswith(ancestor.path)

    # -- bulk loading (the national list, village CSV files) --------------------------------

    async def flush(self) -> None:
        await self.s.flush()

    async def coded(self) -> dict[str, Unit]:
        """Every unit with a national code (provinces, communes), by code."""
        q = select(Unit).where(Unit.code.is_not(None))
        return {u.code: u for u in (await self.s.execute(q)).scalars() if u.code is not None}

    async def by_codes(self, codes: Iterable[str], kind: str) -> dict[str, Unit]:
        found: dict[str, Unit] = {}
        for batch in _batches(sorted(set(codes)), _IN_BATCH):
            q = select(Unit).where(Unit.code.in_(batch), Unit.kind == kind)
            found.update((u.code, u) for u in (await self.s.execute(q)).scalars() if u.code is not None)
        return found

    async def villages_by_name(
        self, parent_ids: Iterable[int], kinds: Sequence[str]
    ) -> dict[tuple[int, str], Unit]:
        """The children of `kinds` of the parents, by (parent id, folded name); the oldest wins."""
        found: dict[tuple[int, str], Unit] = {}
        for batch in _batches(sorted(set(parent_ids)), _IN_BATCH):
            q = select(Unit).where(Unit.parent_id.in_(batch), Unit.kind.in_(kinds)).order_by(Unit.id)
            for unit in (await self.s.execute(q)).scalars():
                if unit.parent_id is not None:
                    found.setdefault((unit.parent_id, unit.name_folded), unit)
        return found

    async def add_many(self, values: Sequence[dict[str, Any]], kinds: Sequence[str]) -> None:
        """Insert units (column values, `path` empty), then give each its materialised path.

        Plain executemany without RETURNING: SQLite cannot return a batch's ids in order, so an
        ORM flush of new objects would insert row by row (3,355 round trips for the national
        list). New rows of `kinds` are found again by their still empty path.
        """
        if not values:
            return
        for batch in _batches(values, _FLUSH_BATCH):
            await self.s.execute(insert(Unit), list(batch))
        parent_paths: dict[int, str] = {}
        parent_ids = sorted({v["parent_id"] for v in values if v["parent_id"] is not None})
        for ids in _batches(parent_ids, _IN_BATCH):
            q = select(Unit.id, Unit.path).where(Unit.id.in_(ids))
            parent_paths.update((uid, path) for uid, path in (await self.s.execute(q)).all())
        q2 = select(Unit.id, Unit.parent_id).where(Unit.path == "", Unit.kind.in_(kinds))
        paths = [
            {"id": uid, "path": f"{parent_paths[pid] if pid is not None else '/'}{uid}/"}
            for uid, pid in (await self.s.execute(q2)).all()
        ]
        for batch in _batches(paths, _FLUSH_BATCH):
            await self.s.execute(update(Unit), list(batch))


_FLUSH_BATCH = 1000
_IN_BATCH = 500  # well under SQLite's bound-parameter limit


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Statements of the per-message hot path, built once: constructing a select() costs more
# Python time than SQLite takes to run it.

# A step's lock, taken first in its transaction: the contact's row and their dialogue row, read
# and locked together, so that two instances never step one contact at the same time and the
# second one reads what the first committed. FOR NO KEY UPDATE, not FOR UPDATE: rows that merely
# reference the contact (outbox, audit) can still be inserted meanwhile. SQLite renders no
# clause: there the one writer at a time (storage.db) already serializes. The person's active
# roles come in the same query (one row per role; the role columns are NULL when there is none):
# read after the lock is granted, so they too are what the previous step committed. And whether
# replies to this chat wait in the outbox (one EXISTS on ix_deliveries_contact_reply): the
# channel then queues the step's replies behind them instead of sending (bot/channels/ratelimit.py).
_REPLIES_WAITING = (
    select(Delivery.outbox_id)
    .where(
        Delivery.contact_id == Contact.id,
        or_(Delivery.status == QUEUED, Delivery.status == SENDING),  # IN would be re-rendered each time
        Delivery.channel == bindparam("channel"),
        Delivery.kind == KIND_REPLY,
    )
    .exists()
)
_LOCK_CONTACT_WITH_DIALOGUE = (
    select(Contact, DialogueState, ChannelIdentity.blocked_at, _REPLIES_WAITING, RoleGrant.role, Unit)
    .join(ChannelIdentity, ChannelIdentity.contact_id == Contact.id)
    .join(DialogueState, DialogueState.contact_id == Contact.id)
    .outerjoin(RoleGrant, and_(RoleGrant.contact_id == Contact.id, RoleGrant.revoked_at.is_(None)))
    .outerjoin(Unit, Unit.id == RoleGrant.unit_id)
    .where(
        ChannelIdentity.channel == bindparam("channel"),
        ChannelIdentity.external_id == bindparam("external_id"),
    )
    .order_by(RoleGrant.id)
    .with_for_update(of=[Contact, DialogueState], key_share=True)
)
_IDENTITY_CONTACT = select(ChannelIdentity.contact_id).where(
    ChannelIdentity.channel == bindparam("channel"),
    ChannelIdentity.external_id == bindparam("external_id"),
)
_ROLES_WITH_UNITS = (
    select(RoleGrant.role, Unit)
    .join(Unit, Unit.id == RoleGrant.unit_id)
    .where(RoleGrant.contact_id == bindparam("contact_id"), RoleGrant.revoked_at.is_(None))
    .order_by(RoleGrant.id)
)


def _insert(is_pg: bool) -> Any:
    """INSERT with the dialect's ON CONFLICT spelling."""
    return pg_insert if is_pg else sqlite_insert


@dataclass(slots=True)
class LockedContact:
    """A contact and their dialogue row, locked for one step (ContactRepository.lock_with_dialogue)."""

    contact: Contact
    dialogue: DialogueState
    blocked: bool  # this channel identity is marked as having blocked the bot
    replies_waiting: bool  # replies to this identity wait in the outbox (OutboxRepository.replies_waiting)
    roles: list[tuple[str, Unit]]  # active roles and their units, as roles_with_units gives them


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, contact_id: int) -> Contact | None:
        return await self.s.get(Contact, contact_id)

    async def lock_with_dialogue(self, channel: str, external_id: str) -> LockedContact | None:
        """The contact behind a channel identity, their dialogue row (both locked until the
        transaction ends) and their roles, in one query; None when the contact or the dialogue
        row does not exist yet (`ensure` them)."""
        params = {"channel": channel, "external_id": external_id}
        rows = (await self.s.execute(_LOCK_CONTACT_WITH_DIALOGUE, params)).all()
        if not rows:
            return None
        contact, dialogue, blocked_at, waiting = rows[0][:4]
        roles = [(role, unit) for *_, role, unit in rows if role is not None]
        return LockedContact(contact, dialogue, blocked_at is not None, bool(waiting), roles)

    async def ensure(
        self, channel: str, external_id: str, now: datetime, *, locale: str, display_name: str | None = None
    ) -> int:
        """The id of the contact behind a channel identity, created when new, with a dialogue
        row to lock. Safe when two instances see a new person's first messages at once: both
        insert a contact, only one identity insert wins (the other waits for it, finds the
        conflict, and drops its own contact), so the person ends with one contact."""
        is_pg = self.s.get_bind().dialect.name == "postgresql"
        conn = await self.s.connection()  # Core level: nothing here needs ORM objects
        where = {"channel": channel, "external_id": external_id}
        contact_id: int | None = (await conn.execute(_IDENTITY_CONTACT, where)).scalar()
        if contact_id is None:
            new_contact = insert(Contact).values(
                display_name=display_name, locale=locale, created_at=now, last_seen_at=now
            )
            mine = (await conn.execute(new_contact.returning(Contact.id))).scalar_one()
            identity = (
                _insert(is_pg)(ChannelIdentity)
                .values(contact_id=mine, channel=channel, external_id=external_id, created_at=now)
                .on_conflict_do_nothing(index_elements=["channel", "external_id"])
                .returning(ChannelIdentity.contact_id)
            )
            contact_id = (await conn.execute(identity)).scalar()
            if contact_id is None:  # another transaction created this person first, and committed
                await conn.execute(delete(Contact).where(Contact.id == mine))
                contact_id = (await conn.execute(_IDENTITY_CONTACT, where)).scalar_one()
        dialogue = (
            _insert(is_pg)(DialogueState)
            .values(contact_id=contact_id, flow=None, state={}, updated_at=now)
            .on_conflict_do_nothing(index_elements=["contact_id"])
        )
        await conn.execute(dialogue)
        return contact_id

    async def roles_with_units(self, contact_id: int) -> list[tuple[str, Unit]]:
        """Active roles and their units, in one query."""
        rows = (await self.s.execute(_ROLES_WITH_UNITS, {"contact_id": contact_id})).all()
        return [(role, unit) for role, unit in rows]

    async def by_identity(self, channel: str, external_id: str) -> Contact | None:
        q = (
            select(Contact)
            .join(ChannelIdentity, ChannelIdentity.contact_id == Contact.id)
            .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
        )
        return (await self.s.execute(q)).scalar_one_or_none()

    async def create(
        self, channel: str, external_id: str, now: datetime, display_name: str | None = None
    ) -> Contact:
        contact = Contact(display_name=display_name, created_at=now, last_seen_at=now)
        self.s.add(contact)
        await self.s.flush()
        self.s.add(
            ChannelIdentity(contact_id=contact.id, channel=channel, external_id=external_id, created_at=now)
        )
        await self.s.flush()
        return contact

    async def identities(self, contact_id: int) -> list[ChannelIdentity]:
        q = select(ChannelIdentity).where(ChannelIdentity.contact_id == contact_id)
        return list((await self.s.execute(q)).scalars())

    async def roles(self, contact_id: int) -> list[RoleGrant]:
        q = (
            select(RoleGrant)
            .where(RoleGrant.contact_id == contact_id, RoleGrant.revoked_at.is_(None))
            .order_by(RoleGrant.id)
        )
        return list((await self.s.execute(q)).scalars())

    async def grant(
        self, contact_id: int, role: str, unit_id: int, now: datetime, invite_id: int | None = None
    ) -> RoleGrant:
        existing = (
            await self.s.execute(
                select(RoleGrant).where(
                    RoleGrant.contact_id == contact_id,
                    RoleGrant.role == role,
                    RoleGrant.unit_id == unit_id,
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            existing.revoked_at = None
            return existing
        grant = RoleGrant(
            contact_id=contact_id, role=role, unit_id=unit_id, granted_at=now, invite_id=invite_id
        )
        self.s.add(grant)
        await self.s.flush()
        return grant

    async def with_role_in(self, role: str, unit_ids: Sequence[int]) -> list[Contact]:
        q = (
            select(Contact)
            .join(RoleGrant, RoleGrant.contact_id == Contact.id)
            .where(RoleGrant.role == role, RoleGrant.unit_id.in_(unit_ids), RoleGrant.revoked_at.is_(None))
        )
        return list((await self.s.execute(q)).scalars())


class InviteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def by_code(self, code: str) -> Invite | None:
        q = select(Invite).where(Invite.code == code).with_for_update()
        return (await self.s.execute(q)).scalar_one_or_none()

    async def add(self, invite: Invite) -> Invite:
        self.s.add(invite)
        await self.s.flush()
        return invite

    async def use(self, invite: Invite) -> bool:
        """Count one use; False when another transaction used the last one first."""
        result = await self.s.execute(
            update(Invite)
            .where(Invite.id == invite.id, Invite.uses < Invite.max_uses)
            .values(uses=Invite.uses + 1)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- onboarding at scale (bot/services/onboarding.py, the console's onboarding page) --------

    async def get(self, invite_id: int) -> Invite | None:
        return await self.s.get(Invite, invite_id)

    async def flush(self) -> None:
        await self.s.flush()

    @staticmethod
    def _open(now: datetime) -> Any:
        return and_(Invite.revoked_at.is_(None), Invite.expires_at > now, Invite.uses < Invite.max_uses)

    async def open_in(self, area_paths: Sequence[str], now: datetime) -> list[tuple[Invite, Unit]]:
        """The codes still usable (not revoked, not expired, uses left) on units of the areas, with
        their unit, by unit and then newest first."""
        if not area_paths:
            return []
        q = (
            select(Invite, Unit)
            .join(Unit, Unit.id == Invite.unit_id)
            .where(self._open(now), or_(*(Unit.path.like(p + "%") for p in area_paths)))
            .order_by(Unit.path, Invite.id.desc())
        )
        return [(invite, unit) for invite, unit in (await self.s.execute(q)).all()]

    async def villages_of(self, area_path: str, kinds: Sequence[str], on: Any) -> list[Unit]:
        """The units of `kinds` in the area's subtree that are valid on `on`, by path."""
        q = (
            select(Unit)
            .where(
                Unit.path.like(area_path + "%"),
                Unit.kind.in_(kinds),
                or_(Unit.valid_to.is_(None), Unit.valid_to >= on),
            )
            .order_by(Unit.path)
        )
        return list((await self.s.execute(q)).scalars())

    async def units_with_role(self, area_path: str, role: str) -> set[int]:
        """The units of the area on which someone holds `role` now."""
        q = (
            select(RoleGrant.unit_id)
            .join(Unit, Unit.id == RoleGrant.unit_id)
            .where(RoleGrant.role == role, RoleGrant.revoked_at.is_(None), Unit.path.like(area_path + "%"))
        )
        return set((await self.s.execute(q)).scalars())

    async def open_by_unit(self, area_path: str, role: str, now: datetime) -> dict[int, Invite]:
        """The newest usable code for `role` on each unit of the area that has one."""
        q = (
            select(Invite)
            .join(Unit, Unit.id == Invite.unit_id)
            .where(self._open(now), Invite.role == role, Unit.path.like(area_path + "%"))
            .order_by(Invite.id)
        )
        return {invite.unit_id: invite for invite in (await self.s.execute(q)).scalars()}


# The step's write: the row is locked and known to exist, so one UPDATE by primary key.
_SAVE_DIALOGUE = (
    update(DialogueState)
    .where(DialogueState.contact_id == bindparam("of_contact"))
    .values(flow=bindparam("new_flow"), state=bindparam("new_state"), updated_at=bindparam("now"))
)


class DialogueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, contact_id: int) -> DialogueState | None:
        return await self.s.get(DialogueState, contact_id)

    async def save(
        self,
        contact_id: int,
        flow: str | None,
        state: dict[str, Any],
        now: datetime,
        row: DialogueState | None = None,
    ) -> None:
        """Insert or update the contact's dialogue row (`row` when the caller already loaded it:
        then one UPDATE, at the Core level, without the ORM's bookkeeping)."""
        if row is not None:
            params = {"of_contact": contact_id, "new_flow": flow, "new_state": state, "now": now}
            await (await self.s.connection()).execute(_SAVE_DIALOGUE, params)
            return
        found = await self.get(contact_id)
        if found is None:
            self.s.add(DialogueState(contact_id=contact_id, flow=flow, state=state, updated_at=now))
        else:
            found.flow = flow
            found.state = state
            found.updated_at = now
        await self.s.flush()


class SubmissionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def latest(self, form_key: str, record_key: str) -> Submission | None:
        q = (
            select(Submission)
            .where(Submission.form_key == form_key, Submission.record_key == record_key)
            .order_by(Submission.version.desc())
            .limit(1)
        )
        return (await self.s.execute(q)).scalar_one_or_none()

    async def latest_for_unit(self, form_key: str, unit_id: int) -> Submission | None:
        """The unit's most recent submission of a form, for carried-over defaults."""
        q = select(Submission).where(Submission.form_key == form_key, Submission.unit_id == unit_id)
        q = q.order_by(Submission.submitted_at.desc(), Submission.id.desc()).limit(1)
        return (await self.s.execute(q)).scalar_one_or_none()

    async def history(self, form_key: str, record_key: str) -> list[Submission]:
        q = (
            select(Submission)
            .where(Submission.form_key == form_key, Submission.record_key == record_key)
            .order_by(Submission.version)
        )
        return list((await self.s.execute(q)).scalars())

    async def add_version(self, submission: Submission) -> Submission:
        """Store `submission` as the next version of its record."""
        current = await self.latest(submission.form_key, submission.record_key)
        submission.version = 1 if current is None else current.version + 1
        self.s.add(submission)
        await self.s.flush()
        return submission

    async def form_version(
        self, form_key: str, digest: str, definition: dict[str, Any], now: datetime
    ) -> FormVersion:
        q = select(FormVersion).where(FormVersion.form_key == form_key, FormVersion.digest == digest)
        row = (await self.s.execute(q)).scalar_one_or_none()
        if row is None:
            row = FormVersion(form_key=form_key, digest=digest, definition=definition, loaded_at=now)
            self.s.add(row)
            await self.s.flush()
        return row

    async def values_with_unit_paths(
        self, form_key: str, since: datetime
    ) -> list[tuple[dict[str, Any], str]]:
        """(values, unit path) of every version of `form_key` submitted since `since`."""
        q = (
            select(Submission.values, Unit.path)
            .join(Unit, Unit.id == Submission.unit_id)
            .where(Submission.form_key == form_key, Submission.submitted_at >= since)
        )
        return [(values or {}, path) for values, path in (await self.s.execute(q)).all()]

    async def count(self, form_key: str | None = None) -> int:
        q = select(func.count(Submission.id))
        if form_key:
            q = q.where(Submission.form_key == form_key)
        return int((await self.s.execute(q)).scalar_one())


class SubscriptionRepository:
    """Members' outreach preferences (`subscriptions`); no row means all topics, not stopped."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, contact_id: int) -> Subscription | None:
        return await self.s.get(Subscription, contact_id)

    async def ensure(self, contact_id: int, now: datetime) -> Subscription:
        """The contact's row, inserted (every topic, not stopped) when they have none yet."""
        sub = await self.get(contact_id)
        if sub is None:
            sub = Subscription(contact_id=contact_id, topics=[], created_at=now, updated_at=now)
            self.s.add(sub)
            await self.s.flush()
        return sub


class BroadcastRepository:
    """Staff broadcasts; their deliveries are written with the outbox rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await self.s.get(Broadcast, broadcast_id)

    async def add(self, broadcast: Broadcast) -> Broadcast:
        self.s.add(broadcast)
        await self.s.flush()
        return broadcast

    async def newest(self, author_id: int, area_paths: Sequence[str], limit: int = 5) -> list[Broadcast]:
        """The newest broadcasts written by `author_id` or lying inside one of `area_paths`."""
        conditions = [Broadcast.created_by_contact_id == author_id]
        conditions += [Broadcast.area_path.like(path + "%") for path in area_paths]
        q = select(Broadcast).where(or_(*conditions))
        q = q.order_by(Broadcast.created_at.desc(), Broadcast.id.desc()).limit(limit)
        return list((await self.s.execute(q)).scalars())


class SchedulerRepository:
    """The scheduler's lease row and its claimed job runs (bot/runtime/scheduler.py)."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def lease(self, name: str) -> SchedulerLease | None:
        return await self.s.get(SchedulerLease, name)

    async def renew_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take the lease row if it is ours or expired; False when it is missing or held by another."""
        result = await self.s.execute(
            update(SchedulerLease)
            .where(
                SchedulerLease.name == name,
                or_(SchedulerLease.holder == holder, SchedulerLease.expires_at <= now),
            )
            .values(holder=holder, renewed_at=now, expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def add_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> None:
        """The first lease row; a concurrent first one fails the commit (primary key)."""
        self.s.add(
            SchedulerLease(name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl)
        )

    async def expire_lease(self, name: str, holder: str, now: datetime) -> None:
        await self.s.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )

    def claim_run(self, job: str, slot: datetime, holder: str, now: datetime) -> None:
        """Claim (job, slot); a second claim fails the commit (unique key)."""
        self.s.add(JobRun(job=job, scheduled_for=slot, holder=holder, started_at=now))

    async def finish_run(
        self, job: str, slot: datetime, now: datetime, result: int | None, error: str | None
    ) -> None:
        await self.s.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.scheduled_for == slot)
            .values(finished_at=now, result=result, error=error)
            .execution_options(synchronize_session=False)
        )

    async def runs(self, job: str | None = None) -> list[JobRun]:
        """The recorded runs, oldest first."""
        q = select(JobRun).order_by(JobRun.scheduled_for, JobRun.id)
        if job is not None:
            q = q.where(JobRun.job == job)
        return list((await self.s.execute(q)).scalars())

    async def prune_runs(self, before: datetime) -> int:
        result = await self.s.execute(
            delete(JobRun).where(JobRun.scheduled_for < before).execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def add(
        self,
        at: datetime,
        action: str,
        contact_id: int | None = None,
        unit_id: int | None = None,
        **detail: Any,
    ) -> None:
        self.s.add(AuditEntry(at=at, action=action, contact_id=contact_id, unit_id=unit_id, detail=detail))

    async def actions(self, action: str | None = None) -> list[AuditEntry]:
        q = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            q = q.where(AuditEntry.action == action)
        return list((await self.s.execute(q)).scalars())


# Keyed by "is PostgreSQL": the ON CONFLICT clause is spelt per dialect.
_RECORD_UPDATE = {
    is_pg: (pg_insert if is_pg else sqlite_insert)(ProcessedUpdate)
    .values(
        channel=bindparam("channel"), update_id=bindparam("update_id"), processed_at=bindparam("processed_at")
    )
    .on_conflict_do_nothing(index_elements=["channel", "update_id"])
    for is_pg in (False, True)
}


class UpdateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def first_time(self, channel: str, update_id: str, now: datetime) -> bool:
        """Record the update; False when it was already processed.

        One INSERT … ON CONFLICT DO NOTHING: on PostgreSQL a concurrent delivery of the same
        update waits for the first transaction and then finds the row, so only one proceeds.
        """
        stmt = _RECORD_UPDATE[self.s.get_bind().dialect.name == "postgresql"]
        params = {"channel": channel, "update_id": update_id, "processed_at": now}
        conn = await self.s.connection()  # Core level: the ORM would take the dict as a bulk insert
        result = await conn.execute(stmt, params)
        return bool(result.rowcount)


class OutboxRepository:
    """The outbox rows: every message that leaves after the request is one `outbox` row and its
    `deliveries` row (status, claim, idempotency key), written together here and nowhere else.
    `bot.messaging.outbox.enqueue` is the way to queue; the sender there moves the rows on."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def insert(
        self,
        rows: Sequence[tuple[int, str, str, dict[str, Any]]],
        *,
        kind: str,
        now: datetime,
        not_before: datetime | None = None,
        broadcast_id: int | None = None,
        attempts: int = 0,
        error: str | None = None,
    ) -> list[int]:
        """Insert (contact_id, channel, external_id, payload) rows, queued; their ids, in order.

        A few multi-row INSERTs whatever the count; the ids come back in the order of `rows`
        (RETURNING with sort_by_parameter_order), which is also the order they will be sent in.
        """
        if not rows:
            return []
        due = not_before or now
        messages = [
            {
                "contact_id": contact_id,
                "channel": channel,
                "external_id": external_id,
                "payload": payload,
                "created_at": now,
                "not_before": not_before,
                "attempts": attempts,
                "error": error,
            }
            for contact_id, channel, external_id, payload in rows
        ]
        stmt = insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True)
        ids = list((await self.s.execute(stmt, messages)).scalars())
        deliveries = [
            {
                "outbox_id": outbox_id,
                "contact_id": contact_id,
                "channel": channel,
                "kind": kind,
                "broadcast_id": broadcast_id,
                "status": QUEUED,
                "due_at": due,
                "idempotency_key": uuid.uuid4().hex,
                "updated_at": now,
            }
            for outbox_id, (contact_id, channel, _, _) in zip(ids, rows, strict=True)
        ]
        await self.s.execute(insert(Delivery), deliveries)
        return ids

    def add(
        self,
        contact_id: int,
        channel: str,
        external_id: str,
        payload: dict[str, Any],
        now: datetime,
        not_before: datetime | None = None,
    ) -> None:
        """One row (kind "other") through the session, without awaiting: the same two rows as
        `insert`, for tests and one-off scripts."""
        message = OutboxMessage(
            contact_id=contact_id,
            channel=channel,
            external_id=external_id,
            payload=payload,
            created_at=now,
            not_before=not_before,
            attempts=0,
        )
        self.s.add(
            Delivery(
                message=message,
                contact_id=contact_id,
                channel=channel,
                kind=KIND_OTHER,
                status=QUEUED,
                due_at=not_before or now,
                idempotency_key=uuid.uuid4().hex,
                updated_at=now,
            )
        )

    async def replies_waiting(self, contact_id: int, channel: str) -> bool:
        """Whether replies to this contact on this channel wait in the outbox (queued or being
        sent): a newer reply must then queue behind them instead of overtaking them."""
        q = select(Delivery.outbox_id).where(
            Delivery.contact_id == contact_id,
            Delivery.status.in_((QUEUED, SENDING)),
            Delivery.channel == channel,
            Delivery.kind == KIND_REPLY,
        )
        return (await self.s.execute(q.limit(1))).first() is not None

    async def pending_for(
        self, channel: str, external_id: str, now: datetime, after_id: int = 0, limit: int = 100
    ) -> tuple[list[OutboxMessage], int]:
        """What a polling client (the web chat page) should show: its rows after `after_id`
        that are due and neither failed nor cancelled, and the cursor to poll from next.

        The cursor never passes a row that is still scheduled (a broadcast for later), so the
        row shows once it is due; rows after it may then come again, and the page skips the ids
        it has shown.
        """
        mine = (
            OutboxMessage.channel == channel,
            OutboxMessage.external_id == external_id,
            OutboxMessage.id > after_id,
            OutboxMessage.failed_at.is_(None),
        )
        due = or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now)
        q = select(OutboxMessage).where(*mine, due).order_by(OutboxMessage.id).limit(limit)
        rows = list((await self.s.execute(q)).scalars())
        waiting = (
            await self.s.execute(
                select(func.min(OutboxMessage.id)).where(*mine, OutboxMessage.not_before > now)
            )
        ).scalar()
        cursor = rows[-1].id if rows else after_id
        if waiting is not None:
            cursor = min(cursor, waiting - 1)
        return rows, max(cursor, after_id)

    async def depth(self, now: datetime) -> list[tuple[str, int, datetime | None]]:
        """Per channel: the messages not yet in a final state (queued or sending), and when the
        oldest of them that is due became due (None when none is due yet). For /metrics."""
        due = case((Delivery.due_at <= now, Delivery.due_at))
        q = (
            select(Delivery.channel, func.count(), func.min(due))
            .where(Delivery.status.in_((QUEUED, SENDING)))
            .group_by(Delivery.channel)
        )
        return [(channel, int(n), oldest) for channel, n, oldest in (await self.s.execute(q)).all()]

    async def status_counts(self, broadcast_ids: Sequence[int]) -> list[tuple[int, str, int]]:
        """(broadcast id, delivery status, how many) for the given broadcasts (/tinhtrang)."""
        q = (
            select(Delivery.broadcast_id, Delivery.status, func.count())
            .where(Delivery.broadcast_id.in_(broadcast_ids))
            .group_by(Delivery.broadcast_id, Delivery.status)
        )
        return [
            (bid, status, int(n)) for bid, status, n in (await self.s.execute(q)).all() if bid is not None
        ]

    async def kept_counts(self, broadcast_ids: Sequence[int]) -> list[tuple[int, str, int]]:
        """(broadcast id, delivery status, how many) of the broadcasts' rows already deleted
        (`delete`): to be added to `status_counts`."""
        q = select(BroadcastCount.broadcast_id, BroadcastCount.status, BroadcastCount.n).where(
            BroadcastCount.broadcast_id.in_(broadcast_ids)
        )
        return [(bid, status, int(n)) for bid, status, n in (await self.s.execute(q)).all()]

    async def delete(self, ids: Sequence[int]) -> int:
        """Delete outbox rows with their deliveries (the nightly prune, a person's erasure);
        the rows deleted. The statuses of the broadcast deliveries deleted are added to
        `broadcast_counts` first, in the same transaction, so a broadcast's figures stay whole.
        The deliveries deleted are the ones counted (DELETE … RETURNING), whoever deleted
        another at the same time."""
        if not ids:
            return 0
        tally: dict[tuple[int, str], int] = {}
        for batch in _batches(ids, 5000):
            gone = await self.s.execute(
                delete(Delivery)
                .where(Delivery.outbox_id.in_(batch))
                .returning(Delivery.broadcast_id, Delivery.status)
                .execution_options(synchronize_session=False)
            )
            for broadcast_id, status in gone.all():
                if broadcast_id is not None:
                    tally[broadcast_id, status] = tally.get((broadcast_id, status), 0) + 1
        if tally:
            is_pg = self.s.get_bind().dialect.name == "postgresql"
            stmt = _insert(is_pg)(BroadcastCount)
            stmt = stmt.on_conflict_do_update(
                index_elements=[BroadcastCount.broadcast_id, BroadcastCount.status],
                set_={"n": BroadcastCount.n + stmt.excluded.n},
            )
            rows = [{"broadcast_id": b, "status": st, "n": n} for (b, st), n in sorted(tally.items())]
            await self.s.execute(stmt, rows)
        deleted = 0
        for batch in _batches(ids, 5000):
            result = await self.s.execute(
                delete(OutboxMessage)
                .where(OutboxMessage.id.in_(batch))
                .execution_options(synchronize_session=False)
            )
            deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return deleted

    async def cancel_queued(
        self,
        now: datetime,
        reason: str,
        *,
        contact_id: int | None = None,
        kinds: Sequence[str] | None = None,
        broadcast_id: int | None = None,
        chat: tuple[str, str] | None = None,
    ) -> int:
        """Cancel the deliveries still queued of a contact (of `kinds`, or only those addressed
        to one `chat`: (channel, external id)) or of a broadcast; messages in flight go on. The
        number cancelled."""
        conditions: list[Any] = []
        if contact_id is not None:
            conditions.append(Delivery.contact_id == contact_id)
        if chat is not None:
            to_chat = select(OutboxMessage.id).where(
                OutboxMessage.channel == chat[0], OutboxMessage.external_id == chat[1]
            )
            conditions.append(Delivery.outbox_id.in_(to_chat))
        if kinds is not None:
            conditions.append(Delivery.kind.in_(kinds))
        if broadcast_id is not None:
            conditions.append(Delivery.broadcast_id == broadcast_id)
        if not conditions:
            raise ValueError("cancel_queued needs a contact or a broadcast")
        stmt = (
            update(Delivery)
            .where(Delivery.status == QUEUED, *conditions)
            .values(status=CANCELLED, updated_at=now)
            .returning(Delivery.outbox_id)
            .execution_options(synchronize_session=False)
        )
        ids = list((await self.s.execute(stmt)).scalars())
        for batch in _batches(ids, 5000):
            await self.s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(batch))
                .values(failed_at=now, error=reason)
                .execution_options(synchronize_session=False)
            )
        return len(ids)

    # -- the sender's moves (bot/messaging/outbox.py: queued → sending → a final state) -------

    async def claimed_elsewhere(
        self, now: datetime, *, older_than: timedelta | None = None, not_by: str | None = None
    ) -> list[tuple[int, str]]:
        """(outbox id, channel) of rows left `sending`: claimed before `now - older_than`, or
        claimed by anyone but `not_by`."""
        q = select(Delivery.outbox_id, Delivery.channel).where(Delivery.status == SENDING)
        if older_than is not None:
            q = q.where(Delivery.claimed_at < now - older_than)
        if not_by is not None:
            q = q.where(Delivery.claimed_by != not_by)
        return [(outbox_id, channel) for outbox_id, channel in (await self.s.execute(q)).all()]

    async def requeue(self, ids: Sequence[int], now: datetime) -> None:
        """Back to queued, due as before (an in-doubt row to send again)."""
        await self.s.execute(
            update(Delivery)
            .where(Delivery.outbox_id.in_(ids))
            .values(status=QUEUED, claimed_by=None, updated_at=now)
        )

    async def due(self, channel: str, now: datetime, limit: int, *, lock: bool) -> list[DueDelivery]:
        """Up to `limit` queued rows of the channel that are due, oldest first, with what the
        sender must check before sending (a block, a stop). Replies come ahead of other rows
        (RapidPro's courier: replies before bulk sends), and a chat's reply only once no earlier
        reply of that chat waits (even one not due yet, after a failed attempt), so a chat's
        replies go out in order. `lock`: FOR UPDATE SKIP LOCKED (PostgreSQL), so that two
        senders never claim the same row."""
        earlier = aliased(Delivery)
        reply_waiting = (
            select(earlier.outbox_id)
            .where(
                earlier.contact_id == Delivery.contact_id,
                earlier.channel == Delivery.channel,
                earlier.kind == KIND_REPLY,
                earlier.status.in_((QUEUED, SENDING)),
                earlier.outbox_id < Delivery.outbox_id,
            )
            .exists()
        )
        q = (
            select(
                Delivery.outbox_id,
                Delivery.contact_id,
                Delivery.kind,
                Delivery.idempotency_key,
                OutboxMessage.external_id,
                OutboxMessage.payload,
                OutboxMessage.attempts,
                ChannelIdentity.blocked_at,
                Subscription.stopped_at,
            )
            .join(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
            .outerjoin(
                ChannelIdentity,
                and_(
                    ChannelIdentity.channel == Delivery.channel,
                    ChannelIdentity.external_id == OutboxMessage.external_id,
                ),
            )
            .outerjoin(Subscription, Subscription.contact_id == Delivery.contact_id)
            .where(Delivery.channel == channel, Delivery.status == QUEUED, Delivery.due_at <= now)
            .where(or_(Delivery.kind != KIND_REPLY, ~reply_waiting))
            .order_by(Delivery.due_at, Delivery.outbox_id)
            .limit(limit)
        )
        if lock:
            q = q.with_for_update(skip_locked=True, of=Delivery)
        found = [DueDelivery(*r) for r in (await self.s.execute(q.where(Delivery.kind == KIND_REPLY))).all()]
        seen = {r.outbox_id for r in found}
        found += [DueDelivery(*r) for r in (await self.s.execute(q)).all() if r.outbox_id not in seen]
        return found

    async def mark_sending(self, ids: Sequence[int], now: datetime, claimed_by: str) -> None:
        """The claim: `sending`, by whom and since when, one more attempt counted."""
        await self.s.execute(
            update(Delivery)
            .where(Delivery.outbox_id.in_(ids))
            .values(status=SENDING, claimed_at=now, claimed_by=claimed_by, updated_at=now)
        )
        await self.s.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(attempts=OutboxMessage.attempts + 1)
        )

    async def finish(self, ids: Sequence[int], status: str, now: datetime, error: str | None) -> None:
        """A final state: the delivery's status, and the outbox row's sent_at or failed_at."""
        await self.s.execute(
            update(Delivery).where(Delivery.outbox_id.in_(ids)).values(status=status, updated_at=now)
        )
        values: dict[str, Any] = (
            {"sent_at": now, "error": None}
            if status == SENT
            else {"failed_at": now, "error": (error or status)[:2000]}
        )
        await self.s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values))

    async def retry_at(
        self, outbox_id: int, due: datetime, now: datetime, *, attempts: int, error: str
    ) -> None:
        """Queued again, due at `due`, with the attempts counted so far and the last error."""
        await self.s.execute(
            update(Delivery)
            .where(Delivery.outbox_id == outbox_id)
            .values(status=QUEUED, due_at=due, claimed_by=None, updated_at=now)
        )
        await self.s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id)
            .values(not_before=due, error=error[:2000], attempts=attempts)
        )


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A due outbox row as the sender claims it (OutboxRepository.due)."""

    outbox_id: int
    contact_id: int
    kind: str
    idempotency_key: str
    external_id: str
    payload: dict[str, Any] | None
    attempts: int
    blocked_at: datetime | None  # the identity blocked the bot
    stopped_at: datetime | None  # the person sent /dung


class ReportFileRepository:
    """Rendered report files, kept once by content hash (storage.models_reports.ReportFile)."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, file_id: int) -> ReportFile | None:
        return await self.s.get(ReportFile, file_id)

    async def store(self, filename: str, content_type: str, data: bytes, now: datetime) -> ReportFile:
        """The file's row, inserted unless the same bytes are stored already."""
        digest = hashlib.sha256(data).hexdigest()
        found = (
            await self.s.execute(select(ReportFile).where(ReportFile.sha256 == digest))
        ).scalar_one_or_none()
        if found is not None:
            found.used_at = now
            return found
        row = ReportFile(
            sha256=digest,
            filename=filename,
            content_type=content_type,
            size=len(data),
            data=data,
            created_at=now,
            used_at=now,
        )
        self.s.add(row)
        await self.s.flush()
        return row
