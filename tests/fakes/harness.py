"""The bot's real HTTP app on a real socket, wired to the fake Bot API servers.

`running_bot(...)` serves the composition root's `Bot.http_app()` with uvicorn on 127.0.0.1;
its lifespan starts the channel runtime exactly as `khuyenhoc run` does (webhooks when
`webhook=True`, which sets PUBLIC_URL to the bot's own address, polling otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.channels.manager import ChannelRuntime
from bot.domain.app import App
from tests.fakes.serving import bound_socket, serving, url_of
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.support import make_bot

FakeApi = TypeVar("FakeApi", FakeTelegram, FakeZalo)

TELEGRAM_TOKEN = "1234567:AAH-test-token-0123456789abcdefXYZ"
ZALO_TOKEN = "3141592653589793:zalo-test-token-0123456789abcdef"
FAST = {
    # Quick tests: no per-chat spacing, short backoff. Limits have their own tests.
    "telegram_chat_rate_per_second": 0,
    "zalo_chat_rate_per_second": 0,
    "zalo_rate_per_second": 0,
    "send_retry_backoff_seconds": 0.05,
    "poll_timeout_seconds": 2,
}


@asynccontextmanager
async def fake_api_served(api: FakeApi) -> AsyncIterator[FakeApi]:
    """A fake Bot API server (Telegram's or Zalo's) on 127.0.0.1 for the duration of the block."""
    async with serving(api.app, lifespan="off") as url:
        api.url = url
        try:
            yield api
        finally:
            await api.close()


@dataclass
class Running:
    app: App
    runtime: ChannelRuntime
    url: str


@asynccontextmanager
async def running_bot(database_url: str, *, webhook: bool, **settings: Any) -> AsyncIterator[Running]:
    sock = bound_socket()
    options = {**FAST, **settings}
    bot = make_bot(
        database_url, public_url=url_of(sock) if webhook else None, webchat_enabled=False, **options
    )
    app, runtime = bot.app, bot.channels
    try:
        async with serving(bot.http_app(), sock) as url:
            async with asyncio.timeout(10):
                while not all(c.ready for c in (runtime.telegram, runtime.zalo) if c is not None):
                    await asyncio.sleep(0.01)
            yield Running(app, runtime, url)
    finally:
        await app.db.dispose()


async def eventually(check: Any, timeout: float = 5.0) -> None:
    """Wait until `check()` is true (for what polling mode does in the background)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)
