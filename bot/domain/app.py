"""The application object built once by `bot.runtime.bootstrap.bootstrap` (the composition root)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.domain.clock import Clock
from bot.domain.messages import Handled, Incoming
from bot.domain.metrics import Metrics
from bot.domain.sending import ChannelSender
from bot.domain.settings import Settings
from storage.db import Database
from storage.readonly import ReadOnlyUnitOfWork
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.domain.forms.model import Form


# What handles one incoming message: the handlers' dialogue over the incoming-message service,
# wired in by the composition root (the layers below cannot name it).
MessageHandler = Callable[["App", Incoming], Awaitable[Handled]]


@dataclass
class App:
    settings: Settings
    db: Database
    clock: Clock
    forms: dict[str, Form] = field(default_factory=dict)
    handler: MessageHandler | None = None
    # The platform senders of this process by channel (Telegram, Zalo), for the outbox sender:
    # filled by the composition root from the channels that have a token.
    senders: dict[str, ChannelSender] = field(default_factory=dict)
    # Names this process in the outbox's claims, so that a sender recovers only its own.
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    metrics: Metrics = field(default_factory=Metrics)

    async def handle(self, msg: Incoming) -> Handled:
        """Apply one incoming message: the replies, and the language to render them in."""
        if self.handler is None:
            raise RuntimeError("this App has no message handler: build it with bot.runtime.bootstrap")
        return await self.handler(self, msg)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db)

    def read_only(self) -> ReadOnlyUnitOfWork:
        """For heavy reads (compiled reports): no write lock, off the event loop, one snapshot."""
        return ReadOnlyUnitOfWork(self.db)

    @property
    def content_dir(self) -> Path:
        return Path(self.settings.content_dir)
