"""What runs the Telegram and Zalo channels inside `khuyenhoc run`.

`ChannelRuntime(app)`, built once per process by the composition root (bot.runtime.bootstrap),
holds the channels that have a token. Its `routers()` go into the HTTP app: the webhook routes when PUBLIC_URL
is set, and in every case a lifespan that starts the channels with the server and stops them
with it. Starting happens in the background and is retried: Telegram may be unreachable from
Vietnam, and that must never keep Zalo or the web chat from serving.

The bot tokens are part of every Bot API URL, and httpx logs each request URL at INFO (PTB logs
its base URL at DEBUG as the bot is built): `install_token_redaction` redacts every log record
as it is made, and the runtime installs it before it builds a channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from bot.domain.app import App
from bot.domain.sending import ChannelSender, PermanentError, SendError

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel
    from bot.channels.zalo.channel import ZaloChannel

log = logging.getLogger(__name__)

MAX_START_DELAY = 300.0


# ----------------------------------------------------------------------------- log redaction


class RedactSecrets(logging.Filter):
    """Replaces bot tokens and webhook secrets in log records (message, arguments, traceback)."""

    # A Bot API path segment: /bot<token>/ (Telegram, Zalo), and Telegram-shaped tokens anywhere.
    _PATTERNS = (
        re.compile(r"(/bot)[^/\s\"']+(?=/)"),
        re.compile(r"\b(bot)?\d{5,}:[A-Za-z0-9_-]{20,}"),
    )
    REPLACEMENT = "<redacted>"

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, self.REPLACEMENT)
        text = self._PATTERNS[0].sub(lambda m: m.group(1) + self.REPLACEMENT, text)
        return self._PATTERNS[1].sub(lambda m: (m.group(1) or "") + self.REPLACEMENT, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken log call is not ours to fix here
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


_REDACTION = RedactSecrets()
# Loggers that see Bot API URLs or errors. Filters apply only to records a logger creates itself,
# so each one gets the filter, not just the parents.
_LOGGER_PREFIXES = ("httpx", "httpcore", "telegram", "bot.channels", "bot.services.incoming", "uvicorn.error")


def _redacting_record_factory() -> None:
    """Redact every log record as it is made, whatever logger makes it: a filter on a logger
    sees only that logger's own records, and loggers made later (a library's child logger) or
    handlers set up earlier (a test's, a deployment's logging config) would otherwise print a
    token. Installed once per process."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _REDACTION.filter(record)
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def install_token_redaction(*secrets: str | None) -> RedactSecrets:
    """Idempotent: remember `secrets` and redact them from every log record from now on."""
    _REDACTION.secrets.update(s for s in secrets if s and len(s) >= 6)
    if _REDACTION.secrets:  # without a token there is nothing to hide, and records stay as cheap
        _redacting_record_factory()
    # PTB creates its loggers when its modules load: load them before walking the logger tree.
    import telegram.ext  # noqa: F401

    names = {n for n in logging.root.manager.loggerDict if n.startswith(_LOGGER_PREFIXES)}
    names |= {
        "httpx",
        "telegram",
        "telegram.Bot",
        "telegram.ext.ExtBot",
        "telegram.ext.Updater",
        "telegram.ext.Application",
        "bot.channels.telegram.channel",
        "bot.channels.zalo.channel",
        "bot.channels.zalo.client",
        "bot.channels.manager",
        "bot.channels.ratelimit",
    }
    for name in names:
        logger = logging.getLogger(name)
        if _REDACTION not in logger.filters:
            logger.addFilter(_REDACTION)
    return _REDACTION


# ----------------------------------------------------------------------------- the runtime


class ChannelRuntime:
    """The platform channels of one process, built from the settings."""

    def __init__(self, app: App) -> None:
        settings = app.settings
        self.app = app
        self.telegram: TelegramChannel | None = None
        self.zalo: ZaloChannel | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Before any channel is built: PTB logs its Bot API URL, token included, as it is made.
        configured = (
            settings.telegram_token,
            settings.zalo_token,
            settings.telegram_webhook_secret,
            settings.zalo_webhook_secret,
        )
        install_token_redaction(*(s.get_secret_value() for s in configured if s is not None))
        secrets: list[str | None] = []
        if settings.telegram_token is not None:
            from bot.channels.telegram.channel import TelegramChannel

            self.telegram = TelegramChannel(app)
            secrets += [settings.telegram_token.get_secret_value(), self.telegram.secret]
        if settings.zalo_token is not None:
            from bot.channels.zalo.channel import ZaloChannel
            from bot.channels.zalo.client import ZaloClient

            token = settings.zalo_token.get_secret_value()
            self.zalo = ZaloChannel(app, ZaloClient(token, settings.zalo_api_base_url, timeout=15))
            secrets += [token, self.zalo.secret]
        install_token_redaction(*secrets)

    def senders(self) -> dict[str, ChannelSender]:
        """The platform senders by channel, for the outbox sender (bot.runtime.bootstrap)."""
        found: dict[str, ChannelSender] = {}
        if self.telegram is not None:
            found[self.telegram.sender.channel] = self.telegram.sender
        if self.zalo is not None:
            found[self.zalo.sender.channel] = self.zalo.sender
        return found

    @property
    def empty(self) -> bool:
        return self.telegram is None and self.zalo is None

    def routers(self) -> list[APIRouter]:
        """The webhook routes (webhook mode) and the lifespan that starts and stops the channels."""
        if self.empty:
            return []
        router = APIRouter(lifespan=self._lifespan)
        if self.telegram is not None and not self.telegram.polling:
            router.include_router(self.telegram.router())
        if self.zalo is not None and not self.zalo.polling:
            router.include_router(self.zalo.router())
        return [router]

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Start each channel in the background; returns at once."""
        if self.telegram is not None:
            self._tasks.append(asyncio.create_task(self._run_telegram(self.telegram), name="telegram"))
        if self.zalo is not None:
            self._tasks.append(asyncio.create_task(self._run_zalo(self.zalo), name="zalo"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.telegram is not None:
            try:
                await self.telegram.stop()
            except Exception:
                log.exception("telegram did not stop cleanly")
        if self.zalo is not None:
            await self.zalo.drain()
            await self.zalo.client.aclose()

    async def _run_telegram(self, channel: TelegramChannel) -> None:
        from telegram.error import InvalidToken, TelegramError

        delay = 1.0
        while True:
            try:
                await channel.start()
                return
            except InvalidToken:
                # The exception's text contains the token: say what happened without it.
                log.error("Telegram rejected TELEGRAM_TOKEN: the Telegram channel stays off")
                return
            except (TelegramError, SendError, OSError) as exc:
                log.warning("Telegram not reachable (%s); trying again in %.0fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_START_DELAY)

    async def _run_zalo(self, channel: ZaloChannel) -> None:
        delay = 1.0
        while True:
            try:
                await channel.start()
                break
            except PermanentError as exc:
                log.error("Zalo refused the bot (%s): the Zalo channel stays off; check ZALO_TOKEN", exc)
                return
            except SendError as exc:
                log.warning("Zalo not reachable (%s); trying again in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_START_DELAY)
        if channel.polling:
            await channel.poll_forever(self.app.settings.poll_timeout_seconds)
