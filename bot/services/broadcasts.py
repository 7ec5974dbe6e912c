"""Staff broadcasts: who may send to whom, the audience, queueing, cancelling, counting.

Authorisation lives here, not in the dialogue: a member cannot broadcast, a commune officer
reaches only their commune, province staff only their province (Action.BROADCAST in the
permission table). `queue_broadcast` checks the audience against the sender's roles again
whatever the dialogue offered, resolves it, and writes the broadcast, one outbox row per
recipient and the audit row in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.i18n import translator
from bot.domain.permissions import Action, Grant, NotAllowed, area
from bot.messaging.content import item_text
from bot.messaging.outbox import Outgoing, enqueue
from bot.messaging.outreach import footer
from bot.messaging.recipients import members_in_areas
from bot.services.actor import Actor
from storage.models import (
    COMMUNE_OFFICER,
    MEMBER,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    Contact,
    Unit,
)
from storage.models_outreach import (
    BLOCKED,
    CANCELLED,
    FAILED,
    KIND_BROADCAST,
    QUEUED,
    SENDING,
    SENT,
    Broadcast,
    ContentItem,
)
from storage.uow import Reads, UnitOfWork

MEMBERS = "members"
OFFICERS = "officers"
GROUP_ROLES = {
    MEMBERS: (MEMBER,),
    OFFICERS: (VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF),
}
MAX_TEXT = 1500  # with the sender line and footer, under Zalo's 2,000 characters


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives: everyone of `groups` in the subtrees of `unit_ids` (subscribed to one of
    `topics`, when given)."""

    unit_ids: tuple[int, ...]
    groups: tuple[str, ...] = (MEMBERS,)
    topics: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"unit_ids": list(self.unit_ids), "groups": list(self.groups), "topics": list(self.topics)}


@dataclass(frozen=True, slots=True)
class Message:
    """A content item, or a text written by the sender (optionally with a photo link)."""

    item_key: str | None = None
    text: str | None = None
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    contact_id: int
    locale: str
    channel: str
    external_id: str


@dataclass
class Counts:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    cancelled: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.queued + self.sent + self.failed + self.blocked + self.cancelled


def broadcast_areas(grants: Sequence[Grant]) -> list[Unit]:
    """The units a contact may broadcast to (their commune, their province)."""
    return area(grants, Action.BROADCAST)


def may_broadcast(grants: Sequence[Grant]) -> bool:
    return bool(broadcast_areas(grants))


def _sender(actor: Actor) -> Contact:
    """Broadcasts go out in the name of a person of the association, never from the console."""
    actor.require_any(Action.BROADCAST)
    if actor.contact is None:
        raise NotAllowed(Action.BROADCAST, None, "a broadcast needs a sender")
    return actor.contact


async def audience_units(uow: Reads, actor: Actor, audience: Audience) -> list[Unit]:
    """The audience's units, each checked to lie inside the sender's area. Raises NotAllowed."""
    _sender(actor)
    if not audience.unit_ids or not audience.groups or set(audience.groups) - set(GROUP_ROLES):
        raise NotAllowed(Action.BROADCAST, None, "empty or unknown audience")
    units = await uow.units.many(audience.unit_ids)
    if len(units) != len(set(audience.unit_ids)):
        raise NotAllowed(Action.BROADCAST, None, "unknown unit")
    outside = [u for u in units if not actor.may(Action.BROADCAST, u)]
    if outside:
        reason = f"outside the sender's area: {', '.join(u.name for u in outside)}"
        raise NotAllowed(Action.BROADCAST, outside[0], reason)
    return units


async def resolve(
    uow: Reads, units: Sequence[Unit], audience: Audience, exclude_contact_id: int | None = None
) -> list[Recipient]:
    """Everyone the audience names who agreed, did not stop, and has an unblocked identity
    (bot/messaging/recipients.py), and chose one of the audience's topics (or none)."""
    roles = [r for g in audience.groups for r in GROUP_ROLES[g]]
    members = await members_in_areas(
        uow, [u.path for u in units], roles, exclude_contact_id=exclude_contact_id
    )
    wanted = set(audience.topics)
    return [
        Recipient(m.contact_id, m.locale, m.channel, m.external_id)
        for m in members
        if not (wanted and m.topics and not wanted & set(m.topics))  # no topics chosen: all
    ]


async def count_recipients(uow: UnitOfWork, actor: Actor, audience: Audience) -> int:
    """How many people a broadcast to `audience` would reach now (the sender left out)."""
    units = await audience_units(uow, actor, audience)
    return len(await resolve(uow, units, audience, actor.contact_id))


async def articles(uow: Reads, locale: str) -> list[ContentItem]:
    """The library's articles in one language, newest first: what a broadcast may carry."""
    return await uow.content.live(locale)


async def article_translations(uow: UnitOfWork, item_key: str) -> dict[str, ContentItem]:
    return await uow.content.translations(item_key)


def _sender_line(area: Unit, locale: str, groups: Sequence[str]) -> str:
    """Who writes, and to whom: members are addressed together ("bà con"), officers as officers."""
    if MEMBERS in groups:
        return translator(locale)(
            "📢 From the Study Promotion Association of {area}, to everyone:", area=area.name
        )
    return translator(locale)(
        "📢 From the Study Promotion Association of {area}, to its officers:", area=area.name
    )


def compose(
    message: Message,
    area: Unit,
    locale: str,
    items: dict[str, ContentItem],
    default_locale: str = "vi",
    groups: Sequence[str] = (MEMBERS,),
) -> dict[str, Any]:
    """The payload for one language: sender line (to `groups`), the item (in that language when
    it exists) or the text, the photo link, and how to stop."""
    t = translator(locale)
    parts = [_sender_line(area, locale, groups)]
    payload: dict[str, Any] = {}
    if message.item_key is not None:
        item = items.get(locale) or items.get(default_locale) or next(iter(items.values()))
        parts.append(item_text(item))
        payload["item"] = item.item_key
        if item.image:
            payload["image"] = item.image
    else:
        parts.append((message.text or "").strip())
    if message.image_url:
        parts.append("📷 " + message.image_url)
    parts.append(footer(t))
    payload["text"] = "\n\n".join(parts)
    return payload


class BadMessage(ValueError):
    """A message that cannot be sent; `reason` is one of EMPTY, TOO_LONG, NO_ITEM."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


EMPTY, TOO_LONG, NO_ITEM = "empty", "too_long", "no_item"


async def _checked(uow: Reads, message: Message, locale: str) -> tuple[dict[str, ContentItem], str]:
    """The message's article in each language (none for a text) and its title; BadMessage for
    an empty or too long text or an unknown article."""
    if message.item_key is not None:
        items = await uow.content.translations(message.item_key)
        if not items:
            raise BadMessage(NO_ITEM, f"no content item {message.item_key!r}")
        return items, (items.get(locale) or next(iter(items.values()))).title
    if message.text and message.text.strip():
        if len(message.text) > MAX_TEXT:
            raise BadMessage(TOO_LONG, "text too long")
        return {}, message.text.strip().splitlines()[0]
    raise BadMessage(EMPTY, "empty message")


@dataclass(frozen=True, slots=True)
class Preview:
    """A broadcast before it is queued: whom it reaches now (the sender left out, per channel)
    and the outbox payload (bot.messaging.outbox) a recipient reading `locale` will get."""

    area: Unit
    recipients: int
    by_channel: dict[str, int]
    payload: dict[str, Any]


async def preview_broadcast(
    uow: Reads, actor: Actor, audience: Audience, message: Message, locale: str
) -> Preview:
    """What `queue_broadcast` would queue, without writing anything: the same checks (NotAllowed,
    BadMessage), the same recipients and the same `compose`."""
    sender = _sender(actor)
    units = await audience_units(uow, actor, audience)
    items, _ = await _checked(uow, message, locale)
    area = _area_of(actor.grants, units)
    recipients = await resolve(uow, units, audience, sender.id)
    by_channel: dict[str, int] = {}
    for r in recipients:
        by_channel[r.channel] = by_channel.get(r.channel, 0) + 1
    payload = compose(message, area, locale, items, groups=audience.groups)
    return Preview(area, len(recipients), dict(sorted(by_channel.items())), payload)


def _area_of(grants: Sequence[Grant], units: Sequence[Unit]) -> Unit:
    """The sender's broadcast area that holds the audience (the narrowest when several)."""
    areas = [a for a in broadcast_areas(grants) if all(u.path.startswith(a.path) for u in units)]
    return max(areas, key=lambda a: len(a.path))


async def queue_broadcast(
    uow: UnitOfWork,
    actor: Actor,
    audience: Audience,
    message: Message,
    *,
    now: datetime,
    send_at: datetime | None = None,
) -> Broadcast:
    """Check, resolve and queue: the broadcast, its deliveries and the audit row in the
    caller's transaction.

    Raises NotAllowed for a sender or audience outside the rules, BadMessage (a ValueError) for
    an empty or too long message or an unknown content item.
    """
    sender = _sender(actor)
    grants = actor.grants
    units = await audience_units(uow, actor, audience)
    items, title = await _checked(uow, message, sender.locale)
    area = _area_of(grants, units)
    recipients = await resolve(uow, units, audience, sender.id)
    when = send_at if send_at is not None and send_at > now else now
    broadcast = Broadcast(
        created_by_contact_id=sender.id,
        area_unit_id=area.id,
        area_path=area.path,
        audience=audience.as_json(),
        item_key=message.item_key,
        text=message.text,
        image_url=message.image_url,
        title=title[:120],
        recipients=len(recipients),
        send_at=when,
        created_at=now,
    )
    await uow.broadcasts.add(broadcast)
    payloads = {
        loc: compose(message, area, loc, items, groups=audience.groups)
        for loc in {r.locale for r in recipients}
    }
    outgoing = [Outgoing(r.contact_id, r.channel, r.external_id, payloads[r.locale]) for r in recipients]
    await enqueue(
        uow,
        outgoing,
        kind=KIND_BROADCAST,
        now=now,
        not_before=when if when > now else None,
        broadcast_id=broadcast.id,
    )
    actor.audit(
        uow,
        now,
        "broadcast.create",
        broadcast.area_unit_id,
        broadcast=broadcast.id,
        recipients=broadcast.recipients,
        audience=broadcast.audience,
    )
    return broadcast


def may_manage(grants: Sequence[Grant], contact_id: int, broadcast: Broadcast) -> bool:
    """Its author, or staff whose broadcast area holds the broadcast's area."""
    if broadcast.created_by_contact_id == contact_id:
        return True
    return any(broadcast.area_path.startswith(a.path) for a in broadcast_areas(grants))


async def managed_broadcast(uow: UnitOfWork, actor: Actor, broadcast_id: int) -> Broadcast | None:
    """The broadcast, when the actor may follow and cancel it (None otherwise)."""
    broadcast = await uow.broadcasts.get(broadcast_id)
    if broadcast is None or actor.contact is None:
        return None
    return broadcast if may_manage(actor.grants, actor.contact.id, broadcast) else None


async def cancel_broadcast(uow: UnitOfWork, actor: Actor, broadcast_id: int, now: datetime) -> int:
    """Stop what is not yet sent (messages in flight still arrive). Returns rows cancelled."""
    broadcast = await managed_broadcast(uow, actor, broadcast_id)
    if broadcast is None or actor.contact is None:
        raise NotAllowed(Action.BROADCAST, None, "not your broadcast")
    if broadcast.cancelled_at is None:
        broadcast.cancelled_at = now
        broadcast.cancelled_by_contact_id = actor.contact.id
    rows = await uow.outbox.cancel_queued(now, "cancelled", broadcast_id=broadcast_id)
    actor.audit(uow, now, "broadcast.cancel", broadcast=broadcast_id, rows=rows)
    return rows


async def visible_broadcasts(uow: Reads, actor: Actor, limit: int = 5) -> list[Broadcast]:
    """The newest broadcasts the actor wrote or that lie inside their broadcast area."""
    if actor.contact is None:
        return []
    paths = [a.path for a in broadcast_areas(actor.grants)]
    return await uow.broadcasts.newest(actor.contact.id, paths, limit)


async def delivery_counts(uow: Reads, broadcast_ids: Sequence[int]) -> dict[int, Counts]:
    """Queued (waiting or being sent), sent, failed, blocked and cancelled, per broadcast: the
    rows still in the outbox, plus those the nightly prune deleted (kept as counts), so the
    figures do not change when old messages go."""
    out = {bid: Counts() for bid in broadcast_ids}
    if not broadcast_ids:
        return out
    rows = await uow.outbox.status_counts(broadcast_ids) + await uow.outbox.kept_counts(broadcast_ids)
    for bid, status, n in rows:
        c = out[bid]
        c.by_status[status] = c.by_status.get(status, 0) + n
        if status in (QUEUED, SENDING):
            c.queued += n
        elif status == SENT:
            c.sent += n
        elif status == FAILED:
            c.failed += n
        elif status == BLOCKED:
            c.blocked += n
        elif status == CANCELLED:
            c.cancelled += n
    return out
