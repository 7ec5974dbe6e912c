"""Run an ASGI app with uvicorn on a free port of 127.0.0.1, inside the running event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal


def bound_socket() -> socket.socket:
    """A listening-ready socket on a free port: its address is known before the app is built.

    The protocol is given explicitly: asyncio sets TCP_NODELAY only on sockets whose `proto` is
    IPPROTO_TCP, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def serving(
    app: Any, sock: socket.socket | None = None, *, lifespan: Literal["on", "off"] = "on"
) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yield its base URL (no trailing slash)."""
    import uvicorn

    sock = sock or bound_socket()
    config = uvicorn.Config(
        app, log_config=None, access_log=False, ws="none", lifespan=lifespan, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield url_of(sock)
    finally:
        server.should_exit = True
        await task
        sock.close()
