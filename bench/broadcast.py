"""Broadcast throughput against a fake channel server on 127.0.0.1 (tests/fakes/fake_sink.py,
run as its own process so that it does not share the sender's CPU).

Three figures, each on a fresh SQLite file:

* no limit   — one broadcast to --recipients members, sent by the outbox sender as fast as it
               goes (deduplicating channel: batches of claims). Target ≥ 1,000 messages/s.
* Telegram   — --limited recipients through the same rate limiter as the Telegram sender
               (bot.channels.ratelimit, settings telegram_rate_per_second = 30) to a server that
               answers 429 above 30 messages in any second; claims one row at a time, as for a
               channel that cannot deduplicate. Target: within 5% of 30/s, and no 429.
* queueing   — `queue_broadcast` (audience resolution + outbox and delivery rows, one
               transaction) for --queue members. Target < 30 s for 100,000.

    .venv/bin/python bench/broadcast.py [--recipients 5000] [--limited 600] [--queue 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from bot.channels.ratelimit import RateLimiter  # noqa: E402
from bot.domain.app import App  # noqa: E402
from bot.domain.clock import SystemClock  # noqa: E402
from bot.domain.permissions import load_grants  # noqa: E402
from bot.messaging.outbox import OutboxSender  # noqa: E402
from bot.services.actor import Actor  # noqa: E402
from bot.services.broadcasts import Audience, Message, queue_broadcast  # noqa: E402
from storage.migrate import upgrade_async  # noqa: E402
from storage.models import COMMUNE_OFFICER, MEMBER, ChannelIdentity, Contact, RoleGrant  # noqa: E402
from storage.models_outreach import SENT, Delivery  # noqa: E402
from tests.fakes.fake_sink import SinkSender  # noqa: E402
from tests.support import Tree, make_app, make_contact, seed_tree  # noqa: E402

CHANNEL = "sink"


@contextmanager
def sink_server(rate: float = 0.0) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakes" / "fake_sink.py"), "--rate", str(rate)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(5)


async def stats(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url) as client:
        data: dict[str, float] = (await client.get("/stats")).json()
        return data


async def seed(app: App, members: int) -> tuple[Tree, int]:
    """A commune officer and `members` members on the fake channel, inserted in bulk."""
    tree = await seed_tree(app)
    await make_contact(app, "officer", COMMUNE_OFFICER, tree.commune)
    now = app.clock.now()
    async with app.uow() as uow:
        s = uow.session
        first = (
            int((await s.execute(select(Contact.id).order_by(Contact.id.desc()).limit(1))).scalar_one()) + 1
        )
        for start in range(0, members, 20_000):
            ids = range(first + start, first + min(start + 20_000, members))
            await s.execute(
                insert(Contact),
                [
                    {
                        "id": i,
                        "locale": "vi",
                        "consent_at": now,
                        "created_at": now,
                        "home_unit_id": tree.village.id,
                    }
                    for i in ids
                ],
            )
            await s.execute(
                insert(ChannelIdentity),
                [
                    {"contact_id": i, "channel": CHANNEL, "external_id": f"u{i}", "created_at": now}
                    for i in ids
                ],
            )
            await s.execute(
                insert(RoleGrant),
                [
                    {"contact_id": i, "role": MEMBER, "unit_id": tree.village.id, "granted_at": now}
                    for i in ids
                ],
            )
        await uow.commit()
    return tree, members


async def queue(app: App, tree: Tree) -> tuple[int, float]:
    """Queue one broadcast to the commune's members; (recipients, seconds)."""
    t0 = time.perf_counter()
    async with app.uow() as uow:
        officer = await uow.contacts.by_identity("test", "officer")
        assert officer is not None
        grants = await load_grants(uow, officer.id)
        b = await queue_broadcast(
            uow,
            Actor.of(officer, grants),
            Audience((tree.commune.id,)),
            Message(text="Họp chi hội khuyến học tối thứ bảy tại nhà văn hóa."),
            now=app.clock.now(),
        )
        await uow.commit()
    return b.recipients, time.perf_counter() - t0


async def fresh_app(directory: Path, name: str, **settings: object) -> App:
    url = f"sqlite+aiosqlite:///{directory / name}"
    await upgrade_async(url)
    # The real clock: a 429 postpones a row by its retry_after, which must come to pass.
    return make_app(url, SystemClock(), **settings)  # type: ignore[arg-type]


async def all_sent(app: App) -> int:
    async with app.db.sessions() as session:
        rows = (await session.execute(select(Delivery.status))).scalars().all()
    return sum(1 for s in rows if s == SENT)


async def bench_unlimited(directory: Path, recipients: int) -> dict[str, float]:
    app = await fresh_app(directory, "unlimited.db", outbox_concurrency=16, outbox_batch_size=100)
    tree, _ = await seed(app, recipients)
    n, _ = await queue(app, tree)
    with sink_server() as url:
        sender = SinkSender(url, channel=CHANNEL, idempotent=True, connections=16)
        outbox = OutboxSender(app, {CHANNEL: sender})
        t0 = time.perf_counter()
        sent = await outbox.drain()
        elapsed = time.perf_counter() - t0
        server = await stats(url)
        await sender.aclose()
    assert sent == n == server["delivered"] == await all_sent(app) and server["max_per_recipient"] == 1
    await app.db.dispose()
    return {"messages": sent, "seconds": elapsed, "per_second": sent / elapsed}


async def bench_telegram(directory: Path, recipients: int, rate: float) -> dict[str, float]:
    app = await fresh_app(
        directory, f"telegram-{rate}.db", outbox_concurrency=4, telegram_rate_per_second=rate
    )
    s = app.settings
    tree, _ = await seed(app, recipients)
    n, _ = await queue(app, tree)
    limit = 30.0  # what the fake server enforces: Telegram's ~30 messages/s per bot
    with sink_server(rate=limit) as url:
        limiter = RateLimiter(
            s.telegram_rate_per_second, s.telegram_chat_rate_per_second, s.telegram_chat_burst
        )
        sender = SinkSender(url, channel=CHANNEL, idempotent=False, limiter=limiter, connections=4)
        outbox = OutboxSender(app, {CHANNEL: sender})
        t0 = time.perf_counter()
        sent = await outbox.drain()
        elapsed = time.perf_counter() - t0
        server = await stats(url)
        await sender.aclose()
    assert sent == n == server["delivered"] and server["max_per_recipient"] == 1, (sent, n, server)
    await app.db.dispose()
    # The server's span runs from the first to the last delivery: n - 1 intervals.
    achieved = (server["delivered"] - 1) / server["span_seconds"]
    return {
        "messages": sent,
        "seconds": elapsed,
        "per_second": achieved,
        "configured": s.telegram_rate_per_second,
        "rejected_429": server["rejected_429"],
    }


async def bench_queue(directory: Path, recipients: int) -> dict[str, float]:
    app = await fresh_app(directory, "queue.db")
    tree, _ = await seed(app, recipients)
    n, seconds = await queue(app, tree)
    await app.db.dispose()
    return {"recipients": n, "seconds": seconds}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--limited", type=int, default=600)
    parser.add_argument("--queue", type=int, default=100_000)
    parser.add_argument(
        "--telegram-rate",
        type=float,
        default=29.5,
        help="the limiter's rate: a little under 30/s, so that timer jitter never puts "
        "31 messages into one second of the server's strict window",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="khuyenhoc-bench-") as tmp:
        directory = Path(tmp)
        results = {
            "unlimited": await bench_unlimited(directory, args.recipients),
            "telegram": await bench_telegram(directory, args.limited, args.telegram_rate),
            "telegram_at_30": await bench_telegram(directory, args.limited, 30.0),
            "queue": await bench_queue(directory, args.queue),
        }
    u, t, q, t30 = results["unlimited"], results["telegram"], results["queue"], results["telegram_at_30"]
    print(
        f"no limit : {u['messages']:.0f} messages in {u['seconds']:.2f} s = "
        f"{u['per_second']:.0f} msg/s (target ≥ 1,000)"
    )
    print(
        f"Telegram : {t['messages']:.0f} messages, {t['per_second']:.2f} msg/s achieved at "
        f"{t['configured']:.1f}/s configured ({t['per_second'] / 30 * 100:.1f}% of 30/s), "
        f"{t['rejected_429']:.0f} × 429 (target ±5%, 0)"
    )
    print(
        f"           (configured at exactly 30/s: {t30['per_second']:.2f} msg/s, "
        f"{t30['rejected_429']:.0f} × 429)"
    )
    print(f"queueing : {q['recipients']:.0f} recipients in {q['seconds']:.2f} s (target < 30 s)")
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
