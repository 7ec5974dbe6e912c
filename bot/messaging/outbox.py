"""The outbox: messages committed with what caused them, and the sender that delivers them.

Queueing (`enqueue`) is the one way a message leaves after the request: broadcasts, weekly tips
and the campaign, officers' reminders, escalations, digests and compiled reports, and dialogue
replies the platform did not take at once (bot/channels/ratelimit.py). It writes one `outbox`
row and one `deliveries` row per recipient inside the caller's transaction, so a message exists
exactly when the change that caused it does. A scheduled message carries notice keys
(`Outgoing.notices`): the `notices` rows written with it keep it from ever being queued twice.
Who receives what, on which channel, is bot/messaging/recipients.py's business.

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

Order: one message at a time per chat. Replies are claimed ahead of bulk rows, and a chat's
replies strictly in the order they were queued: a reply waiting for its retry holds back the
later ones (the channels queue a new reply behind it rather than sending it at once).

One sender per channel at a time: rate limits are per bot token (DESIGN.md), and recovery
treats every `sending` row claimed by another process as in doubt. On PostgreSQL claims use
FOR UPDATE SKIP LOCKED, so a second sender would not double-send a queued row either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import mimetypes
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bot.domain.app import App
from bot.domain.messages import Attachment, Option, Reply
from bot.domain.sending import Blocked, ChannelSender, PermanentError, RateLimited, SendError
from bot.messaging.recipients import Officer, obeys_stop
from storage.models_outreach import BLOCKED, CANCELLED, FAILED, QUEUED, SENT
from storage.repositories import ReportFileRepository
from storage.uow import Reads, UnitOfWork

log = logging.getLogger(__name__)

WEBCHAT = "webchat"
IN_DOUBT_ERROR = "in doubt: the sender stopped while sending; not resent to avoid a duplicate"
_IDLE_MAX_SECONDS = 5.0
_SEND_TIMEOUT_SECONDS = 120.0  # longer than any channel's HTTP timeout and retries


# ------------------------------------------------------------------------------ queueing


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for one person on one channel.

    `notices` makes a scheduled message idempotent: it is queued only if one of its keys is new
    for the contact (see `notice_key`), and the keys are recorded in the same transaction.
    Messages with the same keys share their fate: an officer's reminder goes to every channel
    they use, or to none.
    """

    contact_id: int
    channel: str
    external_id: str
    payload: dict[str, Any]
    notices: tuple[str, ...] = ()


def notice_key(kind: str, subject: str, period: str, unit_id: int) -> str:
    """The notice key of an officer's message about one unit ("reminder:<deadline>@-3:2026-H1:42")."""
    return f"{kind}:{subject}:{period}:{unit_id}"


async def noticed_units(
    reads: Reads, kind: str, subject: str, period: str, contact_id: int, unit_ids: Iterable[int]
) -> set[int]:
    """The units about which this notice already went to this contact (to skip work before
    queueing; `enqueue` is what makes a notice go once)."""
    keys = {notice_key(kind, subject, period, u): u for u in unit_ids}
    return {keys[k] for k in await reads.notices.noticed(contact_id, keys)}


def to_each_channel(officer: Officer, payload: dict[str, Any], notices: Sequence[str] = ()) -> list[Outgoing]:
    """The message to every channel the officer uses, under the same notice keys."""
    return [Outgoing(officer.contact_id, c, e, payload, tuple(notices)) for c, e in officer.identities]


async def enqueue(
    uow: UnitOfWork,
    messages: Sequence[Outgoing],
    *,
    kind: str,
    now: datetime,
    not_before: datetime | None = None,
    broadcast_id: int | None = None,
    attempts: int = 0,
    error: str | None = None,
) -> list[Outgoing]:
    """Queue the messages in the caller's transaction (nothing is committed here); those queued.

    Every message that leaves after the request comes through here: broadcasts, tips and the
    campaign, reminders, digests, compiled reports, and dialogue replies that could not be
    delivered at once (`attempts`/`error` say what the first try met). A contact's messages go
    out in the order given.
    """
    queued = list(messages)
    keyed = sorted({(m.contact_id, k) for m in queued for k in m.notices})
    if keyed:
        fresh = await uow.notices.record(keyed, now)
        queued = [m for m in queued if not m.notices or any((m.contact_id, k) in fresh for k in m.notices)]
    queued = [await kept_for(uow, m, now) for m in queued]
    await uow.outbox.insert(
        [(m.contact_id, m.channel, m.external_id, m.payload) for m in queued],
        kind=kind,
        now=now,
        not_before=not_before,
        broadcast_id=broadcast_id,
        attempts=attempts,
        error=error,
    )
    return queued


async def kept_for(uow: UnitOfWork, message: Outgoing, now: datetime) -> Outgoing:
    """A web chat message whose files each carry a download id ("kept") bound to its contact:
    the page keeps only links across a reload (storage/models_files.py). Other channels get
    the files themselves when the message is sent."""
    items = message.payload.get("attachments")
    if message.channel != WEBCHAT or not items:
        return message
    kept = []
    for item in items:
        if "file_id" in item and item.get("keep", True) and "kept" not in item:
            key = await uow.kept_files.keep(
                message.contact_id,
                int(item["file_id"]),
                str(item["filename"]),
                str(item["content_type"]),
                now,
            )
            item = {**item, "kept": key}
        kept.append(item)
    return replace(message, payload={**message.payload, "attachments": kept})


# ------------------------------------------------------------------------------ payloads


async def attach(
    uow: UnitOfWork, payload: dict[str, Any], files: Sequence[Attachment], now: datetime
) -> dict[str, Any]:
    """The payload with `files` stored once (report_files) and named by id:

        {"text": ..., "attachments": [{"filename", "content_type", "file_id", "size"}]}

    so the report a hundred officers receive is kept once and the rows stay small. `enqueue`
    adds a web chat recipient's own download id to each ("kept": `kept_for`); a file not to be
    kept (`Attachment.keep`) is marked "keep": false.
    """
    if not files:
        return payload
    refs = []
    for f in files:
        row = await uow.files.store(f.filename, f.content_type, f.data, now)
        ref = {"filename": f.filename, "content_type": f.content_type, "file_id": row.id, "size": row.size}
        refs.append(ref if f.keep else {**ref, "keep": False})
    return {**payload, "attachments": refs}


async def reply_payload(uow: UnitOfWork, reply: Reply, now: datetime) -> dict[str, Any]:
    """A dialogue reply as an outbox payload (the inverse of `load_replies`)."""
    payload: dict[str, Any] = {
        "text": reply.text,
        "options": [{"id": o.id, "label": o.label} for o in reply.options],
    }
    return await attach(uow, payload, reply.attachments, now)


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


async def attachments_of(files: ReportFileRepository, payload: dict[str, Any]) -> list[Attachment]:
    """The attachments a payload names, with their bytes (stored files, or inline data_b64).
    `files` is `reads.files` of a unit of work, or the web chat poll's own repository."""
    out: list[Attachment] = []
    for item in payload.get("attachments") or ():
        if "data_b64" in item:
            data = base64.b64decode(item["data_b64"])
        else:
            row = await files.get(int(item["file_id"]))
            if row is None:
                continue
            data = row.data
        out.append(Attachment(str(item["filename"]), str(item["content_type"]), data))
    return out


async def load_replies(
    files: ReportFileRepository, payload: dict[str, Any], content_dir: Path
) -> list[Reply]:
    """`payload_replies`, with the files a payload names by id (compiled reports) read in."""
    replies = payload_replies(payload, content_dir)
    if payload.get("attachments"):
        replies[0].attachments.extend(await attachments_of(files, payload))
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

    async def recover(self, *, older_than: timedelta | None = None) -> Recovery:
        """Deal with rows left `sending` by a sender that died (module docstring: in doubt).

        Without `older_than` (a sender starting up): every such row claimed by another process.
        With it: every claim older than that, whoever made it, since no live sender holds a
        claim that long (a run of the outbox job, or a send, has a time limit).
        """
        result = Recovery()
        async with self.app.uow() as uow:
            now = self.app.clock.now()
            if older_than is None:
                rows = await uow.outbox.claimed_elsewhere(now, not_by=self.instance_id)
            else:
                rows = await uow.outbox.claimed_elsewhere(now, older_than=older_than)
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
                await uow.outbox.requeue(resend, now)
            if skip:
                await uow.outbox.finish(skip, FAILED, now, IN_DOUBT_ERROR)
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
            found = await uow.outbox.due(channel, now, limit * 4 + len(state.busy), lock=self._pg)
            claimed: list[Claimed] = []
            blocked: list[int] = []
            stopped: list[int] = []
            chats: set[str] = set()
            for r in found:
                if r.blocked_at is not None:
                    blocked.append(r.outbox_id)
                elif r.stopped_at is not None and obeys_stop(r.kind):
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
                await uow.outbox.finish(blocked, BLOCKED, now, "blocked")
            if stopped:
                await uow.outbox.finish(stopped, CANCELLED, now, "opted out")
            if claimed:
                await uow.outbox.mark_sending([c.outbox_id for c in claimed], now, self.instance_id)
            await uow.commit()
        state.busy |= chats
        return claimed

    # ---- sending -------------------------------------------------------------------------

    async def _send(self, row: Claimed) -> Outcome:
        sender = self.senders[row.channel]
        if row.payload.get("attachments"):
            async with self.app.read_only() as reads:
                replies = await load_replies(reads.files, row.payload, self.app.content_dir)
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
        return backoff(self.app, attempts)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Store the outcomes of one batch in one transaction."""
        if not outcomes:
            return
        async with self.app.uow() as uow:
            now = self.app.clock.now()
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
                await uow.outbox.retry_at(o.row.outbox_id, due, now, attempts=attempts, error=o.error or "")
            for (status, error), ids in finals.items():
                await uow.outbox.finish(ids, status, now, error)
            for row in (o.row for o in outcomes if o.status == BLOCKED):
                await uow.channels.set_blocked(row.channel, row.external_id, now)
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
        """Send everything due on every channel (for at most `budget_seconds`); rows sent."""
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


def backoff(app: App, attempts: int) -> timedelta:
    """The wait after `attempts` failed attempts: 60 s, 2 min, 4 min… (with the default base),
    at most 6 hours."""
    seconds = app.settings.outbox_retry_base_seconds * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, 6 * 3600))


def senders_for(app: App, senders: Mapping[str, ChannelSender] | None = None) -> dict[str, ChannelSender]:
    """The senders to use: the given ones, else the platform senders the composition root put
    in `app.senders`; the web chat's is always there."""
    found: dict[str, ChannelSender] = {WEBCHAT: WebchatSender()}
    found.update(app.senders)
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
    sender = OutboxSender(app, senders_for(app), instance_id=app.instance_id)
    await sender.recover(older_than=timedelta(seconds=budget + _SEND_TIMEOUT_SECONDS))
    return await sender.drain(budget_seconds=budget)


async def run_outbox_sender(
    app: App, stop: asyncio.Event, senders: Mapping[str, ChannelSender] | None = None
) -> None:
    """The long-running sender for `khuyenhoc run` on the elected instance."""
    await OutboxSender(app, senders_for(app, senders)).run(stop)
