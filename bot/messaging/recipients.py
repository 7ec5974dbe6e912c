"""Who receives what leaves after the request, and where: the one recipient resolver.

Three questions, answered here for every sender (broadcasts, outreach, reminders, digests,
compiled reports):

* Who holds which role where: `officers` (role holders on units or kinds of units) and
  `members_in_areas` (role holders anywhere inside some subtrees).
* Which channel identity: an officer's work notices go to every channel they use
  (`Officer.identities`), outreach to one preferred identity per person (`pick_identity`:
  Zalo first, then Telegram, then the web chat; the newest among equals). Identities that
  blocked the bot are never chosen.
* Who said stop: `outreach_allowed` keeps only people who agreed (consent) and did not send
  /dung; the outbox sender cancels queued outreach of people who stopped since (`obeys_stop`).
  Officers' deadline reminders, escalations, digests and compiled reports are work, not
  outreach: /dung does not stop them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.reports.aggregate import UnitRef
from storage.models import ChannelIdentity, Contact, RoleGrant, Unit
from storage.models_outreach import OUTREACH_KINDS, Subscription

# Zalo first: the messenger officers and villagers use every day (DOMAIN.md); Telegram is
# restricted in Vietnam; the web chat is for demos. Other channels come after, newest first.
CHANNEL_PREFERENCE = ("zalo", "telegram", "webchat")
_IN_CHUNK = 5000


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def obeys_stop(kind: str) -> bool:
    """Whether a delivery of this kind is cancelled for someone who sent /dung."""
    return kind in OUTREACH_KINDS


# ------------------------------------------------------------------------------ identities


def pick_identity(rows: Sequence[tuple[str, str, datetime]]) -> tuple[str, str] | None:
    """The identity to write to, from (channel, external_id, created_at) of unblocked ones."""
    if not rows:
        return None

    def rank(row: tuple[str, str, datetime]) -> tuple[int, float]:
        channel, _, created = row
        known = channel in CHANNEL_PREFERENCE
        order = CHANNEL_PREFERENCE.index(channel) if known else len(CHANNEL_PREFERENCE)
        return order, -created.timestamp()

    channel, external_id, _ = min(rows, key=rank)
    return channel, external_id


async def _identities(
    session: AsyncSession, contact_ids: Sequence[int]
) -> dict[int, list[tuple[str, str, datetime]]]:
    """Each contact's unblocked identities (channel, external_id, created_at), oldest first."""
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
        for cid, channel, ext, created in (await session.execute(q)).all():
            found.setdefault(cid, []).append((channel, ext, created))
    return found


async def reachable(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Each contact's preferred identity that has not blocked the bot; absent when none."""
    out: dict[int, tuple[str, str]] = {}
    for cid, rows in (await _identities(session, contact_ids)).items():
        picked = pick_identity(rows)
        if picked is not None:
            out[cid] = picked
    return out


# ------------------------------------------------------------------------------ outreach


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


@dataclass(frozen=True, slots=True)
class Member:
    """Someone outreach may write to, at their preferred identity."""

    contact_id: int
    locale: str
    topics: tuple[str, ...]
    channel: str
    external_id: str


async def members_in_areas(
    session: AsyncSession,
    area_paths: Sequence[str],
    roles: Sequence[str],
    *,
    exclude_contact_id: int | None = None,
) -> list[Member]:
    """Everyone holding one of `roles` inside the subtrees at `area_paths`, who agreed, did not
    stop, and has an unblocked identity; by contact id."""
    inside = or_(*(Unit.path.like(path + "%") for path in area_paths))
    q = (
        select(Contact.id, Contact.locale, Subscription.topics)
        .outerjoin(Subscription, Subscription.contact_id == Contact.id)
        .where(outreach_allowed(), holds_role(roles, inside))
        .order_by(Contact.id)
    )
    if exclude_contact_id is not None:
        q = q.where(Contact.id != exclude_contact_id)
    people = (await session.execute(q)).all()
    where = await reachable(session, [cid for cid, _, _ in people])
    return [
        Member(cid, locale, tuple(topics or ()), *where[cid])
        for cid, locale, topics in people
        if cid in where
    ]


# ------------------------------------------------------------------------------ officers


@dataclass(frozen=True, slots=True)
class Officer:
    """An officer in a role on a unit, with every channel to reach them."""

    contact_id: int
    locale: str
    role: str
    unit: UnitRef
    identities: tuple[tuple[str, str], ...]  # (channel, external_id), not blocked


async def officers(
    session: AsyncSession,
    roles: Sequence[str],
    *,
    unit_ids: Sequence[int] | None = None,
    unit_kinds: Sequence[str] | None = None,
) -> list[Officer]:
    """Active role holders (on `unit_ids`, or on units of `unit_kinds`) reachable on some channel.

    No consent or /dung filter: these are the officers' work notices.
    """
    base = (
        select(RoleGrant.role, Contact.id, Contact.locale, Unit)
        .join(Contact, Contact.id == RoleGrant.contact_id)
        .join(Unit, Unit.id == RoleGrant.unit_id)
        .where(RoleGrant.role.in_(roles), RoleGrant.revoked_at.is_(None))
        .order_by(RoleGrant.contact_id, RoleGrant.unit_id)
    )
    if unit_kinds is not None:
        base = base.where(Unit.kind.in_(unit_kinds))
    rows: list[Any] = []
    if unit_ids is None:
        rows = list((await session.execute(base)).all())
    else:
        for chunk in _chunks(sorted(set(unit_ids)), 500):
            rows += (await session.execute(base.where(RoleGrant.unit_id.in_(chunk)))).all()
    reach = await _identities(session, [cid for _, cid, _, _ in rows])
    return [
        Officer(cid, locale, role, UnitRef.of(unit), tuple((c, e) for c, e, _ in reach[cid]))
        for role, cid, locale, unit in rows
        if reach.get(cid)
    ]
