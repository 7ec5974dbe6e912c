"""Server secrets kept in the database, so that every instance of the bot uses the same one.

Today one: the key under which web chat client ids are stored (bot.channels.webchat), made at
the first start unless the operator sets WEBCHAT_ID_SECRET, which keeps it out of the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

WEBCHAT_ID_KEY = "webchat_id"


class ServerSecret(Base):
    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class SecretRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get_or_create(self, name: str, make: Callable[[], str], now: datetime) -> str:
        """The secret `name`; made with `make()` and stored when there is none. Two instances
        starting at once agree: the second insert fails and reads the first one's value."""
        found = await self.s.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
        if found is not None:
            return found
        try:
            async with self.s.begin_nested():
                self.s.add(ServerSecret(name=name, value=make(), created_at=now))
        except IntegrityError:
            pass
        value = await self.s.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
        assert value is not None
        return value
