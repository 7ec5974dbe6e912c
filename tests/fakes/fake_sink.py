"""A fake channel server on 127.0.0.1 that counts what each recipient received, and the
`SinkSender` that sends to it (a `ChannelSender`, optionally deduplicating by key).

The server speaks just enough HTTP/1.1 (keep-alive, Content-Length) to be fast: the broadcast
benchmark pushes thousands of messages a second through it.

    POST /send   {"to": id, "text": ..., "key": optional}
                 200 delivered (or a duplicate key: not delivered again), 429 {"retry_after": s}
                 over the rate limit, 403 blocked recipient, 500 a failure the test asked for
    GET  /stats  counts as JSON

A delivery is counted when the request arrives, before the answer: `on_delivery` can then kill
the sender while the message is delivered but not yet acknowledged, the worst moment.

Run it alone (for the benchmark): python tests/fakes/fake_sink.py --rate 30 --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.domain.messages import Reply
from bot.domain.sending import Blocked, PermanentError, RateLimited, TransientError


@dataclass
class FakeSink:
    rate_limit: float = 0.0  # messages per second (sliding 1 s window); 0: none
    latency: float = 0.0  # seconds before answering
    delivered: Counter[str] = field(default_factory=Counter)  # what each person saw
    requests: Counter[str] = field(default_factory=Counter)  # accepted requests (duplicates too)
    texts: dict[str, list[str]] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    duplicates: int = 0
    rejected: int = 0  # 429s
    blocked: set[str] = field(default_factory=set)
    failing: Counter[str] = field(default_factory=Counter)  # recipient -> 500s still to give
    refused: set[str] = field(default_factory=set)  # recipient -> 400 for good
    on_delivery: Callable[[int], None] | None = None
    first_at: float | None = None
    last_at: float | None = None
    _window: deque[float] = field(default_factory=deque)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.delivered.values())

    async def start(self, port: int = 0) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        sock = self._server.sockets[0].getsockname()
        return f"http://127.0.0.1:{sock[1]}"

    async def stop(self) -> None:
        """Close the clients' connections first: their handlers then end on their own rather
        than being cancelled (which asyncio would log as an error)."""
        for writer in list(self._writers):
            writer.close()
        await asyncio.sleep(0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def stats(self) -> dict[str, Any]:
        span = (self.last_at - self.first_at) if self.first_at and self.last_at else 0.0
        return {
            "delivered": self.total,
            "recipients": len(self.delivered),
            "requests": sum(self.requests.values()),
            "duplicates": self.duplicates,
            "rejected_429": self.rejected,
            "span_seconds": span,
            "max_per_recipient": max(self.delivered.values(), default=0),
        }

    def _handle(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        to = str(body.get("to", ""))
        now = time.monotonic()
        if self.rate_limit:
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) >= self.rate_limit:
                self.rejected += 1
                return 429, {"ok": False, "retry_after": round(self._window[0] + 1.0 - now, 3)}
            self._window.append(now)
        if to in self.blocked:
            return 403, {"ok": False, "description": "blocked by the user"}
        if to in self.refused:
            return 400, {"ok": False, "description": "bad request"}
        if self.failing[to] > 0:
            self.failing[to] -= 1
            return 500, {"ok": False, "description": "internal error"}
        self.requests[to] += 1
        key = body.get("key")
        if key is not None and key in self.keys:
            self.duplicates += 1
            return 200, {"ok": True, "duplicate": True}
        if key is not None:
            self.keys.add(str(key))
        self.delivered[to] += 1
        self.texts.setdefault(to, []).append(str(body.get("text", "")))
        self.first_at = self.first_at or now
        self.last_at = now
        if self.on_delivery is not None:
            self.on_delivery(self.total)
        return 200, {"ok": True}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                raw = await reader.readexactly(length) if length else b""
                if method == "GET" and path.startswith("/stats"):
                    status, answer = 200, self.stats()
                elif method == "POST" and path.startswith("/send"):
                    status, answer = self._handle(json.loads(raw or b"{}"))
                    if self.latency:
                        await asyncio.sleep(self.latency)
                else:
                    status, answer = 404, {"ok": False}
                data = json.dumps(answer).encode()
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                    % (status, len(data))
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class SinkSender:
    """A ChannelSender for the fake server. `idempotent=True` sends each message's key, which
    the server deduplicates; `limiter` (bot.channels.ratelimit.RateLimiter) paces like Telegram's.

    It speaks HTTP/1.1 over a small pool of keep-alive connections itself: with 16 requests in
    flight httpx spent about 3 ms of CPU per request here (its connection pool), which would
    have measured httpx rather than the outbox.
    """

    def __init__(
        self,
        base_url: str,
        *,
        channel: str = "sink",
        idempotent: bool = True,
        limiter: Any = None,
        connections: int = 16,
    ) -> None:
        self.channel = channel
        self.idempotent = idempotent
        self.limiter = limiter
        host_port = base_url.split("://", 1)[1].rstrip("/")
        self._host, self._port = host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1])
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, external_id: str, replies: list[Reply]) -> None:
        await self._post(None, external_id, replies)

    async def send_keyed(self, key: str, external_id: str, replies: list[Reply]) -> None:
        await self._post(key if self.idempotent else None, external_id, replies)

    async def _request(self, body: bytes) -> tuple[int, dict[str, Any]]:
        async with self._slots:
            if self._idle:
                reader, writer = self._idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self._host, self._port)
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                writer.write(
                    b"POST /send HTTP/1.1\r\nHost: sink\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body
                )
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                lines = head.decode("latin-1").split("\r\n")
                length = next(
                    int(x.split(":", 1)[1]) for x in lines if x.lower().startswith("content-length:")
                )
                answer = json.loads(await reader.readexactly(length))
            except BaseException:
                writer.close()
                raise
            self._idle.append((reader, writer))
            return int(lines[0].split(" ")[1]), answer

    async def _post(self, key: str | None, external_id: str, replies: list[Reply]) -> None:
        if self.limiter is not None:
            await self.limiter.acquire(external_id)
        body: dict[str, Any] = {"to": external_id, "text": "\n\n".join(r.text for r in replies)}
        if key is not None:
            body["key"] = key
        try:
            status, answer = await self._request(json.dumps(body).encode())
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise TransientError(str(exc) or type(exc).__name__) from exc
        if status == 200:
            return
        if status == 429:
            retry_after = float(answer.get("retry_after", 1.0))
            if self.limiter is not None:
                self.limiter.pause(retry_after)
            raise RateLimited(retry_after)
        if status == 403:
            raise Blocked("blocked")
        if status >= 500:
            raise TransientError(f"HTTP {status}")
        raise PermanentError(f"HTTP {status}")

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _main() -> None:
    parser = argparse.ArgumentParser(description="Fake channel server for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s allowed (0: no limit)")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    sink = FakeSink(rate_limit=args.rate, latency=args.latency)
    url = await sink.start(args.port)
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())


class RecordingSender:
    """An in-process ChannelSender that records what it was asked to send.

    `errors[external_id]` lists exceptions to raise, one per attempt, before succeeding.
    """

    def __init__(
        self,
        channel: str = "test",
        *,
        idempotent: bool = False,
        errors: dict[str, list[Exception]] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.channel = channel
        self.idempotent = idempotent
        self.errors = {k: list(v) for k, v in (errors or {}).items()}
        self.delay = delay
        self.sent: list[tuple[str, str]] = []
        self.attachments: list[tuple[str, str, bytes]] = []  # (external_id, filename, data)
        self.keys: list[str | None] = []
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight_per_chat = 0

    def texts_for(self, external_id: str) -> list[str]:
        return [text for ext, text in self.sent if ext == external_id]

    async def send(self, external_id: str, replies: list[Reply]) -> None:
        await self._send(None, external_id, replies)

    async def send_keyed(self, key: str, external_id: str, replies: list[Reply]) -> None:
        await self._send(key, external_id, replies)

    async def _send(self, key: str | None, external_id: str, replies: list[Reply]) -> None:
        self.in_flight[external_id] += 1
        self.max_in_flight_per_chat = max(self.max_in_flight_per_chat, self.in_flight[external_id])
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            pending = self.errors.get(external_id)
            if pending:
                raise pending.pop(0)
            self.sent.append((external_id, "\n\n".join(r.text for r in replies)))
            self.attachments += [(external_id, a.filename, a.data) for r in replies for a in r.attachments]
            self.keys.append(key)
        finally:
            self.in_flight[external_id] -= 1
