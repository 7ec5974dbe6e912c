"""The Zalo channel: Zalo Bot Platform updates in, rendered replies out (DESIGN.md, boundary 2).

Updates arrive through our webhook (`POST /zalo/webhook`, checked against the
X-Bot-Api-Secret-Token header) or, without a public URL, by long-polling `getUpdates`. Each
becomes an `Incoming` for the service; the replies go back through `ZaloSender`, which writes
options as a numbered list (Zalo has no buttons) and cuts texts at 2,000 characters.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.channels.ratelimit import (
    PlatformSender,
    RateLimiter,
    RetryPolicy,
    with_retries,
)
from bot.channels.render import ZALO_MAX_CHARS, options_as_text, split_text
from bot.channels.zalo.client import ZaloClient
from bot.channels.zalo.payload import BadUpdate, parse_polled, parse_webhook
from bot.domain.app import App
from bot.domain.i18n import Translator, translator
from bot.domain.messages import Attachment, Handled, Incoming, Kind, Reply
from bot.domain.sending import SendError
from bot.handlers.command_table import group_commands
from bot.handlers.commands import parse_command
from storage.locks import KeyedLocks

log = logging.getLogger(__name__)

CHANNEL = "zalo"
WEBHOOK_PATH = "/zalo/webhook"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1_000_000
MAX_TEXT = 20_000  # longer texts are cut here; the engine refuses anything over its own limit
POLL_CONCURRENCY = 32

EVENT_KINDS = {
    "message.text.received": Kind.TEXT,
    "message.image.received": Kind.IMAGE,
    "message.sticker.received": Kind.STICKER,
}

Handler = Callable[[App, Incoming], Awaitable[Handled]]


def files_note(files: Sequence[Attachment], t: Translator) -> str:
    """What a Zalo user reads instead of files: Zalo takes photos only by public URL and has no
    documents. Several files (a compiled report: the spreadsheet and a chart per indicator) are
    counted, not listed, to keep the message short."""
    if len(files) == 1:
        return t(
            "A file was prepared ({names}); Zalo cannot receive files. "
            "Open the web chat or Telegram to get it.",
            names=files[0].filename,
        )
    kinds = dict.fromkeys("." + f.filename.rsplit(".", 1)[-1] for f in files if "." in f.filename)
    return t(
        "{count} files were prepared ({kinds}); Zalo cannot receive files. "
        "Open the web chat or Telegram to get them.",
        count=t.number(len(files)),
        kinds=", ".join(kinds),
    )


def text_parts(reply: Reply, t: Translator) -> list[str]:
    """The messages a reply is sent as on Zalo: options written out, files described, cut at
    2,000 characters. The console's broadcast preview shows these same parts."""
    text = options_as_text(reply, t)
    if reply.attachments:
        text += "\n\n" + files_note(reply.attachments, t)
    return [part for part in split_text(text, ZALO_MAX_CHARS) if part]


def webhook_secret(token: str, configured: str | None) -> str:
    """ZALO_WEBHOOK_SECRET, or one derived from the token: every instance computes the same."""
    if configured:
        return configured
    return hmac.new(token.encode(), b"khuyenhoc zalo webhook", hashlib.sha256).hexdigest()[:48]


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing header never matches."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


# ----------------------------------------------------------------------------- translation


def to_incoming(update: dict[str, Any]) -> tuple[Incoming, bool] | None:
    """A Zalo update → (the transport-neutral message, whether it came from a group chat).

    None for updates without a sender (nothing to answer). The message id is the update id:
    a webhook retry or a repeated poll carries the same one, so the service processes it once.
    """
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    assert isinstance(sender, dict) and isinstance(chat, dict)
    if sender.get("is_bot"):
        return None
    is_group = str(chat.get("chat_type", "PRIVATE")).upper() == "GROUP"
    # In a private chat the chat id is the person's id and the address to answer.
    person = chat.get("id") if not is_group else sender.get("id")
    person = person or sender.get("id")
    if not person:
        return None
    kind = EVENT_KINDS.get(str(update.get("event_name", "")), Kind.OTHER)
    text = message.get("text") if kind is Kind.TEXT else None
    if kind is Kind.TEXT and not isinstance(text, str):
        kind = Kind.OTHER
    message_id = message.get("message_id")
    name = sender.get("display_name") or sender.get("name")
    incoming = Incoming(
        channel=CHANNEL,
        external_id=str(person),
        kind=kind,
        text=(text or "")[:MAX_TEXT] if kind is Kind.TEXT else "",
        update_id=str(message_id) if message_id else None,
        display_name=str(name)[:255] if name else None,
    )
    return incoming, is_group


# ----------------------------------------------------------------------------- sending


class ZaloSender(PlatformSender):
    """Delivers replies with Zalo's means: plain text, numbered options, 2,000 characters."""

    channel = CHANNEL

    def __init__(self, app: App, client: ZaloClient, limiter: RateLimiter, policy: RetryPolicy) -> None:
        super().__init__(app, policy)
        self.client = client
        self.limiter = limiter

    async def deliver(self, external_id: str, replies: list[Reply], locale: str) -> None:
        t = translator(locale)
        for reply in replies:
            for part in text_parts(reply, t):
                await self.send_text(external_id, part)

    async def send_text(self, chat_id: str, text: str) -> None:
        await with_retries(
            lambda: self.client.send_message(chat_id, text), self.policy, self.limiter, chat_id
        )


# ----------------------------------------------------------------------------- the channel


class ZaloChannel:
    """Receives Zalo updates (webhook or polling), runs them through the service, replies."""

    def __init__(self, app: App, client: ZaloClient, *, handler: Handler | None = None) -> None:
        settings = app.settings
        if handler is None:
            handler = App.handle
        self.app = app
        self.client = client
        self.handle: Handler = handler
        self.limiter = RateLimiter(
            settings.zalo_rate_per_second,
            settings.zalo_chat_rate_per_second,
            settings.zalo_chat_burst,
            on_limited=app.metrics.rate_limited.labels("zalo").inc,
        )
        self.policy = RetryPolicy(
            settings.send_retries, settings.send_retry_backoff_seconds, settings.send_max_retry_after_seconds
        )
        self.sender = ZaloSender(app, client, self.limiter, self.policy)
        token = settings.zalo_token.get_secret_value() if settings.zalo_token else ""
        configured = settings.zalo_webhook_secret.get_secret_value() if settings.zalo_webhook_secret else None
        self.secret = webhook_secret(token, configured)
        self.webhook_url = f"{settings.public_url.rstrip('/')}{WEBHOOK_PATH}" if settings.public_url else None
        self._locks = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self.polled = 0  # updates taken from getUpdates and handled (tests wait on it)
        self.ready = False  # True once the token is checked and the webhook set or cleared

    @property
    def polling(self) -> bool:
        return self.webhook_url is None

    async def process(self, update: dict[str, Any]) -> None:
        """Handle one update: a person's messages one at a time and in order."""
        translated = to_incoming(update)
        if translated is None:
            log.debug("zalo update without a sender ignored (%s)", update.get("event_name"))
            return
        msg, is_group = translated
        if is_group:
            await self._in_group(update, msg)
            return
        # The service steps one person's messages one at a time; this lock also keeps their
        # replies in that order while they are being sent.
        async with self._locks.hold(msg.external_id):
            handled = await self.handle(self.app, msg)
            if handled.replies:
                await self.sender.reply(msg.external_id, handled)

    async def _in_group(self, update: dict[str, Any], msg: Incoming) -> None:
        """Groups are for talking among people: only the command table's group commands get an answer."""
        cmd = parse_command(msg.text) if msg.kind is Kind.TEXT else None
        if cmd is None or cmd.name not in group_commands():
            return
        chat = update.get("message", {}).get("chat", {})
        t = translator(self.app.settings.default_locale)
        text = t(
            "Reports and questions are answered in a private chat only. Please send me a private message."
        )
        try:
            await self.sender.send_text(str(chat.get("id")), text)
        except SendError as exc:
            log.warning("zalo group answer not delivered: %s", exc)

    # ------------------------------------------------------------------ start and stop

    async def start(self) -> None:
        """Check the token; then register the webhook, or clear it so that polling works."""
        me = await self.client.get_me()
        log.info(
            "zalo bot %s ready (%s)",
            me.get("account_name") or me.get("name") or me.get("id"),
            "polling" if self.polling else "webhook",
        )
        if self.webhook_url is None:
            await self.client.delete_webhook()
        else:
            await self.ensure_webhook()
        self.ready = True

    async def ensure_webhook(self) -> None:
        assert self.webhook_url is not None
        info = await self.client.get_webhook_info()
        if info.get("url") != self.webhook_url:
            await self.client.set_webhook(self.webhook_url, self.secret)
            log.info("zalo webhook registered")

    async def poll_forever(self, timeout: int) -> None:
        """Long-poll getUpdates; each update is handled in a task so one slow chat holds nobody up."""
        slots = asyncio.Semaphore(POLL_CONCURRENCY)
        failures = 0
        while True:
            try:
                update = await self.client.get_updates(timeout)
                failures = 0
            except SendError as exc:
                failures += 1
                wait = min(60.0, self.policy.delay(min(failures, 6)))
                log.warning("zalo getUpdates failed (%s); retrying in %.1fs", exc, wait)
                await asyncio.sleep(wait)
                continue
            if update is None:
                continue
            await slots.acquire()
            task = asyncio.create_task(self._process_polled(update, slots))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _process_polled(self, update: dict[str, Any], slots: asyncio.Semaphore) -> None:
        try:
            await self.process(parse_polled(update))
        except BadUpdate as exc:
            log.warning("zalo update skipped: %s", exc)
        except Exception:
            log.exception("zalo update could not be handled")
        finally:
            self.polled += 1
            slots.release()

    async def drain(self) -> None:
        """Let updates already taken from the queue finish (they are not redelivered)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    # ------------------------------------------------------------------ the webhook

    def router(self) -> APIRouter:
        router = APIRouter(tags=["zalo"])

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def zalo_webhook(request: Request) -> Response:
            if not secret_matches(request.headers.get(SECRET_HEADER), self.secret):
                log.warning("zalo webhook call with a wrong or missing secret refused")
                return JSONResponse({"ok": False}, status_code=403)
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"ok": False}, status_code=413)
            try:
                update = parse_webhook(body)
            except BadUpdate as exc:
                log.warning("zalo webhook body refused: %s", exc)
                return JSONResponse({"ok": False}, status_code=400)
            if update is not None:
                await self.process(update)
            return JSONResponse({"ok": True})

        return router


# ----------------------------------------------------------------------------- CLI helpers


async def run_admin(app: App, action: str) -> list[str]:
    """`khuyenhoc zalo set-webhook | delete-webhook | info`: one call each, lines to print."""
    from bot.channels.manager import install_token_redaction

    settings = app.settings
    if settings.zalo_token is None:
        raise ValueError("ZALO_TOKEN is not set")
    token = settings.zalo_token.get_secret_value()
    async with ZaloClient(token, settings.zalo_api_base_url) as client:
        channel = ZaloChannel(app, client)
        install_token_redaction(token, channel.secret)
        lines: list[str] = []
        if action == "set-webhook":
            if channel.webhook_url is None:
                raise ValueError("PUBLIC_URL is not set: there is no webhook address to register")
            await client.set_webhook(channel.webhook_url, channel.secret)
            lines.append(f"Webhook registered: {channel.webhook_url}")
        elif action == "delete-webhook":
            await client.delete_webhook()
            lines.append("Webhook removed: `khuyenhoc run` without PUBLIC_URL now polls.")
        me = await client.get_me()
        info = await client.get_webhook_info()
        lines.append(f"Bot: {me.get('account_name') or me.get('name') or me.get('id')}")
        lines.append(f"Webhook: {info.get('url') or '(none: polling)'}")
    return lines
