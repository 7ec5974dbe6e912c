"""Abuse: what one client can do against the limits in a minute, and the server's memory under
oversized requests (issue 11).

Two runs of the same bot (a real process serving the HTTP app, tests/fakes/instance.py, on a
SQLite file): with the limits as configured by default, and with them off (no body limit, no
limit on new web chat ids, invite limits out of reach). In each run one client, from one
address, as fast as it is answered, for `--seconds` each:

1. **contacts**: POSTs "/start" with a new web chat id each time (every one a new contact);
2. **invite guesses**: goes to "I have an invite code" and types random well-formed codes;
   counted are the codes the bot actually checked ("this code is not valid"), then the time a
   hit would take at that pace with 10,000 codes outstanding;
3. **bytes accepted**: POSTs 1 MB messages from one existing id; counted are the body bytes of
   the requests answered 2xx.

Then **memory**: six 100 MB bodies at once (the issue's probe), the server's RSS sampled from
/proc every 20 ms: before, peak, and 3 s after. The ratio off/on compares the two runs.

    .venv/bin/python bench/abuse.py [--seconds 60] [--body-mb 100] [--concurrent 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bot.domain.settings import Settings  # noqa: E402
from bot.services.invites import ALPHABET  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.fakes.instance import start_instances  # noqa: E402
from tests.support import START  # noqa: E402

MESSAGES = "/api/webchat/messages"
OUTSTANDING_CODES = 10_000
CODE_SPACE = len(ALPHABET) ** 8

LIMITS_OFF = {
    "webchat_max_body_bytes": 0,
    "webhook_max_body_bytes": 0,
    "webchat_new_contacts_per_minute": 0,
    "invite_tries_per_contact": 1_000_000_000,
    "invite_tries_per_address": 1_000_000_000,
    "invite_tries_overall": 1_000_000_000,
}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def new_id() -> str:
    return "bench-" + "".join(random.choices("abcdef0123456789", k=24))


async def for_seconds(seconds: float, step: Callable[[], Awaitable[None]]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await step()


# Each phase comes from an address of its own (uvicorn trusts X-Forwarded-For from 127.0.0.1 by
# default), so that one phase's limits do not spill into the next.
PHASE_ADDRESS = {"contacts": "198.51.100.1", "guesses": "198.51.100.2", "bytes": "198.51.100.3"}


def client_for(phase: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=120, headers={"X-Forwarded-For": PHASE_ADDRESS[phase]})


async def post(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(url + MESSAGES, json=body)


async def contacts(client: httpx.AsyncClient, url: str, seconds: float) -> dict[str, float]:
    counts = {"created": 0, "refused": 0}

    async def step() -> None:
        r = await post(client, url, {"client_id": new_id(), "text": "/start"})
        counts["created" if r.is_success else "refused"] += 1

    await for_seconds(seconds, step)
    return {**counts, "per_second": counts["created"] / seconds}


async def guesses(client: httpx.AsyncClient, url: str, seconds: float) -> dict[str, float]:
    counts = {"checked": 0, "refused": 0, "requests": 0}
    me = {"id": new_id(), "at_code": False}

    async def say(body: dict[str, Any]) -> str:
        counts["requests"] += 1
        r = await post(client, url, {"client_id": me["id"], **body})
        if not r.is_success:  # a new id refused (429): wait a little and try again
            await asyncio.sleep(0.2)
            return ""
        return json.dumps(r.json(), ensure_ascii=False)

    async def step() -> None:
        if not me["at_code"]:
            text = await say({"text": "/start"})
            if "leave" in text:
                await say({"option_id": "leave"})
            for option in ("vi", "yes", "officer"):
                await say({"option_id": option})
            me["at_code"] = True
            return
        code = "".join(random.choices(ALPHABET, k=8))
        text = await say({"text": f"{code[:4]}-{code[4:]}"})
        if "Mã này không đúng" in text:
            counts["checked"] += 1
        if "Mã mời đã bị nhập sai quá nhiều lần" in text:  # refused: a limit (person, address, all)
            counts["refused"] += 1
            me["id"] = new_id()  # a new identity, as an attacker would
        if "Gõ lại mã" not in text and "gõ lại mã" not in text:
            me["at_code"] = False

    await for_seconds(seconds, step)
    rate = counts["checked"] / seconds
    days = (CODE_SPACE / OUTSTANDING_CODES) / rate / 86400 if rate else float("inf")
    return {**counts, "per_second": rate, "days_to_expected_hit": days}


async def accepted_bytes(client: httpx.AsyncClient, url: str, seconds: float, limit: int) -> dict[str, float]:
    """The most one client can push: bodies just under the limit (1 MB ones without a limit)."""
    counts = {"accepted": 0, "refused": 0}
    me = new_id()
    await post(client, url, {"client_id": me, "text": "/start"})
    text = (limit - 200) if limit else 1_000_000
    body = json.dumps({"client_id": me, "text": "x" * text}).encode()

    async def step() -> None:
        r = await client.post(url + MESSAGES, content=body, headers={"Content-Type": "application/json"})
        if r.is_success:
            counts["accepted"] += len(body)
        else:
            counts["refused"] += 1

    await for_seconds(seconds, step)
    return {**counts, "mb_per_second": counts["accepted"] / seconds / 1e6}


async def oversized(url: str, pid: int, megabytes: int, concurrent: int) -> dict[str, float]:
    """`concurrent` bodies of `megabytes` MB at once, streamed; RSS before, at peak and after."""
    chunk = b"y" * (1 << 20)
    head = b'{"client_id": "' + new_id().encode() + b'", "text": "'
    size = len(head) + megabytes * len(chunk) + 2
    statuses: list[str] = []

    async def one() -> None:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        request = f"POST {MESSAGES} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        writer.write((request + f"Content-Length: {size}\r\nConnection: close\r\n\r\n").encode() + head)
        answer = asyncio.ensure_future(reader.readline())
        try:
            for _ in range(megabytes):
                if answer.done():
                    break  # answered before the body was sent: refused
                writer.write(chunk)
                await writer.drain()
            else:
                writer.write(b'"}')
                await writer.drain()
            status = await asyncio.wait_for(answer, 120)
            statuses.append(status.decode().split(" ")[1] if status else "closed")
        except ConnectionError:  # the server answered and closed while the body was still coming
            statuses.append("refused")
        except TimeoutError:
            statuses.append("timeout")
        finally:
            writer.close()

    before = rss_bytes(pid)
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.ensure_future(sample())
    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(concurrent)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(3)
    done.set()
    await sampler
    after = rss_bytes(pid)
    return {
        "rss_before_mb": before / 1e6,
        "rss_peak_mb": peak / 1e6,
        "rss_after_mb": after / 1e6,
        "seconds": elapsed,
        "statuses": ",".join(sorted(statuses)),  # type: ignore[dict-item]
    }


async def run(name: str, settings: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="khuyenhoc-abuse-"))
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    conf = {"database_url": url, "content_dir": str(ROOT / "content"), "scheduler_enabled": False, **settings}
    results: dict[str, Any] = {}
    limit = int(
        settings.get("webchat_max_body_bytes", Settings.model_fields["webchat_max_body_bytes"].default)
    )
    async with start_instances([conf], START) as (instance,):
        async with client_for("contacts") as client:
            results["contacts"] = await contacts(client, instance.url, args.seconds)
        async with client_for("guesses") as client:
            results["guesses"] = await guesses(client, instance.url, args.seconds)
        async with client_for("bytes") as client:
            results["bytes"] = await accepted_bytes(client, instance.url, args.seconds, limit)
        results["memory"] = await oversized(instance.url, instance.pid, args.body_mb, args.concurrent)
    print(f"\n== {name}", flush=True)
    for what, values in results.items():
        shown = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(f"{what:9} {shown}", flush=True)
    return results


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=60.0, help="Length of each of the three phases.")
    ap.add_argument("--body-mb", type=int, default=100, help="Size of each oversized body, in MB.")
    ap.add_argument("--concurrent", type=int, default=6, help="Oversized bodies sent at once.")
    args = ap.parse_args(argv)
    on = await run("limits on (defaults)", {}, args)
    off = await run("limits off", LIMITS_OFF, args)

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b else "inf"

    print("\n== off / on", flush=True)
    for label, key, field in (
        ("contacts created", "contacts", "created"),
        ("invite codes checked", "guesses", "checked"),
        ("body bytes accepted", "bytes", "accepted"),
    ):
        a, b = off[key][field], on[key][field]
        print(f"{label:22} {a:>14,.0f} / {b:>12,.0f} = {ratio(a, b)}")
    grow_on = on["memory"]["rss_peak_mb"] - on["memory"]["rss_before_mb"]
    grow_off = off["memory"]["rss_peak_mb"] - off["memory"]["rss_before_mb"]
    kept_on = on["memory"]["rss_after_mb"] - on["memory"]["rss_before_mb"]
    kept_off = off["memory"]["rss_after_mb"] - off["memory"]["rss_before_mb"]
    # Below 1 MB the growth is noise: the ratio is given against 1 MB ("at least").
    growth = f"{grow_off:>14,.1f} / {grow_on:>12,.1f} = {ratio(grow_off, max(grow_on, 1.0))}"
    print(f"{'RSS growth at peak, MB':22} {growth}" + (" (at least)" if grow_on < 1 else ""))
    print(f"{'RSS kept after 3 s, MB':22} {kept_off:>14,.1f} / {kept_on:>12,.1f}")
    # Guessing is bounded by the windowed limits, whatever the phase length: the sustained pace.
    window = Settings.model_fields["invite_cooldown_minutes"].default * 60
    for who, field in (("one address", "invite_tries_per_address"), ("all together", "invite_tries_overall")):
        pace = Settings.model_fields[field].default / window
        days = CODE_SPACE / OUTSTANDING_CODES / pace / 86400
        print(f"sustained guesses, {who}: {pace:.3f}/s, expected hit in {days:,.0f} days")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
