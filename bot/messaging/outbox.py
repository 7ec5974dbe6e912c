"""The outbox: messages committed with what caused them, and the sender that delivers them.

Queueing (`enqueue`) writes one `outbox` row and one `deliveries` row per recipient inside the
caller's transaction, so a broadcast, a weekly tip or a reminder exists exactly when the change
that caused it does.

Sending (`OutboxSender`) works through due rows, channel by channel, with a few sends in flight
per channel; the channel senders (bot/channels) keep the platforms' rate limits. Each row goes:

    queued --claim (commit)--> sending --send--> sent | blocked | failed | queued (retry later)

The claim is committed before the platform call and the outcome after it. A process killed
between the two leaves the row `sending`: the message may or may not have reached the person,
and no database can tell. What happens to such an *in-doubt* row on restart decides the
guarantee, and it depends on the channel:

* Channels that deduplicate (`idempotent = True` and `send_keyed`): the row is sent again with
  the same idempotency key, and the channel delivers it once. Exactly once per recipient.
  The web chat (the page reads the outbox itself) and the test channel server are such channels.
* Telegram and Zalo take no idempotency key. With `outbox_in_doubt = "skip"` (the default) an
  in-doubt row is not resent but marked failed ("in doubt"), so nobody gets a message twice;
  with "resend" it is sent again, so nobody misses one. Either way a crash affects at most the
  rows in flight at that moment (`outbox_concurrency` per channel), and /tinhtrang shows them.

Failed sends (network, 5xx) are retried with doubling backoff up to `outbox_max_attempts`, then
marked failed with the reason; a 429 postpones the row by its retry_after without counting an
attempt; a block marks the identity blocked and the row `blocked`. Rows of people who stopped
outreach (/dung) are cancelled instead of sent.

One sender per channel at a time: rate limits are per bot token (DESIGN.md), and recovery
treats every `sending` row claimed by another process as in doubt. On PostgreSQL claims use
FOR UPDATE SKIP LOCKED, so a second sender would not double-send a queued row either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.app import App
from bot.domain.messages import Attachment, Option, Reply
from bot.messaging.sending import Blocked, ChannelSender, PermanentError, RateLimited, SendError
from storage.models import ChannelIdentity, OutboxMessage
from storage.models_outreach import (
    BLOCKED,
    CANCELLED,
    FAILED,
    KIND_OTHER,
    OUTREACH_KINDS,
    QUEUED,
    SENDING,
    SENT,
    Delivery,
    Subscription,
)

log = logging.getLogger(__name__)

WEBCHAT = "webchat"
IN_DOUBT_ERROR = "in doubt: the sender stopped while sending; not resent to avoid a duplicate"
_ADOPT_BATCH = 1000
_IDLE_MAX_SECONDS = 5.0
_SEND_TIMEOUT_SECONDS = 120.0  # longer than any channel's HTTP timeout and retries


# ------------------------------------------------------------------------------ queueing


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for one person on one channel."""

    contact_id: int
    channel: str
    external_id: str
    payload: dict[str, Any]


async def enqueue(
    session: AsyncSession,
    messages: Sequence[Outgoing],
    *,
    kind: str,
    now: datetime,
    not_before: datetime | None = None,
    broadcast_id: int | None = None,
) -> int:
    """Queue the messages in the caller's transaction (nothing is committed here).

    One message per contact per call: the outbox ids are matched back to their deliveries by
    contact, which is what lets 100,000 rows go in as a few multi-row INSERTs.
    """
    if not messages:
        return 0
    by_contact = {m.contact_id: m for m in messages}
    if len(by_contact) != len(messages):
        raise ValueError("enqueue takes one message per contact")
    due = not_before or now
    rows = [
        {
            "contact_id": m.contact_id,
            "channel": m.channel,
            "external_id": m.external_id,
            "payload": m.payload,
            "created_at": now,
            "not_before": not_before,
            "attempts": 0,
        }
        for m in messages
    ]
    result = await session.execute(
        insert(OutboxMessage).returning(OutboxMessage.id, OutboxMessage.contact_id), rows
    )
    deliveries = [
        {
            "outbox_id": outbox_id,
            "contact_id": contact_id,
            "channel": by_contact[contact_id].channel,
            "kind": kind,
            "broadcast_id": broadcast_id,
            "status": QUEUED,
            "due_at": due,
            "idempotency_key": uuid.uuid4().hex,
            "updated_at": now,
        }
        for outbox_id, contact_id in result.all()
    ]
    await session.execute(insert(Delivery), deliveries)
    return len(deliveries)


def payload_replies(payload: dict[str, Any], content_dir: Path) -> list[Reply]:
    """An outbox payload ({"text", "options": [{"id", "label"}], "image"}) as replies."""
    options = [
        Option(str(o.get("id", "")), str(o.get("label", "")))
        for o in payload.get("options") or []
        if isinstance(o, dict)
    ]
    attachments = []
    image = payload.get("image")
    if isinstance(image, str):
        path = content_dir / image
        if path.is_file() and content_dir.resolve() in path.resolve().parents:
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            attachments.append(Attachment(path.name, kind, path.read_bytes()))
    return [Reply(str(payload.get("text", "")), options, attachments)]


async def load_replies(session: AsyncSession, payload: dict[str, Any], content_dir: Path) -> list[Reply]:
    """`payload_replies`, with the files a payload names by id (compiled reports) read in."""
    from bot.messaging.notices import attachments_of  # the reports package is heavy; load on use

    replies = payload_replies(payload, content_dir)
    if payload.get("attachments"):
        replies[0].attachments.extend(await attachments_of(session, payload))
    return replies


# ------------------------------------------------------------------------------ senders


@runtime_checkable
class KeyedSender(Protocol):
    """A channel that recognises a resent message by its key and delivers it once."""

    channel: str
    idempotent: bool

    async def send_keyed(self, key: str, external_id: str, replies: list[Reply]) -> None: ...


class WebchatSender:
    """The web chat page polls the outbox itself (GET /api/webchat/poll reads every row of its
    client, sent or not), so a committed row is already on its way: "sending" it only records
    that. Resending is harmless, hence idempotent."""

    channel = WEBCHAT
    idempotent = True

    async def send(self, external_id: str, replies: list[Reply]) -> None:
        return None

    async def send_keyed(self, key: str, external_id: str, replies: list[Reply]) -> None:
        return None


def is_idempotent(sender: ChannelSender) -> bool:
    return isinstance(sender, KeyedSender) and bool(sender.idempotent)


# ------------------------------------------------------------------------------ the sender


@dataclass(frozen=True, slots=True)
class Claimed:
    outbox_id: int
    contact_id: int
    channel: str
    external_id: str
    payload: dict[str, Any]
    key: str
    attempts: int


@dataclass(slots=True)
class Outcome:
    row: Claimed
    status: str  # SENT, BLOCKED, FAILED, QUEUED (retry)
    error: str | None = None
    retry_after: float | None = None  # a 429: postpone without counting an attempt


@dataclass
class Recovery:
    requeued: int = 0
    in_doubt: int = 0


@dataclass
class _ChannelState:
    busy: set[str] = field(default_factory=set)  # chats with a message in flight
    # Claims of one channel one after another in this process, so that `busy` is up to date
    # when the next claim looks (on PostgreSQL they would otherwise run side by side).
    claiming: asyncio.Lock = field(default_factory=asyncio.Lock)


class OutboxSender:
    """Delivers due outbox rows through the given channel senders (see the module docstring)."""

    def __init__(
        self,
        app: App,
        senders: Mapping[str, ChannelSender],
        *,
        instance_id: str | None = None,
        concurrency: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.app = app
        self.senders = dict(senders)
        self.instance_id = instance_id or uuid.uuid4().hex
        s = app.settings
        self.concurrency = max(1, concurrency or s.outbox_concurrency)
        self.batch_size = max(1, batch_size or s.outbox_batch_size)
        self._channels = {name: _ChannelState() for name in self.senders}
        self.sent = 0

    @property
    def _pg(self) -> bool:
        return self.app.db.dialect == "postgresql"

    # ---- housekeeping ------------------------------------------------------------------

    async def adopt(self) -> int:
        """Give a deliveries row to outbox rows queued by code that did not use `enqueue`."""
        total = 0
        while True:
            async with self.app.uow() as uow:
                now = self.app.clock.now()
                q = (
                    select(
                        OutboxMessage.id,
                        OutboxMessage.contact_id,
                        OutboxMessage.channel,
                        OutboxMessage.not_before,
                        OutboxMessage.created_at,
                    )
                    .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
                    .where(~select(Delivery.outbox_id).where(Delivery.outbox_id == OutboxMessage.id).exists())
                    .order_by(OutboxMessage.id)
                    .limit(_ADOPT_BATCH)
                )
                rows = (await uow.session.execute(q)).all()
                if not rows:
                    return total
                await uow.session.execute(
                    insert(Delivery),
                    [
                        {
                            "outbox_id": r.id,
                            "contact_id": r.contact_id,
                            "channel": r.channel,
                            "kind": KIND_OTHER,
                            "broadcast_id": None,
                            "status": QUEUED,
                            "due_at": r.not_before or r.created_at,
                            "idempotency_key": uuid.uuid4().hex,
                            "updated_at": now,
                        }
                        for r in rows
                    ],
                )
                await uow.commit()
                total += len(rows)

    async def recover(self, *, older_than: timedelta | None = None) -> Recovery:
        """Deal with rows left `sending` by a sender that died (module docstring: in doubt).

        Without `older_than` (a sender starting up): every such row claimed by another process.
        With it: every claim older than that, whoever made it, since no live sender holds a
        claim that long (a run of the outbox job, or a send, has a time limit).
        """
        result = Recovery()
        async with self.app.uow() as uow:
            now = self.app.clock.now()
            q = select(Delivery.outbox_id, Delivery.channel).where(Delivery.status == SENDING)
            if older_than is None:
                q = q.where(Delivery.claimed_by != self.instance_id)
            else:
                q = q.where(Delivery.claimed_at < now - older_than)
            rows = (await uow.session.execute(q)).all()
            resend: list[int] = []
            skip: list[int] = []
            for outbox_id, channel in rows:
                sender = self.senders.get(channel)
                if sender is None:
                    continue  # not ours to judge: no sender for that channel here
                if is_idempotent(sender) or self.app.settings.outbox_in_doubt == "resend":
                    resend.append(outbox_id)
                else:
                    skip.append(outbox_id)
            if resend:
                await uow.session.execute(
                    update(Delivery)
                    .where(Delivery.outbox_id.in_(resend))
                    .values(status=QUEUED, claimed_by=None, updated_at=now)
                )
            if skip:
                await self._finish(uow.session, skip, FAILED, now, IN_DOUBT_ERROR)
            await uow.commit()
        result.requeued, result.in_doubt = len(resend), len(skip)
        if rows:
            log.warning(
                "outbox recovery: %d in-doubt rows resent, %d marked failed", result.requeued, result.in_doubt
            )
        return result

    # ---- claiming ------------------------------------------------------------------------

    async def claim(self, channel: str, limit: int) -> list[Claimed]:
        """Mark up to `limit` due rows of the channel `sending`, and commit that first.

        At most one row per chat, and none for a chat that has a message in flight, so that
        one person's messages go out one at a time and in order. Rows of blocked identities are
        marked blocked, rows of people who stopped outreach cancelled, without sending.
        """
        state = self._channels[channel]
        async with state.claiming:
            return await self._claim(channel, limit, state)

    async def _claim(self, channel: str, limit: int, state: _ChannelState) -> list[Claimed]:
        async with self.app.uow() as uow:
            now = self.app.clock.now()
            q = (
                select(
                    Delivery.outbox_id,
                    Delivery.contact_id,
                    Delivery.kind,
                    Delivery.idempotency_key,
                    OutboxMessage.external_id,
                    OutboxMessage.payload,
                    OutboxMessage.attempts,
                    ChannelIdentity.blocked_at,
                    Subscription.stopped_at,
                )
                .join(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
                .outerjoin(
                    ChannelIdentity,
                    and_(
                        ChannelIdentity.channel == Delivery.channel,
                        ChannelIdentity.external_id == OutboxMessage.external_id,
                    ),
                )
                .outerjoin(Subscription, Subscription.contact_id == Delivery.contact_id)
                .where(Delivery.channel == channel, Delivery.status == QUEUED, Delivery.due_at <= now)
                .order_by(Delivery.due_at, Delivery.outbox_id)
                .limit(limit * 4 + len(state.busy))
            )
            if self._pg:
                q = q.with_for_update(skip_locked=True, of=Delivery)
            claimed: list[Claimed] = []
            blocked: list[int] = []
            stopped: list[int] = []
            chats: set[str] = set()
            for r in (await uow.session.execute(q)).all():
                if r.blocked_at is not None:
                    blocked.append(r.outbox_id)
                elif r.stopped_at is not None and r.kind in OUTREACH_KINDS:
                    stopped.append(r.outbox_id)
                elif r.external_id in state.busy or r.external_id in chats or len(claimed) >= limit:
                    continue
                else:
                    chats.add(r.external_id)
                    claimed.append(
                        Claimed(
                            r.outbox_id,
                            r.contact_id,
                            channel,
                            r.external_id,
                            dict(r.payload or {}),
                            r.idempotency_key,
                            r.attempts + 1,
                        )
                    )
            if blocked:
                await self._finish(uow.session, blocked, BLOCKED, now, "blocked")
            if stopped:
                await self._finish(uow.session, stopped, CANCELLED, now, "opted out")
            if claimed:
                ids = [c.outbox_id for c in claimed]
                await uow.session.execute(
                    update(Delivery)
                    .where(Delivery.outbox_id.in_(ids))
                    .values(status=SENDING, claimed_at=now, claimed_by=self.instance_id, updated_at=now)
                )
                await uow.session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids))
                    .values(attempts=OutboxMessage.attempts + 1)
                )
            await uow.commit()
        state.busy |= chats
        return claimed

    # ---- sending -------------------------------------------------------------------------

    async def _send(self, row: Claimed) -> Outcome:
        sender = self.senders[row.channel]
        if row.payload.get("attachments"):
            async with self.app.db.sessions() as session:
                replies = await load_replies(session, row.payload, self.app.content_dir)
        else:
            replies = payload_replies(row.payload, self.app.content_dir)
        try:
            if is_idempotent(sender):
                assert isinstance(sender, KeyedSender)
                await sender.send_keyed(row.key, row.external_id, replies)
            else:
                await sender.send(row.external_id, replies)
        except RateLimited as exc:
            return Outcome(row, QUEUED, str(exc), retry_after=exc.retry_after)
        except Blocked as exc:
            return Outcome(row, BLOCKED, str(exc) or "blocked")
        except PermanentError as exc:
            return Outcome(row, FAILED, str(exc) or type(exc).__name__)
        except SendError as exc:  # TransientError, or a channel's own subclass: retry
            return self._retry(row, str(exc) or type(exc).__name__)
        except Exception as exc:  # a bug in a sender must not stop the others; retry later
            log.exception("%s sender raised", row.channel)
            return self._retry(row, f"{type(exc).__name__}: {exc}")
        return Outcome(row, SENT)

    def _retry(self, row: Claimed, error: str) -> Outcome:
        if row.attempts >= self.app.settings.outbox_max_attempts:
            return Outcome(row, FAILED, f"gave up after {row.attempts} attempts: {error}")
        return Outcome(row, QUEUED, error)

    def backoff(self, attempts: int) -> timedelta:
        """60 s, 2 min, 4 min… (with the default base), at most 6 hours."""
        seconds = self.app.settings.outbox_retry_base_seconds * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, 6 * 3600))

    async def _finish(
        self, session: AsyncSession, ids: list[int], status: str, now: datetime, error: str | None
    ) -> None:
        """Final states: the delivery's status, and the outbox row's sent_at or failed_at."""
        await session.execute(
            update(Delivery).where(Delivery.outbox_id.in_(ids)).values(status=status, updated_at=now)
        )
        values: dict[str, Any] = (
            {"sent_at": now, "error": None}
            if status == SENT
            else {"failed_at": now, "error": (error or status)[:2000]}
        )
        await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values))

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Store the outcomes of one batch in one transaction."""
        if not outcomes:
            return
        async with self.app.uow() as uow:
            now = self.app.clock.now()
            s = uow.session
            finals: dict[tuple[str, str | None], list[int]] = {}
            for o in outcomes:
                if o.status != QUEUED:
                    finals.setdefault((o.status, o.error), []).append(o.row.outbox_id)
                    continue
                if o.retry_after is not None:  # a 429 is no failed attempt
                    due = now + timedelta(seconds=o.retry_after)
                    attempts = o.row.attempts - 1
                else:
                    due = now + self.backoff(o.row.attempts)
                    attempts = o.row.attempts
                await s.execute(
                    update(Delivery)
                    .where(Delivery.outbox_id == o.row.outbox_id)
                    .values(status=QUEUED, due_at=due, claimed_by=None, updated_at=now)
                )
                await s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == o.row.outbox_id)
                    .values(not_before=due, error=(o.error or "")[:2000], attempts=attempts)
                )
            for (status, error), ids in finals.items():
                await self._finish(s, ids, status, now, error)
            blocked = [o.row for o in outcomes if o.status == BLOCKED]
            for row in blocked:
                await s.execute(
                    update(ChannelIdentity)
                    .where(
                        ChannelIdentity.channel == row.channel,
                        ChannelIdentity.external_id == row.external_id,
                        ChannelIdentity.blocked_at.is_(None),
                    )
                    .values(blocked_at=now)
                )
            await uow.commit()
        self.sent += sum(1 for o in outcomes if o.status == SENT)
        for o in outcomes:
            result = (
                o.status if o.status != QUEUED else "rate_limited" if o.retry_after is not None else "retry"
            )
            self.app.metrics.sends.labels(o.row.channel, result).inc()
            if o.status == QUEUED and o.retry_after is None:
                log.warning(
                    "%s delivery %d failed (attempt %d), retrying later: %s",
                    o.row.channel,
                    o.row.outbox_id,
                    o.row.attempts,
                    o.error,
                )

    async def _worker(self, channel: str, deadline: float | None = None) -> int:
        """Claim, send and record batches until the channel has nothing due (or `deadline`,
        in the event loop's time, has passed); the rows sent."""
        sender = self.senders[channel]
        state = self._channels[channel]
        # A channel that deduplicates can take a batch at a time; one that cannot takes a
        # row at a time, so that a crash leaves as few rows in doubt as possible.
        limit = self.batch_size if is_idempotent(sender) else 1
        done = 0
        loop = asyncio.get_running_loop()
        while deadline is None or loop.time() < deadline:
            rows = await self.claim(channel, limit)
            if not rows:
                return done
            outcomes: list[Outcome] = []
            try:
                for row in rows:
                    outcome = await self._send(row)
                    outcomes.append(outcome)
                    if outcome.retry_after is not None:
                        # The whole token is limited: stop this batch and give the rest back.
                        outcomes += [
                            Outcome(r, QUEUED, "rate limited", retry_after=outcome.retry_after)
                            for r in rows[len(outcomes) :]
                        ]
                        break
            finally:
                state.busy -= {r.external_id for r in rows}
            await self.record(outcomes)
            done += sum(1 for o in outcomes if o.status == SENT)
            if outcomes and outcomes[-1].retry_after is not None:
                await asyncio.sleep(min(outcomes[-1].retry_after, _IDLE_MAX_SECONDS))
        return done

    async def send_due(self, channel: str, deadline: float | None = None) -> int:
        """Send what is due on one channel now, `concurrency` sends in flight; rows sent."""
        counts = await asyncio.gather(*(self._worker(channel, deadline) for _ in range(self.concurrency)))
        return sum(counts)

    async def drain(self, budget_seconds: float | None = None) -> int:
        """Adopt orphans, then send everything due on every channel (for at most
        `budget_seconds`); rows sent."""
        await self.adopt()
        deadline = None if budget_seconds is None else asyncio.get_running_loop().time() + budget_seconds
        counts = await asyncio.gather(*(self.send_due(c, deadline) for c in self.senders))
        return sum(counts)

    async def run(self, stop: asyncio.Event) -> None:
        """The long-running sender: recover, then poll for due rows until `stop` is set."""
        await self.recover()
        settings = self.app.settings
        stale = timedelta(seconds=settings.outbox_claim_timeout_seconds)
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while not stop.is_set():
            try:
                if loop.time() - checked > 60:
                    checked = loop.time()
                    await self.recover(older_than=stale)
                await self.drain()
            except Exception:
                log.exception("outbox sender pass failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.outbox_poll_seconds)


def senders_for(app: App, senders: Mapping[str, ChannelSender] | None = None) -> dict[str, ChannelSender]:
    """The senders to use: the given ones, else those the channels runtime put in
    `app.extras["senders"]`; the web chat's is always there."""
    found: dict[str, ChannelSender] = {WEBCHAT: WebchatSender()}
    found.update(app.extras.get("senders") or {})
    found.update(senders or {})
    return found


# ------------------------------------------------------------------------------ jobs


async def send_outbox(app: App) -> int:
    """Scheduler job (every 30 s): send what is due for at most `outbox_job_seconds`.

    Runs never overlap (the scheduler runs a job once at a time, on one instance), and each
    holds its claims for at most its time budget plus a send's timeout: claims older than that
    belong to a sender that died, and are recovered first. The channel senders are looked up
    at every run, since the channels start after the scheduler. Returns the messages sent.
    """
    budget = app.settings.outbox_job_seconds
    instance = str(app.extras.setdefault("outbox_instance", uuid.uuid4().hex))
    sender = OutboxSender(app, senders_for(app), instance_id=instance)
    await sender.recover(older_than=timedelta(seconds=budget + _SEND_TIMEOUT_SECONDS))
    return await sender.drain(budget_seconds=budget)


async def run_outbox_sender(
    app: App, stop: asyncio.Event, senders: Mapping[str, ChannelSender] | None = None
) -> None:
    """The long-running sender for `khuyenhoc run` on the elected instance."""
    sender = OutboxSender(app, senders_for(app, senders))
    app.extras["outbox_sender"] = sender
    await sender.run(stop)


async def pending_count(session: AsyncSession, channel: str | None = None) -> int:
    """Rows not yet in a final state (queued or sending)."""
    q = select(func.count()).select_from(Delivery).where(Delivery.status.in_((QUEUED, SENDING)))
    if channel is not None:
        q = q.where(Delivery.channel == channel)
    return int((await session.execute(q)).scalar_one())
