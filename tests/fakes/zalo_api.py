"""A fake Zalo Bot Platform API server (https://bot.zaloplatforms.com/docs), for the Zalo tests.

`POST /bot{TOKEN}/{method}` with a JSON body, answers `{"ok": true, "result": ...}`. getUpdates
hands out ONE update per call and answers HTTP 408 when its long poll ends with nothing new, as
the real API does. Updates go to the webhook (with the X-Bot-Api-Secret-Token header) when one is
registered. Messages over 2,000 characters are refused; 429s, 5xx, blocked users and an outage
(`down()`: every call answers 502 until `up()`) can be injected.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_TEXT = 2000


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class FakeZalo:
    token: str
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    taken: int = 0  # updates handed out by getUpdates
    outage: int | None = None  # while set, every call answers this status (see `down`)

    def __post_init__(self) -> None:
        self._pending: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Event()
        self._ids = itertools.count(1)
        self._failures: dict[str, deque[tuple[int, int | None]]] = {}
        self._client: httpx.AsyncClient | None = None
        self._closing = False
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["POST", "GET"])])

    # ------------------------------------------------------------------ test controls

    def fail(self, method: str, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        queue = self._failures.setdefault(method, deque())
        for _ in range(times):
            queue.append((status, retry_after))

    def down(self, status: int = 502) -> None:
        """The platform is unreachable behind its gateway: every call answers `status` until `up()`."""
        self.outage = status

    def up(self) -> None:
        self.outage = None

    def sent(self, chat_id: str | None = None) -> list[dict[str, Any]]:
        out = [c.params for c in self.calls if c.method in ("sendMessage", "sendPhoto") and c.status == 200]
        return [p for p in out if chat_id is None or p.get("chat_id") == chat_id]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def update(
        self,
        user_id: str,
        text: str | None = None,
        *,
        event: str = "message.text.received",
        name: str = "Nguyễn Văn Lan",
        chat_type: str = "PRIVATE",
        chat_id: str | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": f"m{next(self._ids):08x}",
            "chat": {"id": chat_id or user_id, "chat_type": chat_type},
            "from": {"id": user_id, "display_name": name, "is_bot": False},
            "date": int(time.time() * 1000),
        }
        if text is not None:
            message["text"] = text
        if event == "message.image.received":
            message["photo_url"] = "https://example.invalid/p.jpg"
        return {"event_name": event, "message": message}

    async def deliver(
        self, update: dict[str, Any], *, wrapped: bool = False, secret: str | None = None
    ) -> int:
        """POST to the webhook (returns the status) or queue for getUpdates (returns 0)."""
        if self.webhook.get("url"):
            body = {"ok": True, "result": update} if wrapped else update
            token = secret if secret is not None else self.webhook.get("secret_token")
            headers = {"X-Bot-Api-Secret-Token": token} if token else {}
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=30)
            response = await self._client.post(self.webhook["url"], json=body, headers=headers)
            return response.status_code
        self._pending.append(update)
        self._arrived.set()
        return 0

    async def close(self) -> None:
        """Release a long poll still waiting (its client is gone) and the webhook client."""
        self._closing = True
        self._arrived.set()
        if self._client is not None:
            await self._client.aclose()

    # ------------------------------------------------------------------ the API

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        body = await request.body()
        params: dict[str, Any] = json.loads(body) if body else {}
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        if self.outage is not None:
            call.status = self.outage
            return _error(self.outage, "Bad Gateway")
        failures = self._failures.get(method)
        if failures:
            status, retry_after = failures.popleft()
            call.status = status
            return _error(
                status, "Too Many Requests" if status == 429 else "Server error", retry_after=retry_after
            )
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            return _error(404, "Method not found")
        result = await handler(params)
        if isinstance(result, JSONResponse):
            call.status = result.status_code
            return result
        return JSONResponse({"ok": True, "result": result})

    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return {
            "id": "bot-1",
            "account_name": "bot.khuyenhoc",
            "account_type": "BASIC",
            "can_join_groups": False,
        }

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook.get("url"):
            return _error(400, "Webhook is set: getUpdates is not available")
        if self._closing:
            return _error(408, "Request timeout")
        if not self._pending:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(float(p.get("timeout") or 0), 5.0))
            except TimeoutError:
                return _error(408, "Request timeout")
        if not self._pending:
            return _error(408, "Request timeout")
        self.taken += 1
        return self._pending.popleft()

    async def _m_setWebhook(self, p: dict[str, Any]) -> Any:
        secret = str(p.get("secret_token", ""))
        if not 8 <= len(secret) <= 256:
            return _error(400, "secret_token must be 8-256 characters")
        self.webhook = {"url": p["url"], "secret_token": secret, "updated_at": int(time.time() * 1000)}
        return {"url": p["url"], "updated_at": self.webhook["updated_at"]}

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = {}
        return {"url": "", "updated_at": int(time.time() * 1000)}

    async def _m_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        return {"url": self.webhook.get("url", ""), "updated_at": self.webhook.get("updated_at", 0)}

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id = str(p.get("chat_id", ""))
        text = str(p.get("text", ""))
        if chat_id in self.blocked:
            return _error(403, "User has blocked the bot")
        if not text or len(text) > MAX_TEXT:
            return _error(400, f"text must be 1-{MAX_TEXT} characters")
        return {"message_id": f"s{next(self._ids):08x}", "date": int(time.time() * 1000)}

    async def _m_sendPhoto(self, p: dict[str, Any]) -> Any:
        return {"message_id": f"s{next(self._ids):08x}", "date": int(time.time() * 1000)}

    async def _m_sendChatAction(self, p: dict[str, Any]) -> Any:
        return True


def _error(status: int, description: str, *, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)
