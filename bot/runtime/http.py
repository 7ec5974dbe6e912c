"""The one ASGI app: health, metrics, the web chat, and the channels' webhooks.

Each channel contributes an `APIRouter`; `default_routers` decides which are mounted, so adding
Telegram or Zalo webhooks is one more entry there.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bot.channels.manager import ChannelRuntime
from bot.domain.app import App
from bot.runtime import metrics

log = logging.getLogger(__name__)

ACCESS_LOGGER = "uvicorn.access"


class RedactClientIds(logging.Filter):
    """Access logs print request paths, and two paths carry a credential: the web chat's poll path
    the client id (the contact's only credential there), the console's login link its one-time
    token. Replace either with a short hash before anything is written."""

    _pattern = re.compile(r"((?:client_id|token)=)([^&\s]+)")

    def _redact(self, value: object) -> object:
        if not isinstance(value, str) or ("client_id=" not in value and "token=" not in value):
            return value
        from bot.channels.webchat.channel import short_id

        return self._pattern.sub(lambda m: f"{m.group(1)}#{short_id(m.group(2))}", value)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(a) for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = str(self._redact(record.msg))
        return True


def install_log_redaction() -> None:
    """Idempotent; logger filters survive uvicorn's own logging configuration."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactClientIds) for f in access.filters):
        access.addFilter(RedactClientIds())


def default_routers(app: App, channels: ChannelRuntime | None = None) -> list[APIRouter]:
    """The web chat's routes when it is enabled, the staff console's, and the platform channels'
    (webhooks, lifespan)."""
    from bot.channels.console import router as console

    routers: list[APIRouter] = [console.create_router(app)]
    if app.settings.webchat_enabled:
        from bot.channels.webchat import channel as webchat

        routers.append(webchat.create_router(app))
    if channels is not None:
        routers += channels.routers()
    return routers


def create_http_app(app: App, routers: list[APIRouter] | None = None) -> FastAPI:
    """The HTTP app with `routers` (default: the web chat alone, when enabled; the composition
    root's `Bot.http_app()` adds the platform channels)."""
    install_log_redaction()
    # Every route's body is limited (the webhooks'; the web chat's router sets its own, lower
    # limit): the framework answers 413 while reading, before a large body is held in memory.
    api = FastAPI(
        title="Khuyến học Bot",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        max_body_size=app.settings.webhook_max_body_bytes or None,
    )

    # Pages and files of a thousand bytes or more go compressed to browsers that accept it: the
    # console's province view is about 320 KB of HTML and SVG, read over rural mobile networks.
    api.add_middleware(GZipMiddleware, minimum_size=1000)

    @api.get("/health", tags=["ops"])
    async def health() -> JSONResponse:
        try:
            async with app.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            log.exception("health check: database unreachable")
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    api.include_router(metrics.create_router(app))
    for router in default_routers(app) if routers is None else routers:
        api.include_router(router)
        # A router may name handlers for its own exceptions (the console's "log in first" page).
        for exc, handler in getattr(router, "exception_handlers", {}).items():
            api.add_exception_handler(exc, handler)
    return api
