"""Scale-out: two bot instances on one PostgreSQL against one, under the same offered load.

Each instance is a real process serving the bot's HTTP app (tests/fakes/instance.py: what
`khuyenhoc run` serves, with a fixed clock). A driver plays N officers at once, each filing a
village report through the web chat API (27 steps: /baocao, the period, 24 answers, confirm)
without pausing: the offered load is "as fast as it is served", the same for both runs. With two
instances every request goes to the next instance in turn, as a round-robin load balancer sends
them; one officer's steps thus alternate between instances (the per-contact row lock keeps them
in order). Each run has its own officers and a warm-up report per instance first.

Reported for each run: throughput (steps/s), p50 and p95 of the request latency, CPU per step of
the bot processes and of PostgreSQL's; then the ratio two/one (target >= 1.6).

    .venv/bin/python bench/scaleout.py [--officers 40] [--server postgresql://postgres@127.0.0.1:5432/postgres]

The server defaults to $TEST_DATABASE_URL; a database is created for the run and dropped after.
On a machine with fewer than three free cores the ratio measures the machine, not the bot: the
driver, PostgreSQL and both instances share the same CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from storage.db import normalise_url  # noqa: E402
from tests.fakes.instance import start_instances  # noqa: E402
from tests.support import START, VILLAGE_REPORT_ANSWERS  # noqa: E402


@asynccontextmanager
async def fresh_database(server: str) -> AsyncIterator[str]:
    url = make_url(normalise_url(server))
    name = f"khuyenhoc_bench_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            database="postgres",
        )
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def person(run: str, n: int) -> str:
    return f"bench_{run}_officer_{n:04d}"


async def seed(url: str, runs: dict[str, int]) -> None:
    """Migrate; one village and one village officer (a web chat identity) per officer of each run."""
    from bot.services.actor import CONSOLE
    from bot.services.units import add_village
    from storage.migrate import upgrade_async
    from storage.models import VILLAGE, VILLAGE_OFFICER
    from tests.support import make_app, make_contact, seed_tree, webchat_id

    await upgrade_async(url)
    app = make_app(url)
    tree = await seed_tree(app)
    people = [(run, n) for run, count in runs.items() for n in range(count)]
    async with app.uow() as uow:
        villages = [
            await add_village(uow, CONSOLE, tree.commune, f"Thôn {run} {n}", VILLAGE, app.clock.now())
            for run, n in people
        ]
        await uow.commit()
    for (run, n), village in zip(people, villages, strict=True):
        stored = await webchat_id(app, person(run, n))  # the web chat keeps the id's keyed hash
        await make_contact(app, stored, VILLAGE_OFFICER, village, "vi", channel="webchat")
    await app.db.dispose()


def report(client_id: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [{"text": "/baocao"}, {"option_id": "2026"}]
    steps += [{"text": a} for a in VILLAGE_REPORT_ANSWERS]
    steps.append({"option_id": "confirm"})
    return [{"client_id": client_id, "message_id": f"msg-{n:04d}", **step} for n, step in enumerate(steps)]


class RoundRobin:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return self.urls[self.n % len(self.urls)]


async def drive(urls: list[str], officers: list[str]) -> tuple[list[float], float]:
    """Every officer files a report, all at once; the latency of every request and the wall time."""
    balancer = RoundRobin(urls)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=len(officers) * 2, max_keepalive_connections=len(officers) * 2)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def run(client_id: str) -> None:
            last = ""
            for body in report(client_id):
                t0 = time.perf_counter()
                r = await client.post(balancer.next() + "/api/webchat/messages", json=body)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
                last = " ".join(reply["text"] for reply in r.json()["replies"])
            if "✅" not in last:
                raise RuntimeError(f"{client_id}: report not saved: {last[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(run(o) for o in officers))
        return latencies, time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """PostgreSQL's processes on this machine (their CPU counts as the database's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] * 1000


async def measure(url: str, run: str, instances: int, officers: int) -> dict[str, Any]:
    settings = {"database_url": url, "log_level": "WARNING"}
    async with start_instances([settings] * instances, START) as running:
        urls = [instance.url for instance in running]
        # Warm-up: one report per instance (imports, pools, caches), unmeasured.
        for n, instance_url in enumerate(urls):
            await drive([instance_url], [person(run, n)])
        people = [person(run, n) for n in range(instances, instances + officers)]
        pids = [instance.pid for instance in running]
        pg0 = {p: cpu_seconds(p) for p in postgres_pids()}
        bot0, me0 = sum(cpu_seconds(p) for p in pids), time.process_time()
        latencies, wall = await drive(urls, people)
        bot1, me1 = sum(cpu_seconds(p) for p in pids), time.process_time()
        # Backends opened during the run count from zero; those closed during it are missed.
        pg_cpu = sum(cpu_seconds(p) - pg0.get(p, 0.0) for p in postgres_pids())
    steps = len(latencies)
    return {
        "rate": steps / wall,
        "p50": pct(latencies, 50),
        "p95": pct(latencies, 95),
        "bot_cpu": (bot1 - bot0) / steps * 1000,
        "pg_cpu": pg_cpu / steps * 1000,
        "driver_cpu": (me1 - me0) / steps * 1000,
        "steps": steps,
    }


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--officers", type=int, default=40, help="officers reporting at the same time")
    ap.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL"), help="PostgreSQL server URL")
    args = ap.parse_args(argv)
    if not args.server:
        raise SystemExit("give --server postgresql://… or set TEST_DATABASE_URL")
    warm = 2
    async with fresh_database(args.server) as url:
        await seed(url, {"one": args.officers + warm, "two": args.officers + warm})
        one = await measure(url, "one", 1, args.officers)
        two = await measure(url, "two", 2, args.officers)
    print(f"scale-out on PostgreSQL: {args.officers} officers at once x 27 steps, web chat API, no pauses")
    for label, r in (("one instance ", one), ("two instances", two)):
        print(
            f"  {label}: {r['rate']:6.0f} steps/s, p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms;"
            f" CPU per step: bot {r['bot_cpu']:.2f} ms, PostgreSQL {r['pg_cpu']:.2f} ms,"
            f" driver {r['driver_cpu']:.2f} ms"
        )
    print(f"  throughput ratio two/one: {two['rate'] / one['rate']:.2f} (target >= 1.6)")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
