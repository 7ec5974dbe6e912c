"""A fake Telegram Bot API server, enough for the bot and python-telegram-bot to talk to.

It keeps a queue of updates (served by getUpdates, or POSTed to the registered webhook with its
secret header, as Telegram does), records every call and every message sent, enforces the
limits the real API enforces (4,096 characters, 64-byte callback data) and lets a test inject
429s (with retry_after), 5xx answers, users who blocked the bot, and an outage (`down()`: every
call answers 502 until `up()`).

    fake = FakeTelegram(TOKEN)
    async with serving(fake.app, lifespan="off") as url: ...   # base URL for TELEGRAM_API_BASE_URL
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BOT_ID = 7_000_001
BOT_USERNAME = "KhuyenHocTestBot"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
JSON_PARAMS = {"reply_markup", "commands", "allowed_updates", "scope", "entities", "link_preview_options"}
INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    status: int = 200


@dataclass
class Failure:
    status: int
    retry_after: int | None = None
    description: str = ""


@dataclass
class FakeTelegram:
    token: str
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)  # message_id → message
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # language → menu
    webhook: dict[str, Any] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    webhook_statuses: list[int] = field(default_factory=list)
    lenient_edits: bool = False  # the benchmark edits messages it made up itself
    outage: int | None = None  # while set, every call answers this status (see `down`)

    def __post_init__(self) -> None:
        self._pending: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Event()
        self._update_ids = itertools.count(500_000)
        self._closing = False
        self._message_ids = itertools.count(1)
        self._failures: dict[str, deque[Failure]] = {}
        self._client: httpx.AsyncClient | None = None
        self._down_after: tuple[int, int] | None = None
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])

    # ------------------------------------------------------------------ test controls

    def fail(self, method: str, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` answer `status` (429 with retry_after, 5xx…)."""
        queue = self._failures.setdefault(method, deque())
        for _ in range(times):
            queue.append(Failure(status, retry_after))

    def down(self, status: int = 502, *, after: int = 0) -> None:
        """Telegram is unreachable behind its gateway: every call (after the next `after`
        successful ones) answers `status` until `up()`."""
        self._down_after = (after, status)
        if after == 0:
            self.outage = status

    def up(self) -> None:
        self.outage = None
        self._down_after = None

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (in order), optionally to one chat."""
        out = [
            c.params
            for c in self.calls
            if c.method in ("sendMessage", "sendDocument", "sendPhoto") and c.status == 200
        ]
        return [p for p in out if chat_id is None or p.get("chat_id") == chat_id]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def user(self, user_id: int, first_name: str = "Lan", language_code: str = "vi") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}

    def text_update(
        self, user_id: int, text: str, *, chat: dict[str, Any] | None = None, **user: Any
    ) -> dict[str, Any]:
        sender = self.user(user_id, **user)
        return {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": chat or {"id": user_id, "type": "private", "first_name": sender["first_name"]},
                "from": sender,
                "text": text,
                **(
                    {"entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}
                    if text.startswith("/")
                    else {}
                ),
            },
        }

    def photo_update(self, user_id: int) -> dict[str, Any]:
        update = self.text_update(user_id, "x")
        message = update["message"]
        del message["text"]
        message["photo"] = [{"file_id": "p1", "file_unique_id": "u1", "width": 10, "height": 10}]
        return update

    def press_update(self, user_id: int, message_id: int, data: str) -> dict[str, Any]:
        """A button press on a message the bot sent earlier (as Telegram sends it back)."""
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": f"cq{next(self._update_ids)}",
                "from": self.user(user_id),
                "message": self.messages[message_id],
                "chat_instance": "ci-1",
                "data": data,
            },
        }

    def block_update(self, user_id: int, status: str = "kicked") -> dict[str, Any]:
        member: dict[str, Any] = {
            "user": {"id": BOT_ID, "is_bot": True, "first_name": "Bot"},
            "status": status,
        }
        if status == "kicked":
            member["until_date"] = 0
        return {
            "update_id": next(self._update_ids),
            "my_chat_member": {
                "chat": {"id": user_id, "type": "private", "first_name": "Lan"},
                "from": self.user(user_id),
                "date": int(time.time()),
                "old_chat_member": {"user": member["user"], "status": "member"},
                "new_chat_member": member,
            },
        }

    async def deliver(self, update: dict[str, Any]) -> int:
        """As Telegram: POST to the webhook (returns its HTTP status) or queue for getUpdates (0)."""
        if self.webhook.get("url"):
            headers = {}
            if self.webhook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=30)
            response = await self._client.post(self.webhook["url"], json=update, headers=headers)
            self.webhook_statuses.append(response.status_code)
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

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ the API

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await _params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        if self.outage is None and self._down_after is not None:
            left, status = self._down_after
            if left == 0:
                self.outage = status
            self._down_after = (left - 1, status)
        if self.outage is not None:
            call.status = self.outage
            return _error(self.outage, "Bad Gateway")
        failures = self._failures.get(method)
        if failures:
            failure = failures.popleft()
            call.status = failure.status
            if failure.status == 429:
                return _error(
                    429,
                    f"Too Many Requests: retry after {failure.retry_after}",
                    retry_after=failure.retry_after or 1,
                )
            return _error(failure.status, failure.description or "Internal Server Error")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(params)
        except _ApiError as exc:
            call.status = exc.status
            return _error(exc.status, exc.description)
        return JSONResponse({"ok": True, "result": result})

    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Khuyến học Bot",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        offset = int(p.get("offset") or 0)
        if self._closing:
            return []
        while self._pending and self._pending[0]["update_id"] < offset:
            self._pending.popleft()
        if not self._pending:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(float(p.get("timeout") or 0), 5.0))
            except TimeoutError:
                return []
        while self._pending and self._pending[0]["update_id"] < offset:
            self._pending.popleft()
        limit = int(p.get("limit") or 100)
        return list(itertools.islice(self._pending, 0, limit))

    async def _m_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = {
            "url": p.get("url", ""),
            "secret_token": p.get("secret_token"),
            "allowed_updates": p.get("allowed_updates"),
        }
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = {}
        return True

    async def _m_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    async def _m_setMyCommands(self, p: dict[str, Any]) -> Any:
        self.commands[p.get("language_code") or ""] = p["commands"]
        return True

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_sendChatAction(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        text = str(p.get("text", ""))
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        return self._store(p, text=text)

    async def _m_sendDocument(self, p: dict[str, Any]) -> Any:
        return self._store(
            p, document={"file_id": "d1", "file_unique_id": "d1", "file_name": p.get("document_name")}
        )

    async def _m_sendPhoto(self, p: dict[str, Any]) -> Any:
        return self._store(p, photo=[{"file_id": "p1", "file_unique_id": "p1", "width": 1, "height": 1}])

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        message = self.messages.get(int(p["message_id"]))
        if message is None:
            if not self.lenient_edits:
                raise _ApiError(400, "Bad Request: message to edit not found")
            message = self.messages[int(p["message_id"])] = self._store({"chat_id": p["chat_id"]}, text="")
        _check_markup(p.get("reply_markup"))
        message["text"] = p["text"]
        if p.get("reply_markup"):
            message["reply_markup"] = p["reply_markup"]
        else:
            message.pop("reply_markup", None)
        return message

    def _store(self, p: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(p["chat_id"])
        if chat_id in self.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        _check_markup(p.get("reply_markup"))
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {
                "id": chat_id,
                "type": "private" if chat_id > 0 else "group",
                "first_name": "Lan",
                "title": "Nhóm",
            },
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Khuyến học Bot", "username": BOT_USERNAME},
            **content,
        }
        if p.get("reply_markup"):
            message["reply_markup"] = p["reply_markup"]
        self.messages[message["message_id"]] = message
        p["message_id"] = message["message_id"]
        return message


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        self.status = status
        self.description = description


def _error(status: int, description: str, *, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)


def _check_markup(markup: Any) -> None:
    """Telegram refuses callback data over 64 bytes (BUTTON_DATA_INVALID)."""
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and len(data.encode()) > MAX_CALLBACK_DATA:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


async def _params(request: Request) -> dict[str, Any]:
    """PTB sends form fields (multipart when uploading), each value a string or JSON text."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    raw: dict[str, Any] = {}
    if content_type.startswith("application/json") and body:
        raw = json.loads(body)
        return raw
    if content_type.startswith("multipart/form-data"):
        parser = email.parser.BytesParser(policy=email.policy.HTTP)
        message = parser.parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            if filename:
                raw[f"{name}_name"] = filename
                raw[str(name)] = part.get_payload(decode=True)
                raw["document_name"] = filename
            else:
                raw[str(name)] = part.get_content()
    else:
        raw = dict(parse_qsl(body.decode(), keep_blank_values=True))
        raw.update(request.query_params)
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in JSON_PARAMS and isinstance(value, str):
            params[key] = json.loads(value)
        elif key in INT_PARAMS and isinstance(value, str) and value.lstrip("-").isdigit():
            params[key] = int(value)
        else:
            params[key] = value
    return params
