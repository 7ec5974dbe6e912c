"""Tables of what leaves after the request: the content library, members' subscriptions, staff
broadcasts, the delivery state of outbox rows, and the one log of notices.

`deliveries` sits beside the `outbox` table: one row per outbox row, always written with it
(`OutboxRepository`), holding what the outbox sender needs to deliver it exactly once (its
status, its claim by a sender process, an idempotency key), what it is (`kind`: a broadcast, a
tip, a reminder, a reply…) and what /tinhtrang counts (which broadcast it belongs to).

`broadcast_counts` holds the final delivery counts of a broadcast's rows that the nightly prune
deleted (`sent_message_retention_days`): /tinhtrang and the console add them to the rows still
in the outbox, so the figures do not change when old messages go.

`notices` is what keeps a scheduled message from being queued twice, whichever job, instance or
retry tries again: one row per (contact, key), inserted with the outbox rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models import Base, OutboxMessage

# Content kinds (front matter `kind`).
TIP = "tip"
STORY = "story"
EXPLAINER = "explainer"
CAMPAIGN = "campaign"
CONTENT_KINDS = (TIP, STORY, EXPLAINER, CAMPAIGN)

# Delivery statuses. `sending` is the claim: the row was handed to a channel and the process
# may have died before it learned the outcome (see bot/messaging/outbox.py).
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
BLOCKED = "blocked"
CANCELLED = "cancelled"
DELIVERY_STATUSES = (QUEUED, SENDING, SENT, FAILED, BLOCKED, CANCELLED)

# What caused a delivery. Outreach kinds obey /dung (bot/messaging/recipients.py); officers'
# work notices and replies to a person's own message do not.
KIND_BROADCAST = "broadcast"
KIND_TIP = "tip"
KIND_CAMPAIGN = "campaign"
KIND_NEWS = "news"
KIND_REMINDER = "reminder"
KIND_ESCALATION = "escalation"
KIND_DIGEST = "digest"
KIND_REPORT = "period_report"
KIND_REVIEW = "review"  # a report returned for correction; reports waiting for review
KIND_REPLY = "reply"  # a dialogue reply that could not be delivered inside the request
KIND_OTHER = "other"
OUTREACH_KINDS = (KIND_BROADCAST, KIND_TIP, KIND_CAMPAIGN, KIND_NEWS)


class ContentItem(Base):
    """One article of content/articles in one language. Removed files are retired, not deleted,
    because sent_items and broadcasts keep referring to them."""

    __tablename__ = "content_items"
    __table_args__ = (UniqueConstraint("item_key", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_key: Mapped[str] = mapped_column(String(128))  # front matter `id`, shared by translations
    language: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    audience: Mapped[list[str]] = mapped_column(JSON, default=list)  # roles
    published: Mapped[date | None] = mapped_column(Date)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    image: Mapped[str | None] = mapped_column(String(255))  # a path under content/
    campaign: Mapped[str | None] = mapped_column(String(64))
    campaign_day: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(255))  # the file, relative to content/
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class Subscription(Base):
    """A contact's outreach preferences. No row means: all topics, not stopped."""

    __tablename__ = "subscriptions"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every topic
    stopped_at: Mapped[datetime | None]  # /dung; cleared by /batdau
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SentItem(Base):
    """Which content items a contact has received, for "never the same item twice until all
    have been sent"."""

    __tablename__ = "sent_items"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_sent_at: Mapped[datetime]
    last_sent_at: Mapped[datetime]
    times: Mapped[int] = mapped_column(Integer, default=1)


class Notice(Base):
    """A scheduled message already queued for a contact: jobs may run twice or crash halfway
    and still send each notice once.

    The key names what the message is about: "tip:2026-11-22", "llw:2026:day:3", or for an
    officer's notice about a unit "reminder:village_report.half_year@-3:2026-H1:42"
    (bot/messaging/outbox.py `notice_key`).
    """

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("contact_id", "key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Broadcast(Base):
    """A message from staff to an audience inside their area; its deliveries are queued in the
    same transaction."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_by_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    area_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    area_path: Mapped[str] = mapped_column(String(255), index=True)  # for "inside my area"
    audience: Mapped[dict[str, Any]] = mapped_column(JSON)  # unit_ids, groups, topics
    item_key: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(255))  # what /tinhtrang lists
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    send_at: Mapped[datetime]
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    cancelled_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))


class BroadcastCount(Base):
    """How many deliveries of a broadcast ended in `status` and were then deleted with their
    outbox rows (OutboxRepository.delete): the broadcast's statistics outlive its messages."""

    __tablename__ = "broadcast_counts"
    __table_args__ = (PrimaryKeyConstraint("broadcast_id", "status"),)

    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    status: Mapped[str] = mapped_column(String(16))
    n: Mapped[int] = mapped_column(Integer)


class Delivery(Base):
    """The delivery state of one outbox row (one recipient of one message)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "contact_id"),  # a broadcast reaches a person once
        Index("ix_deliveries_due", "channel", "status", "due_at"),
        Index("ix_deliveries_kind_due", "channel", "kind", "status", "due_at"),  # replies first
        Index("ix_deliveries_broadcast_status", "broadcast_id", "status"),
        Index("ix_deliveries_contact_status", "contact_id", "status"),
        # "Do replies to this person wait on this channel?", asked by every dialogue step: by
        # contact first, so that a long outage with many queued replies costs one index probe.
        Index("ix_deliveries_contact_reply", "contact_id", "channel", "kind", "status"),
    )

    outbox_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("outbox.id"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    # Sent along by channels that can deduplicate (the fake server, the web chat): a resend
    # after a crash is then recognised as the same message.
    idempotency_key: Mapped[str] = mapped_column(String(40))
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]

    # Lets a single row be added with its message in one `session.add` (OutboxRepository.add).
    message: Mapped[OutboxMessage] = relationship(lazy="raise")
