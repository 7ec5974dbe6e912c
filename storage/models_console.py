"""The staff console's credentials: one-time login links and browser sessions (issue 12).

The console has no passwords. An officer sends /web in the chat and gets a link holding a random
token (`console_links`): single use, valid for minutes, bound to the contact. Following it opens a
session (`console_sessions`): another random token, kept in an HttpOnly cookie, with the CSRF
token of its forms. Only SHA-256 hashes of the tokens are stored, so a copy of the database opens
no session. Taking a link is one UPDATE … WHERE used_at IS NULL, so two clicks cannot both win.

Import Base from storage.models; storage.schema imports this module.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

TOKEN_BYTES = 32  # 256 random bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleLink(Base):
    """A one-time login link, sent in the chat to the contact who asked for it."""

    __tablename__ = "console_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A browser logged in to the console."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's token
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(8))  # None: the contact's chat language
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]


class ConsoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def new_link(self, contact_id: int, now: datetime, ttl: timedelta) -> str:
        """A new link token for `contact_id`, valid for `ttl`."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.s.add(
            ConsoleLink(id=token_hash(token), contact_id=contact_id, created_at=now, expires_at=now + ttl)
        )
        await self.s.flush()
        return token

    async def take_link(self, token: str, now: datetime) -> int | None:
        """The contact of an unused, unexpired link, which is used up; None otherwise."""
        stmt = (
            update(ConsoleLink)
            .where(
                ConsoleLink.id == token_hash(token),
                ConsoleLink.used_at.is_(None),
                ConsoleLink.expires_at > now,
            )
            .values(used_at=now)
            .returning(ConsoleLink.contact_id)
            .execution_options(synchronize_session=False)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def new_session(self, contact_id: int, now: datetime, lifetime: timedelta) -> tuple[str, str]:
        """(the cookie's token, the CSRF token) of a new session."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        csrf = secrets.token_urlsafe(TOKEN_BYTES)
        self.s.add(
            ConsoleSession(
                id=token_hash(token),
                contact_id=contact_id,
                csrf=csrf,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        await self.s.flush()
        return token, csrf

    async def session(self, token: str, now: datetime) -> ConsoleSession | None:
        """The live session of a cookie's token (not ended, not expired)."""
        q = select(ConsoleSession).where(
            ConsoleSession.id == token_hash(token),
            ConsoleSession.ended_at.is_(None),
            ConsoleSession.expires_at > now,
        )
        return (await self.s.execute(q)).scalar_one_or_none()

    async def end(self, token: str, now: datetime) -> int | None:
        """End the session (log out); its contact, or None when it was not live."""
        stmt = (
            update(ConsoleSession)
            .where(ConsoleSession.id == token_hash(token), ConsoleSession.ended_at.is_(None))
            .values(ended_at=now)
            .returning(ConsoleSession.contact_id)
            .execution_options(synchronize_session=False)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def set_locale(self, token: str, locale: str) -> None:
        await self.s.execute(
            update(ConsoleSession)
            .where(ConsoleSession.id == token_hash(token))
            .values(locale=locale)
            .execution_options(synchronize_session=False)
        )

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` links and up to `limit` sessions that expired (or, for sessions,
        ended) before `before`; the rows deleted."""
        links = select(ConsoleLink.id).where(ConsoleLink.expires_at < before).limit(limit)
        sessions = (
            select(ConsoleSession.id)
            .where(or_(ConsoleSession.expires_at < before, ConsoleSession.ended_at < before))
            .limit(limit)
        )
        deleted = 0
        for model, ids in ((ConsoleLink, links), (ConsoleSession, sessions)):
            result = await self.s.execute(
                delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
            )
            deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return deleted
