"""Dialogue steps per second through the Telegram and Zalo webhook paths, against the fake Bot APIs.

For each channel, three processes: the fake Bot API server (tests/fakes), the bot's real HTTP app
(uvicorn, webhook mode, SQLite file by default) and this driver, which plays N officers posting
updates to the webhook exactly as the platform would, each waiting for the answer (the bot
replies through the fake API before it answers the webhook) before sending the next step.

A first officer files a report unmeasured (imports, caches), a second one alone (latency
without load), then N at once (throughput, and latency under load).

* dialogue — every officer files a complete village report (27 steps: /baocao, the period,
  24 answers, confirm) through the real service, dialogue engine and database.
* echo     — the same path with a bare handler: for Telegram a python-telegram-bot
  `MessageHandler` that replies with the text it got; for Zalo our Zalo client sending the text
  back. Same HTTP app, same webhook route, same library calls, no database.

The ratio dialogue/echo (target ≥ 0.7) says what the dialogue costs on top of the transport; on a
shared machine the ratio of CPU per step in the bot process is the steadier of the two figures.
Rate limits are switched off in both runs (they would measure the limiter, 30 messages/s).

    .venv/bin/python bench/channels.py [--officers 50] [--channel telegram|zalo|both]
    BENCH_PROFILE=/tmp/prof .venv/bin/python bench/channels.py   # cProfile the bot processes
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import VILLAGE_REPORT_ANSWERS  # noqa: E402

TELEGRAM_TOKEN = "1234567:AAH-bench-token-0123456789abcdefXYZ"
ZALO_TOKEN = "3141592653589793:zalo-bench-token-0123456789abcdef"
NO_LIMITS: dict[str, Any] = {
    "telegram_rate_per_second": 0,
    "telegram_chat_rate_per_second": 0,
    "zalo_rate_per_second": 0,
    "zalo_chat_rate_per_second": 0,
}


# ----------------------------------------------------------------------------- the servers


def serve_fake(channel: str, port: int) -> None:
    import uvicorn

    from tests.fakes.telegram_api import FakeTelegram
    from tests.fakes.zalo_api import FakeZalo

    if channel == "telegram":
        fake: Any = FakeTelegram(TELEGRAM_TOKEN, lenient_edits=True)
    else:
        fake = FakeZalo(ZALO_TOKEN)
    uvicorn.run(
        fake.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        ws="none",
        lifespan="off",
    )


def serve_bot(channel: str, mode: str, port: int, api_url: str, database_url: str) -> None:
    import uvicorn

    from tests.support import make_bot

    tokens: dict[str, Any] = (
        {"telegram_token": TELEGRAM_TOKEN, "telegram_api_base_url": api_url}
        if channel == "telegram"
        else {"zalo_token": ZALO_TOKEN, "zalo_api_base_url": api_url}
    )
    bot = make_bot(
        database_url,
        public_url=f"http://127.0.0.1:{port}",
        webchat_enabled=False,
        log_level="WARNING",
        **tokens,
        **NO_LIMITS,
    )
    api, runtime = bot.http_app(), bot.channels
    if mode == "echo":
        if runtime.telegram is not None:
            from telegram import Update
            from telegram.ext import ApplicationHandlerStop, ContextTypes, MessageHandler, filters

            async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
                assert update.message is not None and update.message.text is not None
                await update.message.reply_text(update.message.text)
                raise ApplicationHandlerStop

            runtime.telegram.application.add_handler(MessageHandler(filters.TEXT, echo), group=-1)
        if runtime.zalo is not None:
            client = runtime.zalo.client

            async def echo_zalo(update: dict[str, Any]) -> None:
                message = update["message"]
                await client.send_message(message["chat"]["id"], message["text"])

            runtime.zalo.process = echo_zalo  # type: ignore[method-assign]
    profile_to = os.environ.get("BENCH_PROFILE")  # a directory: cProfile the bot process there
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
            api, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none", lifespan="on"
        )
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(str(profile_to)) / f"{channel}-{mode}.prof"))


# ----------------------------------------------------------------------------- the driver


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, __file__, *args, cwd=str(ROOT))


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await process.wait()


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                if await check():
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)


class Platform:
    """Builds the updates one platform would POST to the bot's webhook."""

    ids = itertools.count(1)

    def __init__(self, channel: str) -> None:
        from bot.channels.telegram import channel as telegram
        from bot.channels.zalo import channel as zalo

        self.channel = channel
        self.path = telegram.WEBHOOK_PATH if channel == "telegram" else zalo.WEBHOOK_PATH
        if channel == "telegram":
            self.headers = {telegram.SECRET_HEADER: telegram.webhook_secret(TELEGRAM_TOKEN, None)}
        else:
            self.headers = {zalo.SECRET_HEADER: zalo.webhook_secret(ZALO_TOKEN, None)}

    def person(self, n: int) -> str:
        return str(10_000 + n) if self.channel == "telegram" else f"z{10_000 + n:x}"

    def text(self, person: str, text: str) -> dict[str, Any]:
        n = next(self.ids)
        if self.channel == "zalo":
            return {
                "event_name": "message.text.received",
                "message": {
                    "message_id": f"m{n}",
                    "text": text,
                    "date": 0,
                    "chat": {"id": person, "chat_type": "PRIVATE"},
                    "from": {"id": person, "display_name": "Cán bộ", "is_bot": False},
                },
            }
        user = {"id": int(person), "is_bot": False, "first_name": "Cán bộ"}
        return {
            "update_id": n,
            "message": {
                "message_id": n,
                "date": 0,
                "text": text,
                "from": user,
                "chat": {"id": int(person), "type": "private"},
            },
        }

    def press(self, person: str, option_id: str, typed: str) -> dict[str, Any]:
        """Telegram: a button press on the question; Zalo: the number typed."""
        if self.channel == "zalo":
            return self.text(person, typed)
        n = next(self.ids)
        user = {"id": int(person), "is_bot": False, "first_name": "Cán bộ"}
        message = {
            "message_id": n,
            "date": 0,
            "text": "…",
            "chat": {"id": int(person), "type": "private"},
            "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": option_id}]]},
        }
        return {
            "update_id": n,
            "callback_query": {
                "id": f"q{n}",
                "from": user,
                "chat_instance": "c",
                "data": option_id,
                "message": message,
            },
        }


def report_steps(platform: Platform, person: str) -> list[dict[str, Any]]:
    steps = [platform.text(person, "/baocao"), platform.press(person, "2026", "1")]
    steps += [platform.text(person, a) for a in VILLAGE_REPORT_ANSWERS]
    steps.append(platform.press(person, "confirm", "1"))
    return steps


def echo_steps(platform: Platform, person: str) -> list[dict[str, Any]]:
    return [platform.text(person, t) for t in ["/baocao", "2026", *VILLAGE_REPORT_ANSWERS, "confirm"]]


async def drive(
    url: str, platform: Platform, scripts: list[list[dict[str, Any]]]
) -> tuple[list[float], float]:
    """Every script runs its steps in order, all scripts at once; latency of each webhook call."""
    import httpx

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=len(scripts) + 5, max_keepalive_connections=len(scripts) + 5)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def run(steps: list[dict[str, Any]]) -> None:
            for update in steps:
                t0 = time.perf_counter()
                r = await client.post(platform.path, json=update, headers=platform.headers)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"webhook answered {r.status_code}")

        t0 = time.perf_counter()
        await asyncio.gather(*(run(s) for s in scripts))
        return latencies, time.perf_counter() - t0


async def webhook_ready(url: str, platform: Platform) -> bool:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        body: dict[str, Any] = {"update_id": 1} if platform.channel == "telegram" else {"ok": True}
        try:
            r = await client.post(url + platform.path, json=body, headers=platform.headers)
        except httpx.HTTPError:
            return False
        return r.status_code == 200


async def seeded_database(directory: str, name: str, officers: int, channel: str, platform: Platform) -> str:
    from bot.services.actor import CONSOLE
    from bot.services.units import add_village
    from storage.migrate import upgrade_async
    from storage.models import VILLAGE, VILLAGE_OFFICER
    from tests.support import make_app, make_contact, seed_tree

    url = f"sqlite+aiosqlite:///{directory}/{name}.db"
    await upgrade_async(url)
    app = make_app(url)
    tree = await seed_tree(app)
    async with app.uow() as uow:
        villages = [
            await add_village(uow, CONSOLE, tree.commune, f"Thôn Bench {i}", VILLAGE, app.clock.now())
            for i in range(officers)
        ]
        await uow.commit()
    for i, village in enumerate(villages):
        await make_contact(app, platform.person(i), VILLAGE_OFFICER, village, "vi", channel=channel)
    await app.db.dispose()
    return url


async def reports_saved(url: str) -> int:
    from tests.support import make_app

    app = make_app(url)
    async with app.uow() as uow:
        count = await uow.submissions.count("village_report")
    await app.db.dispose()
    return count


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] * 1000


async def bench_channel(channel: str, officers: int, directory: str) -> dict[str, Any]:
    platform = Platform(channel)
    fake_port, bot_port = free_port(), free_port()
    fake = await start("fake", channel, str(fake_port))
    api_url = f"http://127.0.0.1:{fake_port}"
    results: dict[str, Any] = {}
    try:
        for mode in ("dialogue", "echo"):
            db_url = await seeded_database(directory, f"{channel}-{mode}", officers + 2, channel, platform)
            bot = await start("bot", channel, mode, str(bot_port), api_url, db_url)
            url = f"http://127.0.0.1:{bot_port}"
            try:
                await wait_until(lambda url=url: webhook_ready(url, platform))  # type: ignore[misc]
                people = [platform.person(i) for i in range(officers + 2)]
                make = report_steps if mode == "dialogue" else echo_steps
                # Warm-up (imports, connection pools, SQLite cache), then the measured run.
                await drive(url, platform, [make(platform, people[0])])
                solo, _ = await drive(url, platform, [make(platform, people[1])])
                cpu0 = cpu_seconds(bot.pid), cpu_seconds(fake.pid)
                latencies, wall = await drive(url, platform, [make(platform, p) for p in people[2:]])
                cpu1 = cpu_seconds(bot.pid), cpu_seconds(fake.pid)
            finally:
                await stop(bot)
            saved = await reports_saved(db_url) if mode == "dialogue" else None
            results[mode] = {
                "rate": len(latencies) / wall,
                "p50": pct(latencies, 50),
                "p95": pct(latencies, 95),
                "solo_p50": pct(solo, 50),
                "solo_p95": pct(solo, 95),
                "steps": len(latencies),
                "saved": saved,
                "bot_cpu": (cpu1[0] - cpu0[0]) / len(latencies) * 1000,
                "fake_cpu": (cpu1[1] - cpu0[1]) / len(latencies) * 1000,
            }
    finally:
        await stop(fake)
    return results


def summary(label: str, r: dict[str, Any]) -> str:
    return (
        f"  {label}: {r['rate']:.0f} steps/s, p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms"
        f" (one officer alone: p50 {r['solo_p50']:.1f} ms, p95 {r['solo_p95']:.1f} ms)"
    )


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--officers", type=int, default=20, help="officers reporting at the same time")
    ap.add_argument("--channel", choices=["telegram", "zalo", "both"], default="both")
    args = ap.parse_args(argv)
    channels = ["telegram", "zalo"] if args.channel == "both" else [args.channel]
    with tempfile.TemporaryDirectory(prefix="khuyenhoc-bench-") as directory:
        for channel in channels:
            r = await bench_channel(channel, args.officers, directory)
            d, e = r["dialogue"], r["echo"]
            echo = "bare python-telegram-bot echo" if channel == "telegram" else "bare Zalo client echo"
            print(f"{channel}: webhook path, {args.officers} officers at once x 27 steps, SQLite, no limits")
            print(summary("dialogue", d) + f"   reports saved {d['saved']}")
            print(summary(echo, e))
            print(f"  ratio dialogue/echo: {d['rate'] / e['rate']:.2f} (target >= 0.7)")
            print(
                f"  CPU per step, bot process: dialogue {d['bot_cpu']:.2f} ms, echo {e['bot_cpu']:.2f} ms"
                f" (ratio {e['bot_cpu'] / d['bot_cpu']:.2f});"
                f" fake API: {d['fake_cpu']:.2f} / {e['fake_cpu']:.2f} ms"
            )
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "fake":
        serve_fake(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "bot":
        serve_bot(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        asyncio.run(main(sys.argv[1:]))
