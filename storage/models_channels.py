"""Tables and queries of the channels work: one-time link codes, and the per-identity delivery state.

A person may use Zalo and Telegram (and the web chat) as one contact: `/lienket` shows a short-lived
code on one channel, typing it on another moves that channel's identity to the same contact.

`ChannelRepository` takes a session (`uow.session` inside a unit of work, or a plain read-only
session); like every repository it flushes but never commits.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, ChannelIdentity, Contact, OutboxMessage, RoleGrant


class LinkCode(Base):
    """A one-time code that attaches another channel identity to `contact_id`."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # where the code was shown
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))


@dataclass(frozen=True, slots=True)
class IdentityState:
    """What a sender needs to know about one recipient before sending."""

    contact_id: int
    locale: str
    blocked_at: datetime | None


class ChannelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # ------------------------------------------------------------------ delivery state

    async def identity_state(self, channel: str, external_id: str) -> IdentityState | None:
        """One indexed read: the recipient's language and whether they blocked the bot."""
        q = (
            select(ChannelIdentity.contact_id, Contact.locale, ChannelIdentity.blocked_at)
            .join(Contact, Contact.id == ChannelIdentity.contact_id)
            .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
        )
        row = (await self.s.execute(q)).first()
        return None if row is None else IdentityState(row[0], row[1], row[2])

    async def set_blocked(self, channel: str, external_id: str, at: datetime | None) -> bool:
        """Mark (at = when) or clear (at = None) a block; True when a row changed."""
        q = update(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
        q = q.where(
            ChannelIdentity.blocked_at.is_(None)
            if at is not None
            else ChannelIdentity.blocked_at.is_not(None)
        )
        result = await self.s.execute(q.values(blocked_at=at))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ link codes

    async def code_exists(self, code: str) -> bool:
        return (await self.s.execute(select(LinkCode.id).where(LinkCode.code == code))).first() is not None

    async def add_code(self, link: LinkCode) -> LinkCode:
        self.s.add(link)
        await self.s.flush()
        return link

    async def code_for_update(self, code: str) -> LinkCode | None:
        """The code row, locked on PostgreSQL so that two channels cannot both use it."""
        q = select(LinkCode).where(LinkCode.code == code).with_for_update()
        return (await self.s.execute(q)).scalar_one_or_none()

    async def use_code(self, link: LinkCode, identity_id: int, now: datetime) -> bool:
        """Spend the code once; False when another transaction spent it first."""
        result = await self.s.execute(
            update(LinkCode)
            .where(LinkCode.id == link.id, LinkCode.used_at.is_(None))
            .values(used_at=now, used_by_identity_id=identity_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def identity(self, channel: str, external_id: str) -> ChannelIdentity | None:
        q = select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
        return (await self.s.execute(q)).scalar_one_or_none()

    async def revoke_identity(
        self, identity: ChannelIdentity, tombstone: str, now: datetime, old_ids: Collection[str]
    ) -> None:
        """Give the identity (and the outbox rows addressed to it, in any of `old_ids`) the id
        `tombstone`, and mark it as not to be sent to (bot.services.sessions)."""
        await self.s.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.contact_id == identity.contact_id,
                OutboxMessage.channel == identity.channel,
                OutboxMessage.external_id.in_(list(old_ids)),
            )
            .values(external_id=tombstone)
            .execution_options(synchronize_session=False)
        )
        identity.external_id = tombstone
        identity.blocked_at = now
        await self.s.flush()

    async def move_identity(self, identity: ChannelIdentity, contact_id: int) -> None:
        identity.contact_id = contact_id
        await self.s.flush()

    async def detach_identity(self, identity: ChannelIdentity, now: datetime, locale: str) -> Contact:
        """Move the identity to a new contact of its own (not registered, nothing but the chat):
        the chat starts afresh, the contact it leaves keeps everything else."""
        contact = Contact(locale=locale, created_at=now, last_seen_at=now)
        self.s.add(contact)
        await self.s.flush()
        await self.move_identity(identity, contact.id)
        return contact

    async def active_grants(self, contact_id: int) -> list[RoleGrant]:
        q = select(RoleGrant).where(RoleGrant.contact_id == contact_id, RoleGrant.revoked_at.is_(None))
        return list((await self.s.execute(q)).scalars())
