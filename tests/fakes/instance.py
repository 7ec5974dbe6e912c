"""One bot instance in a process of its own, as `khuyenhoc run` serves it, with a fixed clock.

    python tests/fakes/instance.py --port 8123 --now 2026-11-22T09:00:00+07:00 \\
        --settings '{"database_url": "postgresql://…", "content_dir": "…"}'

The settings are JSON (the fields of bot.domain.settings.Settings; the environment and .env are
not read). Webhook mode when they include public_url. Several of these on one PostgreSQL database
are what a deployment behind a load balancer runs: the tests of one-contact-at-a-time and
bench/scaleout.py start two. `start_instances` below starts them from a test and waits until
each answers.

BENCH_PROFILE=DIR writes a cProfile of the process to DIR/instance-PORT.prof when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Instance:
    url: str  # base URL, no trailing slash
    pid: int


@asynccontextmanager
async def start_instances(
    settings: Sequence[dict[str, Any]],
    now: datetime,
    *,
    ready: Callable[[Any, str], Awaitable[bool]] | None = None,
    timeout: float = 30,
) -> AsyncIterator[list[Instance]]:
    """Start one instance per settings dict (each on a free port; `public_url` is filled in
    when it is None); yield them once `ready(client, url)` is true for each (default: GET
    /health answers 200)."""
    import httpx

    async def healthy(client: httpx.AsyncClient, url: str) -> bool:
        return (await client.get(url + "/health")).status_code == 200

    check = ready or healthy

    ports = [free_port() for _ in settings]
    processes: list[asyncio.subprocess.Process] = []
    try:
        for port, conf in zip(ports, settings, strict=True):
            conf = dict(conf)
            if "public_url" in conf and conf["public_url"] is None:
                conf["public_url"] = f"http://127.0.0.1:{port}"
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--port",
                    str(port),
                    "--now",
                    now.isoformat(),
                    "--settings",
                    json.dumps(conf),
                    cwd=str(ROOT),
                )
            )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(timeout):
            for url, process in zip(urls, processes, strict=True):
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"instance {url} exited with {process.returncode}")
                    try:
                        if await check(client, url):
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.05)
        yield [Instance(url, process.pid) for url, process in zip(urls, processes, strict=True)]
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await process.wait()


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import uvicorn

    from bot.domain.clock import FixedClock
    from bot.domain.settings import Settings
    from bot.runtime.bootstrap import bootstrap

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--settings", required=True)
    args = parser.parse_args()
    conf = json.loads(args.settings)
    conf.setdefault("content_dir", str(ROOT / "content"))
    settings = Settings(_env_file=None, **conf)  # type: ignore[call-arg]
    bot = bootstrap(settings, FixedClock(datetime.fromisoformat(args.now)))
    api = bot.http_app()
    profile_to = os.environ.get("BENCH_PROFILE")
    profiler = None
    if profile_to:
        import cProfile
        import signal

        # uvicorn re-raises the SIGTERM it handled; exit through Python so the stats get written.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        uvicorn.run(
            api,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
            ws="none",
            lifespan="on",
        )
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_to) / f"instance-{args.port}.prof"))


if __name__ == "__main__":
    main()
