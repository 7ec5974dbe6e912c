"""Queries of what leaves after the request, besides the outbox rows themselves: the notices
that keep a scheduled message from going twice, who may be written to where (recipients), the
content library and which items each person has had.

The rules stay in bot/messaging (which identity to prefer, which kinds obey /dung, what a
target is); these classes only answer questions of the tables. Like every repository they flush
but never commit. `RecipientRepository`, `NoticeRepository` and `ContentRepository` only read
(apart from `NoticeRepository.record` and `ContentRepository.add`), so the read-only unit of
work carries them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChannelIdentity, Contact, RoleGrant, Unit
from storage.models_outreach import ContentItem, Notice, SentItem, Subscription

_NOTICE_CHUNK = 1000
_IN_CHUNK = 5000


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _insert(session: AsyncSession) -> Any:
    """INSERT with the dialect's ON CONFLICT spelling."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


class NoticeRepository:
    """The one log of notices: (contact, key) of every scheduled message already queued."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def noticed(self, contact_id: int, keys: Iterable[str]) -> set[str]:
        """Which of `keys` the contact already had."""
        wanted = list(keys)
        found: set[str] = set()
        for batch in _chunks(wanted, _NOTICE_CHUNK):
            q = select(Notice.key).where(Notice.contact_id == contact_id, Notice.key.in_(batch))
            found |= set((await self.s.execute(q)).scalars())
        return found

    async def record(self, keyed: Sequence[tuple[int, str]], now: datetime) -> set[tuple[int, str]]:
        """Insert the (contact, key) notices; those that were new. ON CONFLICT DO NOTHING: of
        two transactions racing (two instances, a re-run), only one gets each notice back."""
        fresh: set[tuple[int, str]] = set()
        insert_ = _insert(self.s)
        for batch in _chunks(keyed, _NOTICE_CHUNK):
            stmt = (
                insert_(Notice)
                .values([{"contact_id": c, "key": k, "created_at": now} for c, k in batch])
                .on_conflict_do_nothing(index_elements=["contact_id", "key"])
                .returning(Notice.contact_id, Notice.key)
            )
            fresh |= {(c, k) for c, k in (await self.s.execute(stmt)).all()}
        return fresh


class SentItemRepository:
    """Which content items each contact has had (never the same item twice until all were)."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def sent(self, contact_ids: Sequence[int]) -> dict[int, dict[str, datetime]]:
        """Per contact: item key → when it was last sent to them."""
        out: dict[int, dict[str, datetime]] = {}
        for ids in _chunks(list(contact_ids)):
            q = select(SentItem.contact_id, SentItem.item_key, SentItem.last_sent_at)
            q = q.where(SentItem.contact_id.in_(ids))
            for cid, key, at in (await self.s.execute(q)).all():
                out.setdefault(cid, {})[key] = at
        return out

    async def record(self, pairs: Sequence[tuple[int, str]], now: datetime) -> None:
        """Remember that these (contact, item key) pairs were sent."""
        if not pairs:
            return
        insert_ = _insert(self.s)
        for batch in _chunks(list(pairs), 1000):
            stmt = insert_(SentItem).values(
                [
                    {"contact_id": c, "item_key": k, "first_sent_at": now, "last_sent_at": now, "times": 1}
                    for c, k in batch
                ]
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["contact_id", "item_key"],
                set_={"last_sent_at": stmt.excluded.last_sent_at, "times": SentItem.times + 1},
            )
            await self.s.execute(stmt)


class ContentRepository:
    """The content library as loaded into `content_items` (bot/messaging/content.py)."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def every(self) -> list[ContentItem]:
        """Every row, retired ones included."""
        return list((await self.s.execute(select(ContentItem))).scalars())

    def add(self, item: ContentItem) -> None:
        self.s.add(item)

    async def flush(self) -> None:
        await self.s.flush()

    async def live(self, language: str | None = None) -> list[ContentItem]:
        """Items not retired, newest first (optionally of one language)."""
        q = select(ContentItem).where(ContentItem.retired_at.is_(None))
        if language is not None:
            q = q.where(ContentItem.language == language)
        q = q.order_by(ContentItem.published.desc(), ContentItem.item_key)
        return list((await self.s.execute(q)).scalars())

    async def translations(self, item_key: str) -> dict[str, ContentItem]:
        """An item in each language it exists in (retired ones included: a broadcast may name one)."""
        q = select(ContentItem).where(ContentItem.item_key == item_key)
        return {r.language: r for r in (await self.s.execute(q)).scalars()}


def outreach_allowed() -> ColumnElement[bool]:
    """The condition on `Contact` for outreach: agreed to the terms, and no /dung in force."""
    stopped = (
        select(Subscription.contact_id)
        .where(Subscription.contact_id == Contact.id, Subscription.stopped_at.is_not(None))
        .correlate(Contact)
    )
    return and_(Contact.consent_at.is_not(None), ~stopped.exists())


def holds_role(roles: Sequence[str], *where: ColumnElement[bool]) -> ColumnElement[bool]:
    """The condition on `Contact`: an active grant of one of `roles` (on units matching `where`)."""
    q = select(RoleGrant.id).where(
        RoleGrant.contact_id == Contact.id, RoleGrant.role.in_(roles), RoleGrant.revoked_at.is_(None)
    )
    if where:
        q = q.join(Unit, Unit.id == RoleGrant.unit_id).where(*where)
    return q.correlate(Contact).exists()


class RecipientRepository:
    """Who holds which role where, how to reach them, and who may receive outreach: the
    queries behind bot/messaging/recipients.py, the one recipient resolver."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def identities(self, contact_ids: Sequence[int]) -> dict[int, list[tuple[str, str, datetime]]]:
        """Each contact's identities that have not blocked the bot (channel, external_id,
        created_at), oldest first; contacts without one are absent."""
        found: dict[int, list[tuple[str, str, datetime]]] = {}
        for ids in _chunks(sorted(set(contact_ids))):
            q = (
                select(
                    ChannelIdentity.contact_id,
                    ChannelIdentity.channel,
                    ChannelIdentity.external_id,
                    ChannelIdentity.created_at,
                )
                .where(ChannelIdentity.contact_id.in_(ids), ChannelIdentity.blocked_at.is_(None))
                .order_by(ChannelIdentity.id)
            )
            for cid, channel, ext, created in (await self.s.execute(q)).all():
                found.setdefault(cid, []).append((channel, ext, created))
        return found

    async def outreach_in_areas(
        self, area_paths: Sequence[str], roles: Sequence[str], *, exclude_contact_id: int | None = None
    ) -> list[tuple[int, str, tuple[str, ...]]]:
        """(contact id, locale, topics) of everyone holding one of `roles` inside the subtrees at
        `area_paths` who may receive outreach, by contact id."""
        inside = or_(*(Unit.path.like(path + "%") for path in area_paths))
        q = (
            select(Contact.id, Contact.locale, Subscription.topics)
            .outerjoin(Subscription, Subscription.contact_id == Contact.id)
            .where(outreach_allowed(), holds_role(roles, inside))
            .order_by(Contact.id)
        )
        if exclude_contact_id is not None:
            q = q.where(Contact.id != exclude_contact_id)
        return [(cid, locale, tuple(topics or ())) for cid, locale, topics in (await self.s.execute(q)).all()]

    async def role_holders(
        self,
        roles: Sequence[str],
        *,
        unit_ids: Sequence[int] | None = None,
        unit_kinds: Sequence[str] | None = None,
    ) -> list[tuple[str, int, str, Unit]]:
        """(role, contact id, locale, unit) of the active grants of `roles` (on `unit_ids`, or
        on units of `unit_kinds`), by contact and unit. No consent or /dung filter."""
        base = (
            select(RoleGrant.role, Contact.id, Contact.locale, Unit)
            .join(Contact, Contact.id == RoleGrant.contact_id)
            .join(Unit, Unit.id == RoleGrant.unit_id)
            .where(RoleGrant.role.in_(roles), RoleGrant.revoked_at.is_(None))
            .order_by(RoleGrant.contact_id, RoleGrant.unit_id)
        )
        if unit_kinds is not None:
            base = base.where(Unit.kind.in_(unit_kinds))
        rows: list[tuple[str, int, str, Unit]] = []
        batches = [None] if unit_ids is None else _chunks(sorted(set(unit_ids)), 500)
        for batch in batches:
            q = base if batch is None else base.where(RoleGrant.unit_id.in_(batch))
            rows += [(role, cid, locale, unit) for role, cid, locale, unit in (await self.s.execute(q)).all()]
        return rows

    async def outreach_without_notice(
        self, roles: Sequence[str], key: str, after: int, limit: int
    ) -> list[tuple[int, str, tuple[str, ...], tuple[str, ...]]]:
        """The next contacts (by id, after `after`, at most `limit`) holding one of `roles`, who
        may receive outreach and have no notice `key` yet: (contact id, locale, topics, paths of
        the units of those roles)."""
        noticed = select(Notice.id).where(Notice.contact_id == Contact.id, Notice.key == key)
        ids_q = (
            select(Contact.id)
            .where(Contact.id > after, outreach_allowed(), holds_role(roles), ~noticed.exists())
            .order_by(Contact.id)
            .limit(limit)
        )
        ids = list((await self.s.execute(ids_q)).scalars())
        if not ids:
            return []
        grant = and_(
            RoleGrant.contact_id == Contact.id, RoleGrant.role.in_(roles), RoleGrant.revoked_at.is_(None)
        )
        q = (
            select(Contact.id, Contact.locale, Subscription.topics, Unit.path)
            .join(RoleGrant, grant)
            .join(Unit, Unit.id == RoleGrant.unit_id)
            .outerjoin(Subscription, Subscription.contact_id == Contact.id)
            .where(Contact.id.in_(ids))
        )
        rows: dict[int, tuple[str, tuple[str, ...], list[str]]] = {}
        for cid, locale, topics, path in (await self.s.execute(q)).all():
            entry = rows.setdefault(cid, (locale, tuple(topics or ()), []))
            entry[2].append(path)
        return [(cid, rows[cid][0], rows[cid][1], tuple(rows[cid][2])) for cid in ids if cid in rows]
