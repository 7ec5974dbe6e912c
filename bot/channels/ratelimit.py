"""Sending within the platforms' limits: a rate limiter, retries with backoff, per-chat ordering,
and replies that survive an outage.

Limits are per bot token (Telegram: about 30 messages/s overall and 1 per chat per second), so
each channel has one `RateLimiter` per process and every message to that platform goes through
it. The limiter is a GCRA ("virtual scheduling"): each call reserves the earliest slot allowed by
both the overall and the per-chat rate and then sleeps until that slot, so concurrent senders
never race for the same slot and no background task is needed.

A reply to a person's message is tried inside the webhook request for at most
`REPLY_BUDGET_SECONDS` (retries and 429 waits that would end later are not started), so the
webhook answers quickly even when the platform is down. What was not delivered by then goes to
the outbox (kind "reply") and the outbox sender retries it with its backoff; what was delivered
is never recorded, so never sent twice. Per-chat order: while a chat has replies waiting in the
outbox, newer replies are queued behind them without being tried, and the sender sends a chat's
replies strictly in order (bot/messaging/outbox.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from bot.domain.app import App
from bot.domain.messages import Handled, Reply
from bot.domain.sending import Blocked, RateLimited, SendError, TransientError
from bot.messaging.outbox import Outgoing, backoff, enqueue, reply_payload
from storage.models_channels import IdentityState
from storage.models_outreach import KIND_REPLY

log = logging.getLogger(__name__)

T = TypeVar("T")

# Idle chats are forgotten once this many are tracked (a chat is idle when its slot lies in the past).
_PRUNE_AT = 4096
# How long a reply is tried inside the request before it is left to the outbox.
REPLY_BUDGET_SECONDS = 3.0
QUEUED_BEHIND = "queued behind an earlier reply"

# The loop time by which the current send must be over (set around an in-request reply).
_deadline: ContextVar[float | None] = ContextVar("send_deadline", default=None)


def too_late(wait: float) -> bool:
    """Whether waiting `wait` seconds would overrun the current send's deadline, if any."""
    deadline = _deadline.get()
    return deadline is not None and asyncio.get_running_loop().time() + wait > deadline


class _Gcra:
    """One rate: `rate` events per second with bursts of `burst`; rate 0 means no limit."""

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.tolerance = self.interval * (max(burst, 1) - 1)
        self.tat: dict[Hashable, float] = {}  # theoretical arrival time per key

    def reserve(self, key: Hashable, now: float, not_before: float) -> float:
        """Reserve the first slot at or after `not_before`; return its time."""
        if not self.interval:
            return not_before
        tat = self.tat.get(key, now)
        slot = max(not_before, tat - self.tolerance)
        self.tat[key] = max(tat, slot) + self.interval
        return slot

    def try_reserve(self, key: Hashable, now: float) -> float:
        """Take a slot now if there is one (0.0); otherwise reserve nothing and return the wait."""
        if not self.interval:
            return 0.0
        tat = self.tat.get(key, now)
        if tat - self.tolerance > now:
            return tat - self.tolerance - now
        self.tat[key] = max(tat, now) + self.interval
        return 0.0

    def prune(self, now: float) -> None:
        if len(self.tat) > _PRUNE_AT:
            self.tat = {k: v for k, v in self.tat.items() if v > now}


class RateLimiter:
    """At most `rate` messages/s overall, and `chat_rate`/s (bursts of `chat_burst`) per chat.

    `pause(seconds)` holds every send (a 429's retry_after applies to the whole token).
    """

    def __init__(
        self,
        rate: float,
        chat_rate: float,
        chat_burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_limited: Callable[[], None] | None = None,
    ) -> None:
        self._on_limited = on_limited  # counts the platform's 429s (the app's metrics)
        self._overall = _Gcra(rate, 1)
        self._per_chat = _Gcra(chat_rate, chat_burst)
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0

    def limited(self) -> None:
        """The platform answered 429 (whether or not the send is retried)."""
        if self._on_limited is not None:
            self._on_limited()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    async def acquire(self, chat: Hashable | None = None) -> float:
        """Wait for a slot to send one message (to `chat`, or to nobody in particular).

        Returns the seconds waited.
        """
        start = self._clock()
        slot = max(start, self._paused_until)
        if chat is not None:
            slot = self._per_chat.reserve(chat, start, slot)
        slot = self._overall.reserve(None, start, slot)
        self._per_chat.prune(start)
        while (delay := max(slot, self._paused_until) - self._clock()) > 0:
            await self._sleep(delay)
            slot = self._clock()
        return self._clock() - start


class Allowance:
    """At most `per_minute` events a minute per key (bursts of `burst`), refused rather than
    waited for: what one client address may start (new web chat ids). In process memory, so
    per instance: behind N instances a client gets at most N times the rate."""

    def __init__(
        self, per_minute: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._gcra = _Gcra(per_minute / 60.0, burst)
        self._clock = clock

    def take(self, key: Hashable) -> float:
        """0.0 when allowed (and counted); otherwise the seconds until the next one is allowed."""
        now = self._clock()
        wait = self._gcra.try_reserve(key, now)
        self._gcra.prune(now)
        return wait


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: `retries` more attempts after the first, with doubling backoff."""

    retries: int = 3
    backoff: float = 1.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter, so that many senders do not retry in step."""
        base: float = self.backoff * (2**attempt)
        return base * (1 + 0.25 * random.random())


async def with_retries(
    op: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    limiter: RateLimiter | None = None,
    chat: Hashable | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `op` (one platform call) within the rate limit, retrying what is worth retrying.

    `RateLimited`: with a limiter, every send waits `retry_after`, then this one is tried again
    (unless the wait is longer than `policy.max_retry_after`, or retries are used up).
    `TransientError`: retried after a backoff. Anything else propagates at once.
    """
    attempt = 0
    while True:
        if limiter is not None:
            if too_late(limiter.paused_for):
                raise RateLimited(limiter.paused_for)
            await limiter.acquire(chat)
        try:
            return await op()
        except RateLimited as exc:
            if limiter is not None:
                limiter.limited()
            if (
                limiter is None
                or attempt >= policy.retries
                or exc.retry_after > policy.max_retry_after
                or too_late(exc.retry_after)
            ):
                raise
            log.warning("rate limited: waiting %.1fs before retrying", exc.retry_after)
            limiter.pause(exc.retry_after)
        except TransientError as exc:
            wait = policy.delay(attempt)
            if attempt >= policy.retries or too_late(wait):
                raise
            log.warning("send failed (%s): retrying in %.1fs", exc, wait)
            await sleep(wait)
        attempt += 1


def person_tag(external_id: str) -> str:
    """What logs may show of a person's platform id: a short hash, enough to follow one chat."""
    return hashlib.sha256(external_id.encode()).hexdigest()[:8]


class PlatformSender(ABC):
    """What Telegram's and Zalo's senders share: the recipient's language and block mark, and
    replies that survive an outage.

    `send` is the `ChannelSender` protocol (the outbox sender): it reads the recipient's language
    and refuses people who blocked the bot. `reply` answers a message the person has just sent:
    the step that handled it already lifted any block mark and says the language, the contact
    and whether earlier replies wait in the outbox (bot.domain.messages.Handled), so a reply
    reads nothing. It is tried within `REPLY_BUDGET_SECONDS`; what the platform did not take by
    then is queued in the outbox (module docstring), and a reply never overtakes an earlier one
    still waiting there.
    """

    channel: str

    def __init__(self, app: App, policy: RetryPolicy) -> None:
        self.app = app
        self.policy = policy

    @abstractmethod
    async def deliver(self, external_id: str, replies: list[Reply], locale: str) -> None:
        """Render and send; raise the channel errors of bot.domain.sending."""

    async def send(self, external_id: str, replies: list[Reply]) -> None:
        state = await self._state(external_id)
        if state is not None and state.blocked_at is not None:
            raise Blocked(f"{self.channel} {person_tag(external_id)} blocked the bot")
        locale = state.locale if state is not None else self.app.settings.default_locale
        await self._deliver(external_id, replies, locale)

    async def reply(self, external_id: str, handled: Handled) -> None:
        """Send the step's replies (in the caller's per-chat order), or queue them (class docstring)."""
        replies, contact_id = handled.replies, handled.contact_id
        if handled.replies_waiting and contact_id is not None:
            await self._queue(contact_id, external_id, replies, QUEUED_BEHIND, tried=False)
            return
        token = _deadline.set(asyncio.get_running_loop().time() + REPLY_BUDGET_SECONDS)
        try:
            for n, reply in enumerate(replies):
                try:
                    await self._deliver(external_id, [reply], handled.locale)
                except (RateLimited, TransientError) as exc:
                    if contact_id is None:
                        raise
                    await self._queue(contact_id, external_id, replies[n:], str(exc) or type(exc).__name__)
                    return
        except SendError as exc:  # blocked, refused for good, or nobody to queue it for
            log.warning("%s reply to %s not delivered: %s", self.channel, person_tag(external_id), exc)
        finally:
            _deadline.reset(token)

    async def _queue(
        self, contact_id: int, external_id: str, replies: list[Reply], error: str, *, tried: bool = True
    ) -> None:
        """Leave the replies to the outbox sender, in order; `tried`: the first of them met `error`
        in the request, which counts as its first attempt (the next comes after the backoff)."""
        try:
            async with self.app.uow() as uow:
                now = self.app.clock.now()
                payloads = [await reply_payload(uow, r, now) for r in replies]
                messages = [Outgoing(contact_id, self.channel, external_id, p) for p in payloads]
                await enqueue(
                    uow,
                    messages,
                    kind=KIND_REPLY,
                    now=now,
                    not_before=now + backoff(self.app, 1) if tried else None,
                    attempts=1 if tried else 0,
                    error=error,
                )
                await uow.commit()
        except Exception:
            log.exception("%s reply to %s could not be queued", self.channel, person_tag(external_id))
            return
        log.warning(
            "%s reply to %s queued in the outbox (%d messages): %s",
            self.channel,
            person_tag(external_id),
            len(replies),
            error,
        )

    async def set_blocked(self, external_id: str, *, blocked: bool) -> None:
        async with self.app.uow() as uow:
            at = self.app.clock.now() if blocked else None
            if await uow.channels.set_blocked(self.channel, external_id, at):
                await uow.commit()
                log.info(
                    "%s %s %s",
                    self.channel,
                    person_tag(external_id),
                    "blocked the bot" if blocked else "unblocked",
                )

    async def _state(self, external_id: str) -> IdentityState | None:
        # A read-only unit of work: it never waits for SQLite's writer lock.
        async with self.app.read_only() as reads:
            return await reads.channels.identity_state(self.channel, external_id)

    async def _deliver(self, external_id: str, replies: list[Reply], locale: str) -> None:
        try:
            await self.deliver(external_id, replies, locale)
        except Blocked:
            await self.set_blocked(external_id, blocked=True)
            raise
