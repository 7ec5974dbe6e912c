"""The Telegram channel, on python-telegram-bot 22 (DESIGN.md, boundary 2: it only translates).

One PTB `Application` per process, with a single handler that turns every update into an
`Incoming` for the service and sends the replies back: options as inline keyboards whose
callback data carries the option id only, texts cut at 4,096 characters. Updates come through
our own HTTP app (`POST /telegram/webhook`, X-Telegram-Bot-Api-Secret-Token checked) when a
public URL is set, else through PTB's long polling. Every Bot API request passes
`TelegramRateLimiter`: 30 messages/s per bot, 1/s per chat, 429 `retry_after` waited out.

Group chats get an answer to /start and /trogiup only, asking to continue privately: reports
name people and figures that do not belong in a group.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder, BaseRateLimiter, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest

from bot.channels.ratelimit import (
    REPLY_BUDGET_SECONDS,
    PlatformSender,
    RateLimiter,
    RetryPolicy,
    person_tag,
    too_late,
    with_retries,
)
from bot.channels.render import TELEGRAM_MAX_CHARS, split_text
from bot.channels.telegram.payload import BadUpdate, parse_update
from bot.domain.app import App
from bot.domain.i18n import SUPPORTED, translator
from bot.domain.messages import Handled, Incoming, Kind, Option, Reply
from bot.domain.sending import Blocked, PermanentError, RateLimited, SendError, TransientError
from bot.domain.text import shorten
from bot.handlers.command_table import group_commands, platform_commands
from bot.handlers.commands import parse_command
from storage.locks import KeyedLocks

# Opt in to PTB's coming behaviour (time periods as timedelta): otherwise every RetryAfter it
# builds emits a deprecation warning, and our tests turn warnings into errors.
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
MAX_CALLBACK_BYTES = 64
MAX_BODY_BYTES = 1_000_000
MAX_TEXT = 20_000
# Callback data of an option whose id does not fit in 64 bytes: the button's position. The press
# is then sent on as the button's label, which the engine matches like a typed answer.
BY_POSITION = "#~"
CHOSEN_MARK = "\n\n✔ "
# Endpoints that put a message in a chat, and so count against the flood limits.
SENDING_ENDPOINTS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendAudio",
        "sendVideo",
        "sendAnimation",
        "sendVoice",
        "sendMediaGroup",
        "sendLocation",
        "sendContact",
        "sendPoll",
        "sendSticker",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "editMessageMedia",
    }
)
GROUP_RATE_PER_MINUTE = 20  # Telegram's limit for groups

Handler = Callable[[App, Incoming], Awaitable[Handled]]


def webhook_secret(token: str, configured: str | None) -> str:
    """TELEGRAM_WEBHOOK_SECRET, or one derived from the token: every instance computes the same."""
    if configured:
        return configured
    return hmac.new(token.encode(), b"khuyenhoc telegram webhook", hashlib.sha256).hexdigest()[:48]


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing header never matches."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter's wait in seconds, however PTB represents it (int or timedelta)."""
    value = getattr(exc, "_retry_after", None)
    if value is None:  # pragma: no cover - older PTB
        value = exc.retry_after
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


def as_channel_error(exc: TelegramError) -> SendError:
    """PTB's errors → the channel errors the senders and the outbox understand."""
    if isinstance(exc, Forbidden):
        return Blocked(str(exc))
    if isinstance(exc, RetryAfter):
        return RateLimited(retry_after_seconds(exc))
    if isinstance(exc, BadRequest):
        return PermanentError(str(exc))
    if isinstance(exc, NetworkError):  # includes TimedOut and 5xx answers
        return TransientError(str(exc))
    return PermanentError(str(exc))


# ----------------------------------------------------------------------------- rate limiting


class TelegramRateLimiter(BaseRateLimiter[int]):
    """PTB's hook around every Bot API request: throttle messages, wait out 429s, retry."""

    def __init__(
        self, limiter: RateLimiter, policy: RetryPolicy, group_limiter: RateLimiter | None = None
    ) -> None:
        self.limiter = limiter
        self.policy = policy
        self.groups = group_limiter or RateLimiter(0, GROUP_RATE_PER_MINUTE / 60, 3)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint not in SENDING_ENDPOINTS:
            return await callback(*args, **kwargs)
        chat = data.get("chat_id")
        is_group = isinstance(chat, str) or (isinstance(chat, int) and chat < 0)
        attempt = 0
        while True:
            if too_late(self.limiter.paused_for):  # a reply in a request: leave it to the outbox
                raise RetryAfter(timedelta(seconds=max(1, round(self.limiter.paused_for))))
            if is_group:
                await self.groups.acquire(chat)
            await self.limiter.acquire(None if is_group else chat)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.limiter.limited()
                wait = retry_after_seconds(exc)
                if attempt >= self.policy.retries or wait > self.policy.max_retry_after or too_late(wait):
                    raise
                log.warning("telegram flood limit: waiting %.1fs before retrying %s", wait, endpoint)
                self.limiter.pause(wait)
                attempt += 1


# ----------------------------------------------------------------------------- rendering


def text_parts(reply: Reply) -> list[str]:
    """The messages a reply's text is sent as (the buttons go on the last one); the console's
    broadcast preview shows these same parts."""
    parts = [p for p in split_text(reply.text, TELEGRAM_MAX_CHARS) if p.strip()]
    return ["…"] if reply.options and not parts else parts


def callback_data(options: list[Option]) -> list[str]:
    """Each option's callback data: its id, or its position when the id exceeds 64 bytes."""
    return [
        o.id if len(o.id.encode()) <= MAX_CALLBACK_BYTES else f"{BY_POSITION}{i}"
        for i, o in enumerate(options)
    ]


def keyboard(options: list[Option]) -> InlineKeyboardMarkup:
    """One button per row, two per row when there are many short labels."""
    buttons = [
        InlineKeyboardButton(o.label[:64], callback_data=data)
        for o, data in zip(options, callback_data(options), strict=True)
    ]
    per_row = 2 if len(buttons) >= 4 and all(len(o.label) <= 18 for o in options) else 1
    return InlineKeyboardMarkup([buttons[i : i + per_row] for i in range(0, len(buttons), per_row)])


def pressed_label(message: Message, data: str) -> str | None:
    """The label of the button carrying `data` in the message's keyboard."""
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def message_kind(message: Message) -> tuple[Kind, str]:
    if message.text is not None:
        return Kind.TEXT, message.text[:MAX_TEXT]
    if message.photo:
        return Kind.IMAGE, ""
    if message.sticker is not None:
        return Kind.STICKER, ""
    return Kind.OTHER, ""


def locale_of(language_code: str | None, default: str) -> str:
    """Telegram's interface language ("vi", "en-GB") → one of ours."""
    code = (language_code or "").split("-")[0].lower()
    return code if code in SUPPORTED else default


# ----------------------------------------------------------------------------- sending


class TelegramSender(PlatformSender):
    """Delivers replies with Telegram's means: inline keyboards, 4,096 characters, files."""

    channel = CHANNEL

    def __init__(self, app: App, bot: Bot, policy: RetryPolicy) -> None:
        super().__init__(app, policy)
        self.bot = bot

    async def deliver(self, external_id: str, replies: list[Reply], locale: str) -> None:
        chat_id = int(external_id)
        for reply in replies:
            parts = text_parts(reply)
            markup = keyboard(reply.options) if reply.options else None
            for n, part in enumerate(parts, 1):
                markup_here = markup if n == len(parts) else None
                await self.call(partial(self.bot.send_message, chat_id, part, reply_markup=markup_here))
            for attachment in reply.attachments:
                upload = InputFile(attachment.data, filename=attachment.filename)
                if attachment.content_type.startswith("image/"):
                    await self.call(partial(self.bot.send_photo, chat_id, upload))
                else:
                    await self.call(partial(self.bot.send_document, chat_id, upload))

    async def call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        """One Bot API call with network errors retried (429s are handled by the rate limiter)."""

        async def translated() -> Any:
            try:
                return await op()
            except TelegramError as exc:
                raise as_channel_error(exc) from exc

        return await with_retries(translated, self.policy)


# ----------------------------------------------------------------------------- the channel


class TelegramChannel:
    """The PTB application, its one handler, the webhook route and the polling start-up."""

    def __init__(self, app: App, *, handler: Handler | None = None) -> None:
        settings = app.settings
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        if handler is None:
            handler = App.handle
        token = settings.telegram_token.get_secret_value()
        self.app = app
        self.handle: Handler = handler
        self.policy = RetryPolicy(
            settings.send_retries, settings.send_retry_backoff_seconds, settings.send_max_retry_after_seconds
        )
        self.limiter = RateLimiter(
            settings.telegram_rate_per_second,
            settings.telegram_chat_rate_per_second,
            settings.telegram_chat_burst,
            on_limited=app.metrics.rate_limited.labels("telegram").inc,
        )
        configured = (
            settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
        )
        self.secret = webhook_secret(token, configured)
        self.webhook_url = f"{settings.public_url.rstrip('/')}{WEBHOOK_PATH}" if settings.public_url else None
        self.application = build_application(
            token,
            settings.telegram_api_base_url,
            TelegramRateLimiter(self.limiter, self.policy),
            polling=self.webhook_url is None,
            poll_timeout=settings.poll_timeout_seconds,
        )
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self.sender = TelegramSender(app, self.application.bot, self.policy)
        self.poll_timeout = settings.poll_timeout_seconds
        self.ready = False  # True once the token is checked and updates can be processed
        self._locks = KeyedLocks()

    @property
    def bot(self) -> Bot:
        bot: Bot = self.application.bot
        return bot

    @property
    def polling(self) -> bool:
        return self.webhook_url is None

    # ------------------------------------------------------------------ updates

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The one PTB handler: every kind of update we asked for lands here."""
        if update.my_chat_member is not None:
            await self._on_membership(update)
        elif update.callback_query is not None:
            await self._on_press(update.callback_query, update.update_id)
        elif update.message is not None:
            await self._on_message(update.message, update.update_id)

    async def _on_message(self, message: Message, update_id: int) -> None:
        user = message.from_user
        if user is None or user.is_bot:
            return
        if message.chat.type != ChatType.PRIVATE:
            await self._in_group(message)
            return
        kind, text = message_kind(message)
        await self._process(
            Incoming(
                channel=CHANNEL,
                external_id=str(message.chat.id),
                kind=kind,
                text=text,
                update_id=str(update_id),
                display_name=user.full_name[:255] or None,
            )
        )

    async def _on_press(self, query: CallbackQuery, update_id: int) -> None:
        """A button: answer the query (stops the spinner), show the choice, then run the step."""
        message = query.message
        data = query.data or ""
        if not isinstance(message, Message) or message.chat.type != ChatType.PRIVATE:
            await self._quietly(query.answer())
            return
        label = pressed_label(message, data)
        await self._quietly(query.answer())
        if label is not None and message.text is not None:
            room = TELEGRAM_MAX_CHARS - len(CHOSEN_MARK) - len(label)
            text = shorten(message.text, max(room, 0))
            await self._quietly(message.edit_text(text + CHOSEN_MARK + label, reply_markup=None))
        if data.startswith(BY_POSITION):
            # A long option id travelled as a position: pass the label on, as if typed.
            msg = Incoming(
                CHANNEL, str(message.chat.id), Kind.TEXT, text=label or "", update_id=str(update_id)
            )
        else:
            msg = Incoming(
                CHANNEL, str(message.chat.id), Kind.OPTION, option_id=data, update_id=str(update_id)
            )
        await self._process(msg)

    async def _process(self, msg: Incoming) -> None:
        # The service steps one person's messages one at a time; this lock also keeps their
        # replies in that order while they are being sent.
        async with self._locks.hold(msg.external_id):
            handled = await self.handle(self.app, msg)
            if handled.replies:
                await self.sender.reply(msg.external_id, handled)

    async def _in_group(self, message: Message) -> None:
        """The group commands of the command table, addressed to us, get a pointer to a private chat."""
        cmd = parse_command(message.text or "")
        if cmd is None or cmd.name not in group_commands():
            return
        addressed = (message.text or "").split()[0].partition("@")[2]
        if addressed and addressed.lower() != (self.bot.username or "").lower():
            return
        user = message.from_user
        t = translator(locale_of(user.language_code if user else None, self.app.settings.default_locale))
        text = t(
            "Reports and questions are answered in a private chat only. Please send me a private message."
        )
        markup = None
        if self.bot.username:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(t("Open a private chat"), url=f"https://t.me/{self.bot.username}")]]
            )
        try:
            await self.sender.call(partial(self.bot.send_message, message.chat.id, text, reply_markup=markup))
        except SendError as exc:
            log.warning("telegram group answer not delivered: %s", exc)

    async def _on_membership(self, update: Update) -> None:
        """Telegram tells us when a person blocks (status kicked) or unblocks the bot."""
        change = update.my_chat_member
        assert change is not None
        if change.chat.type != ChatType.PRIVATE:
            return
        status = change.new_chat_member.status
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            await self.sender.set_blocked(str(change.chat.id), blocked=True)
        elif status == ChatMemberStatus.MEMBER:
            await self.sender.set_blocked(str(change.chat.id), blocked=False)

    @staticmethod
    async def _quietly(call: Awaitable[Any]) -> None:
        """Answering a query and editing a message are niceties: their failure stops nothing,
        and an unreachable Telegram does not hold the webhook for long."""
        try:
            async with asyncio.timeout(REPLY_BUDGET_SECONDS):
                await call
        except (TelegramError, TimeoutError) as exc:
            log.debug("telegram courtesy call failed: %r", exc)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        who = ""
        if isinstance(update, Update) and update.effective_chat is not None:
            who = person_tag(str(update.effective_chat.id))
        log.error("telegram update from %s failed: %r", who or "?", context.error)

    # ------------------------------------------------------------------ start and stop

    async def start(self) -> None:
        """Check the token (getMe), set the command menu, then poll or make sure of the webhook."""
        await self.application.initialize()
        try:
            await self.register_commands()
        except SendError as exc:
            log.warning("telegram command menu not set: %s", exc)
        if self.polling:
            await self.application.start()
            assert self.application.updater is not None
            await self.application.updater.start_polling(
                timeout=timedelta(seconds=self.poll_timeout), allowed_updates=ALLOWED_UPDATES
            )
        else:
            await self.ensure_webhook()
        self.ready = True
        log.info("telegram bot @%s ready (%s)", self.bot.username, "polling" if self.polling else "webhook")

    async def stop(self) -> None:
        self.ready = False
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    # ------------------------------------------------------------------ set-up

    async def register_commands(self) -> None:
        """The command menu, in Vietnamese and English (and the default language for others)."""
        default = self.app.settings.default_locale
        for language in (*SUPPORTED, None):
            t = translator(language or default)
            commands = [BotCommand(name, description) for name, description in platform_commands(t)]
            await self.sender.call(partial(self.bot.set_my_commands, commands, language_code=language))

    async def ensure_webhook(self) -> None:
        """Register our webhook unless Telegram already has it."""
        assert self.webhook_url is not None
        info = await self.sender.call(self.bot.get_webhook_info)
        if getattr(info, "url", None) != self.webhook_url:
            await self.set_webhook()

    async def set_webhook(self) -> None:
        assert self.webhook_url is not None
        await self.sender.call(
            partial(
                self.bot.set_webhook,
                self.webhook_url,
                secret_token=self.secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        )
        log.info("telegram webhook registered")

    # ------------------------------------------------------------------ the webhook

    def router(self) -> APIRouter:
        router = APIRouter(tags=["telegram"])

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> Response:
            if not secret_matches(request.headers.get(SECRET_HEADER), self.secret):
                log.warning("telegram webhook call with a wrong or missing secret refused")
                return Response(status_code=403)
            if not self.ready:
                return Response(status_code=503)  # Telegram retries later
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                return Response(status_code=413)
            try:
                update = Update.de_json(parse_update(body), self.bot)
            except BadUpdate as exc:
                log.warning("telegram webhook body refused: %s", exc)
                return Response(status_code=400)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:  # shapes PTB cannot read
                log.warning("telegram webhook body refused: %s", type(exc).__name__)
                return Response(status_code=400)
            await self.application.process_update(update)
            return Response(status_code=200)

        return router


def build_application(
    token: str,
    api_base_url: str,
    rate_limiter: BaseRateLimiter[Any],
    *,
    polling: bool,
    poll_timeout: int = 25,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The PTB application: our Bot API server, our limiter, no job queue, no PTB persistence."""
    base = api_base_url.rstrip("/")
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        Application.builder()
        .token(token)
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .request(
            HTTPXRequest(
                connection_pool_size=64, connect_timeout=5, read_timeout=15, write_timeout=15, pool_timeout=5
            )
        )
        .rate_limiter(rate_limiter)
        .job_queue(None)
        .concurrent_updates(64)  # a person's own updates are serialised by a per-chat lock
    )
    if polling:
        builder = builder.get_updates_request(
            HTTPXRequest(connect_timeout=5, read_timeout=poll_timeout + 10, pool_timeout=5)
        )
    else:
        builder = builder.updater(None)
    return builder.build()


# ----------------------------------------------------------------------------- CLI helpers


async def run_admin(app: App, action: str) -> list[str]:
    """`khuyenhoc telegram set-webhook | delete-webhook | info`: one call each, lines to print."""
    from bot.channels.manager import install_token_redaction

    channel = TelegramChannel(app)
    assert app.settings.telegram_token is not None
    install_token_redaction(app.settings.telegram_token.get_secret_value(), channel.secret)
    lines: list[str] = []
    async with channel.application:
        bot = channel.bot
        if action == "set-webhook":
            if channel.webhook_url is None:
                raise ValueError("PUBLIC_URL is not set: there is no webhook address to register")
            await channel.register_commands()
            await channel.set_webhook()
            lines.append(f"Webhook registered: {channel.webhook_url}")
            lines.append("Command menu set (vi, en).")
        elif action == "delete-webhook":
            await channel.sender.call(bot.delete_webhook)
            lines.append("Webhook removed: `khuyenhoc run` without PUBLIC_URL now polls.")
        info = await channel.sender.call(bot.get_webhook_info)
        lines.append(f"Bot: @{bot.username} ({bot.first_name})")
        lines.append(
            f"Webhook: {info.url or '(none: polling)'}; pending updates: {info.pending_update_count}"
        )
        if info.last_error_message:
            lines.append(f"Last delivery error: {info.last_error_message}")
    return lines
