"""What every sending channel offers: one way to deliver replies to one person, and typed errors.

Dialogue replies are sent right after the transaction that produced them commits (what the
platform does not take at once goes to the outbox); broadcasts and reminders go through the
outbox, whose sender calls the same `ChannelSender.send`. Rate limits are per bot token, so each
channel has one sender (and one limiter) per process.
"""

from __future__ import annotations

from typing import Protocol

from bot.domain.messages import Reply


class SendError(Exception):
    """Delivery failed."""


class RateLimited(SendError):
    """The platform said 429: wait `retry_after` seconds before sending again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after}s")
        self.retry_after = retry_after


class Blocked(SendError):
    """The person blocked the bot (or left): send nothing more until they write again."""


class TransientError(SendError):
    """Network trouble or a 5xx: worth retrying with backoff."""


class PermanentError(SendError):
    """The platform refused the message for good (bad request): retrying will not help."""


class ChannelSender(Protocol):
    channel: str

    async def send(self, external_id: str, replies: list[Reply]) -> None:
        """Deliver the replies in order, rendered with the channel's capabilities.

        Raises RateLimited, Blocked, TransientError or PermanentError.
        """
        ...
