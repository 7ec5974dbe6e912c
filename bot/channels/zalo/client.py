"""A small client for the Zalo Bot Platform API (https://bot.zaloplatforms.com/docs), on httpx.

The API is shaped like Telegram's: `POST {base}/bot{TOKEN}/{method}` with a JSON body answers
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": n, "description": "..."}`.
`getUpdates` long-polls and returns at most ONE update per call; "nothing new" is error 408.

Errors are raised as the channel errors of `bot.domain.sending` (RateLimited, Blocked,
TransientError, PermanentError) so the sender's retry logic treats every platform alike. The token
is part of every URL: never log `request.url` (bot.channels.manager redacts httpx's own logs).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

import httpx

from bot.domain.sending import Blocked, PermanentError, RateLimited, SendError, TransientError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://bot-api.zaloplatforms.com"
NO_UPDATES = 408  # getUpdates: the long poll ended with nothing new
DEFAULT_RETRY_AFTER = 1.0


class ZaloApiError(PermanentError):
    """The API refused the call (ok: false) for a reason retrying will not fix."""

    def __init__(self, method: str, code: int | None, description: str) -> None:
        super().__init__(f"Zalo {method} failed ({code}): {description}")
        self.method = method
        self.code = code
        self.description = description


class ZaloClient:
    """`async with ZaloClient(token) as zalo: await zalo.send_message(chat_id, "Xin chào")`."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Zalo bot token is required")
        self._prefix = f"{base_url.rstrip('/')}/bot{token}/"
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ the one HTTP call

    async def call(
        self, method: str, payload: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Call one API method and return its `result`; raise a channel error otherwise."""
        try:
            response = await self._http.post(
                self._prefix + method,
                json=payload or {},
                timeout=httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"Zalo {method}: timed out") from exc
        except httpx.TransportError as exc:
            # str(exc) of a transport error names no URL, so no token reaches the logs.
            raise TransientError(f"Zalo {method}: {type(exc).__name__}") from exc
        return self._result(method, response)

    @staticmethod
    def _result(method: str, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        data: dict[str, Any] = body if isinstance(body, dict) else {}
        code = data.get("error_code")
        status = response.status_code
        if response.is_success and data.get("ok", False) is True:
            return data.get("result")
        error = code if isinstance(code, int) else status
        description = str(data.get("description") or response.reason_phrase or "")[:300]
        if error == 429 or status == 429:
            raise RateLimited(_retry_after(data, response))
        if error == 403 or status == 403:
            raise Blocked(f"Zalo {method}: {description}")
        if error == NO_UPDATES or status == NO_UPDATES:
            raise _NoUpdates()
        if status >= 500 or (isinstance(code, int) and code >= 500):
            raise TransientError(f"Zalo {method}: HTTP {status} {description}")
        raise ZaloApiError(method, error, description)

    # ------------------------------------------------------------------ methods

    async def get_me(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("getMe")
        return result

    async def get_updates(self, timeout: int = 25) -> dict[str, Any] | None:
        """Wait up to `timeout` seconds for the next update; None when nothing came."""
        try:
            result = await self.call("getUpdates", {"timeout": str(timeout)}, timeout=timeout + self._timeout)
        except _NoUpdates:
            return None
        if isinstance(result, list):  # tolerate a Telegram-style list
            return result[0] if result else None
        return result if isinstance(result, dict) and result else None

    async def set_webhook(self, url: str, secret_token: str) -> Any:
        return await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> Any:
        return await self.call("deleteWebhook")

    async def get_webhook_info(self) -> dict[str, Any]:
        result = await self.call("getWebhookInfo")
        return result if isinstance(result, dict) else {}

    async def send_message(self, chat_id: str, text: str) -> dict[str, Any]:
        result = await self.call("sendMessage", {"chat_id": chat_id, "text": text})
        return result if isinstance(result, dict) else {}

    async def send_photo(self, chat_id: str, photo_url: str, caption: str | None = None) -> dict[str, Any]:
        """Zalo takes photos by URL (no upload): the image must be reachable from the internet."""
        payload: dict[str, Any] = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            payload["caption"] = caption
        result = await self.call("sendPhoto", payload)
        return result if isinstance(result, dict) else {}

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> Any:
        return await self.call("sendChatAction", {"chat_id": chat_id, "action": action})


class _NoUpdates(SendError):
    """getUpdates ended without an update (408); only `get_updates` sees this."""


def _retry_after(data: dict[str, Any], response: httpx.Response) -> float:
    """From `parameters.retry_after` (Telegram style) or a Retry-After header; else a default."""
    params = data.get("parameters")
    candidates: list[object] = []
    if isinstance(params, dict):
        candidates.append(params.get("retry_after"))
    candidates.append(data.get("retry_after"))
    candidates.append(response.headers.get("retry-after"))
    for value in candidates:
        try:
            if value is not None and float(str(value)) >= 0:
                return float(str(value))
        except ValueError:
            continue
    return DEFAULT_RETRY_AFTER
