"""Keep probing (issue 11, item 8): the HTTP endpoints fuzzed from their OpenAPI schema.

Schemathesis generates requests for every operation of the schema the bot serves (/openapi.json:
the web chat's messages, poll and logout, and /health), both requests that fit it and requests
that break it (wrong types, missing fields, values out of range), and sends them with a real
HTTP client to the real app served by uvicorn, wired to the fake Telegram and Zalo Bot API
servers. The two platform webhooks are left out of the served schema on purpose (the platforms
call them, not clients); they are added here, described by the pydantic models the webhooks
parse their bodies with (bot/channels/*/payload.py), and every request carries the right secret
headers, so that bodies get past the secret check and are actually parsed and handled.

It asserts that no answer is a 5xx, and that no request made the bot fail inside: the catch-all
error counter (`step_errors`) stays at zero and nothing is logged at ERROR (a webhook update whose
handling fails is logged and answered 200, so the status alone would not show it).

Settings as in tests/test_fuzz_dialogue.py: KHUYENHOC_FUZZ=ci (default, derandomized) or long.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import BaseModel

from bot.channels.telegram import channel as telegram_channel
from bot.channels.telegram.payload import TgUpdate
from bot.channels.zalo import channel as zalo_channel
from bot.channels.zalo.payload import ZaloEnvelope
from bot.runtime.bootstrap import Bot
from tests.conftest import BACKENDS, fresh_postgres_database
from tests.fakes.harness import FAST, TELEGRAM_TOKEN, ZALO_TOKEN, fake_api_served
from tests.fakes.serving import bound_socket, serving, url_of
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.support import make_bot, seed_tree

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
    "print_blob": True,
}
settings.register_profile("http-ci", max_examples=100, derandomize=True, **_COMMON)
settings.register_profile("http-long", max_examples=2000, **_COMMON)
PROFILE = os.environ.get("KHUYENHOC_FUZZ", "ci")


# ----------------------------------------------------------------------------- the schema


def _webhook(model: type[BaseModel], tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An OpenAPI operation whose JSON body is `model`, and the component schemas it refers to."""
    body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    components = body.pop("$defs", {})
    components[model.__name__] = body
    operation = {
        "post": {
            "tags": [tag],
            "operationId": f"{tag}_webhook",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                },
            },
            "responses": {
                "200": {"description": "Handled, or ignored"},
                "400": {"description": "No update the channel can read"},
                "413": {"description": "Too large"},
            },
        }
    }
    return operation, components


def full_schema(served: dict[str, Any]) -> dict[str, Any]:
    """The schema the bot serves, with the two webhooks added."""
    schema = {**served, "paths": dict(served["paths"]), "components": {"schemas": {}}}
    schema["components"]["schemas"].update(served.get("components", {}).get("schemas", {}))
    for path, model, tag in (
        (telegram_channel.WEBHOOK_PATH, TgUpdate, "telegram"),
        (zalo_channel.WEBHOOK_PATH, ZaloEnvelope, "zalo"),
    ):
        operation, components = _webhook(model, tag)
        schema["paths"][path] = operation
        schema["components"]["schemas"].update(components)
    return schema


# ----------------------------------------------------------------------------- the server


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from any logger, while installed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Served:
    bot: Bot
    url: str
    headers: dict[str, str]  # the webhooks' secret headers
    seen: dict[str, int] = field(default_factory=dict)  # "operation status" → requests

    def step_errors(self) -> float:
        """The catch-all error counter, all channels."""
        return sum(
            sample.value
            for metric in self.bot.app.metrics.registry.collect()
            if metric.name == "khuyenhoc_dialogue_errors"
            for sample in metric.samples
            if sample.name.endswith("_total")
        )


@contextmanager
def served_in_a_thread(database: Callable[[], AbstractAsyncContextManager[str]]) -> Iterator[Served]:
    """The bot (web chat and both webhooks) and the fake Bot API servers, served by uvicorn on
    an event loop of their own in a thread: schemathesis' client blocks the test's thread."""
    ready = threading.Event()
    result: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(database())
            telegram = await stack.enter_async_context(fake_api_served(FakeTelegram(TELEGRAM_TOKEN)))
            zalo = await stack.enter_async_context(fake_api_served(FakeZalo(ZALO_TOKEN)))
            sock = bound_socket()
            bot = make_bot(
                url,
                public_url=url_of(sock),
                webchat_enabled=True,
                telegram_token=TELEGRAM_TOKEN,
                telegram_api_base_url=telegram.url,
                zalo_token=ZALO_TOKEN,
                zalo_api_base_url=zalo.url,
                **FAST,
            )
            stack.push_async_callback(bot.app.db.dispose)
            await seed_tree(bot.app)
            base = await stack.enter_async_context(serving(bot.http_app(), sock))
            runtime = bot.channels
            assert runtime.telegram is not None and runtime.zalo is not None
            async with asyncio.timeout(10):
                while not (runtime.telegram.ready and runtime.zalo.ready):
                    await asyncio.sleep(0.01)
            headers = {
                telegram_channel.SECRET_HEADER: runtime.telegram.secret,
                zalo_channel.SECRET_HEADER: runtime.zalo.secret,
            }
            result["served"] = Served(bot, base, headers)
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            result["error"] = exc
        finally:
            ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="fuzzed-bot")
    thread.start()
    ready.wait(120)
    try:
        if "served" not in result:
            raise RuntimeError("the bot did not start") from result.get("error")
        yield result["served"]
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        if "error" in result:
            raise result["error"]


# ----------------------------------------------------------------------------- the fuzz


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, _db_templates: Any
) -> Iterator[Served]:
    """One bot per backend for all the operations' fuzzing: a module's worth of requests."""
    database: Callable[[], AbstractAsyncContextManager[str]]
    if request.param == "sqlite":

        @asynccontextmanager
        async def database() -> AsyncIterator[str]:
            yield await _db_templates.sqlite_copy(tmp_path_factory.mktemp("fuzz-http") / "fuzz.db")

    else:
        template = asyncio.run(_db_templates.postgres_template())

        def database() -> AbstractAsyncContextManager[str]:
            return fresh_postgres_database(template)

    with served_in_a_thread(database) as running:
        yield running
    # The fuzz reached the handlers (bodies accepted, not only refused) of the operations it ran.
    for operation in ("POST /api/webchat/messages", "POST /telegram/webhook", "POST /zalo/webhook"):
        if any(key.startswith(operation) for key in running.seen):
            assert f"{operation} 200" in running.seen, running.seen


def served_openapi() -> dict[str, Any]:
    """The schema the bot serves at /openapi.json (built without a server; the fixture checks
    that the running one serves the same)."""
    return make_bot("sqlite+aiosqlite:///:memory:", webchat_enabled=True).http_app().openapi()


@pytest.fixture(scope="module")
def session(served: Served) -> Iterator[requests.Session]:
    with requests.Session() as s:
        raw = s.get(f"{served.url}/openapi.json", timeout=30)
        raw.raise_for_status()
        assert raw.json() == served_openapi()
        yield s


schema = schemathesis.openapi.from_dict(full_schema(served_openapi()))


@schema.parametrize()
@settings(settings.get_profile(f"http-{PROFILE}"))
def test_no_request_gets_a_5xx_or_fails_inside(
    case: schemathesis.Case, served: Served, session: requests.Session
) -> None:
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        response = case.call(base_url=served.url, session=session, headers=served.headers, timeout=60)
    finally:
        logging.getLogger().removeHandler(errors)
    what = f"{case.operation.label}: {case.as_curl_command()}"
    assert response.status_code < 500, f"{response.status_code} for {what}"
    assert served.step_errors() == 0, f"the catch-all error for {what}"
    assert not errors.records, f"{[r.getMessage() for r in errors.records]} for {what}"
    key = f"{case.operation.label} {response.status_code}"
    served.seen[key] = served.seen.get(key, 0) + 1
