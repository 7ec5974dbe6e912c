"""Dialogue throughput and latency through the service layer on a SQLite file.

N officers (default 200) each complete a village report (28 steps: /baocao, the period, 25
answers, confirm). Two runs:

* burst  — all officers at once, no pause: the saturated throughput (steps/s).
* paced  — each officer pauses between steps so that the offered load is --rate steps/s:
           the step latency people would feel (p50, p95) at that load.

Baseline, in the same process and on the same database: the bare storage work of one step
(look up the contact, save the dialogue row, commit) with no engine. The ratio engine/baseline
tells how much the dialogue logic costs on top of the database, whatever the machine's speed.

    .venv/bin/python bench/dialogue.py [--officers 200] [--rate 250] [--profile /tmp/dialogue.prof]

--profile writes a cProfile of the burst run (read it with `python -m pstats FILE`, or
`--profile-top N` prints the N most expensive functions by own time and by cumulative time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.app import App
from bot.domain.messages import Incoming, Kind
from bot.services.actor import CONSOLE
from bot.services.units import add_village
from storage.migrate import upgrade_async
from storage.models import VILLAGE
from tests.support import VILLAGE_REPORT_ANSWERS, make_app, make_contact, seed_tree

ANSWERS = VILLAGE_REPORT_ANSWERS


def script() -> list[tuple[Kind, str]]:
    steps = [(Kind.TEXT, "/baocao"), (Kind.OPTION, "2026")]
    steps += [(Kind.TEXT, a) for a in ANSWERS]
    steps.append((Kind.OPTION, "confirm"))
    return steps


async def officer(
    app: App, ext: str, latencies: list[float], pause: float, rng: random.Random | None = None
) -> None:
    """One officer files a whole village report, pausing `pause` seconds on average between steps
    (drawn from `rng` when given, for a repeatable run); the latency of each step is appended."""
    draw = rng or random
    for n, (kind, value) in enumerate(script()):
        if pause:
            await asyncio.sleep(draw.expovariate(1 / pause))
        msg = Incoming(
            "bench",
            ext,
            kind,
            text=value if kind is Kind.TEXT else "",
            option_id=value if kind is Kind.OPTION else None,
            update_id=f"{ext}-{n}-{pause}",
        )
        t0 = time.perf_counter()
        replies = (await app.handle(msg)).replies
        latencies.append(time.perf_counter() - t0)
        if not replies or "something went wrong" in replies[0].text:
            raise RuntimeError(f"{ext} step {n}: {replies[0].text if replies else 'no reply'}")
    if "✅" not in replies[0].text:
        raise RuntimeError(f"{ext}: report not saved: {replies[0].text}")


async def baseline(app: App, ids: list[str]) -> float:
    """Steps/s of the bare storage work of a step, for the ratio."""
    t0 = time.perf_counter()
    for ext in ids:
        async with app.uow() as uow:
            contact = await uow.contacts.by_identity("bench", ext)
            assert contact is not None
            await uow.dialogues.save(contact.id, None, {"n": 1}, app.clock.now())
            await uow.commit()
    return len(ids) / (time.perf_counter() - t0)


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--officers", type=int, default=200)
    ap.add_argument("--rate", type=float, default=250.0, help="offered load of the paced run, steps/s")
    ap.add_argument("--driver", choices=["inline", "aiosqlite"], default="inline", help="SQLite driver")
    ap.add_argument("--profile", help="write a cProfile of the burst run to this file")
    ap.add_argument("--profile-top", type=int, default=0, help="print the top N functions of the profile")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade_async(url)
        app = make_app(url, sqlite_driver=args.driver)
        tree = await seed_tree(app)
        async with app.uow() as uow:
            villages = [
                await add_village(uow, CONSOLE, tree.commune, f"Thôn Bench {i}", VILLAGE, app.clock.now())
                for i in range(args.officers)
            ]
            await uow.commit()
        for i, v in enumerate(villages):
            await make_contact(app, f"o{i}", "village_officer", v, "vi", channel="bench")
        ids = [f"o{i}" for i in range(args.officers)]
        base = max(await baseline(app, ids), await baseline(app, ids))

        burst: list[float] = []
        profiler = cProfile.Profile() if args.profile else None
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await asyncio.gather(*(officer(app, ext, burst, 0.0) for ext in ids))
        if profiler is not None:
            profiler.disable()
        burst_wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        burst_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        burst_rate = len(burst) / burst_wall

        # Paced: each officer's mean pause is N/rate, so together they offer `rate` steps/s.
        paced: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(officer(app, ext, paced, args.officers / args.rate) for ext in ids))
        paced_wall = time.perf_counter() - t0
        async with app.uow() as uow:
            saved = await uow.submissions.count("village_report")
        await app.db.dispose()

    print(f"SQLite driver: {args.driver}")
    print(f"officers: {args.officers}, steps per report: {len(script())}, reports saved: {saved}")
    print(f"baseline (bare storage step): {base:8.0f} steps/s")
    print(
        f"burst  : {burst_rate:8.0f} steps/s  ratio to baseline {burst_rate / base:.2f}  "
        f"p50 {pct(burst, 50):.1f} ms  p95 {pct(burst, 95):.1f} ms  (all {args.officers} queued at once)"
    )
    print(
        f"paced  : {len(paced) / paced_wall:8.0f} steps/s offered {args.rate:.0f}/s  "
        f"p50 {pct(paced, 50):.1f} ms  p95 {pct(paced, 95):.1f} ms"
    )
    print(f"single step service time (burst wall / steps): {burst_wall / len(burst) * 1000:.2f} ms")
    print(
        f"CPU per step, all threads (burst): {burst_cpu / len(burst) * 1000:.2f} ms"
        f" -> at most {len(burst) / burst_cpu:.0f} steps/s per core"
    )
    print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the burst run (slowed by profiling): {args.profile}")
        if args.profile_top:
            stats = pstats.Stats(args.profile)
            stats.sort_stats("tottime").print_stats(args.profile_top)
            stats.sort_stats("cumulative").print_stats(args.profile_top)


if __name__ == "__main__":
    asyncio.run(main())
