"""How long a compiled report takes: one province, and the whole country.

Scenarios (each on a fresh database, migrated, filled with bulk inserts, then measured):

* province — 1 province, 100 communes, 3,000 villages, 20 half-year periods (2017-H1 … 2026-H2):
             60,000 village reports, plus 5% corrections (a second version that must replace
             the first). Measured: the province report of the latest period (with the change
             from the previous one), the report of one commune, and all 20 periods one by one.
             Target: under 1 s for the province report on SQLite.
* national — 34 provinces, 3,321 communes, 64,000 villages, 2 periods (128,000 reports).
             Measured: the national report (one row per province) and one province report.
* stall    — the national data, and 20 village officers each filing a village report through
             the real dialogue (paced, --stall-rate steps/s in all) while national reports are
             compiled and drawn back to back. Measured: the officers' step latency (p50, p95,
             max) in three runs of the same process: no report; reports made the old way
             (inside a unit of work: under SQLite's write lock, read on the event loop through
             the inline driver); and the new way (a read-only unit of work, rendering in a
             worker thread), as /baocaotonghop and the jobs make them. Target: p95 < 50 ms.

Each figure is the median of --repeat runs after one warm-up run (the first, cold, run is
printed too). Baseline, in the same run: reading every submission row of the period (all
versions, with their JSON values) and nothing else — the floor any report of the whole area
pays; the ratio report / baseline is what aggregation costs on top. Times include the SQL and
the Python that builds the report objects, not the rendering of the .xlsx or the chart (printed
separately for the province).

    .venv/bin/python bench/reports.py                       # SQLite, both scenarios
    .venv/bin/python bench/reports.py --postgres postgresql://postgres@127.0.0.1:5433/postgres
    .venv/bin/python bench/reports.py --only province --repeat 9
    .venv/bin/python bench/reports.py --only stall
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from dialogue import officer, script  # bench/dialogue.py: the same officers, the same steps
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bot.domain.app import App
from bot.domain.clock import VN_TZ
from bot.domain.forms.loader import load_forms
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.domain.schedules import load_schedules
from bot.reports.aggregate import Compiled, compile_report
from bot.reports.chart import render_charts
from bot.reports.compiled import compile_unit, render, summary_text
from bot.reports.targets import load_targets
from bot.reports.xlsx import render_xlsx
from storage.db import Database, normalise_url
from storage.migrate import upgrade_async
from storage.models import COMMUNE, PROVINCE, VILLAGE, VILLAGE_OFFICER, Submission, Unit
from tests.support import make_app, make_contact

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "content"
FORMS = load_forms(CONTENT / "forms")
SUM_FIELDS = [f.key for f in FORMS["village_report"].fields if f.type in ("integer", "money")]
SCHEDULES = load_schedules(CONTENT)
TARGETS = load_targets(CONTENT)
NOW = datetime(2027, 1, 10, 9, 0, tzinfo=VN_TZ)
STATUSES = ("not_registered", "registered", "recognized")


def village_values(rng: random.Random) -> dict[str, Any]:
    households = rng.randint(60, 400)
    population = households * rng.randint(3, 5)
    clans = rng.randint(2, 15)
    adults = population * 6 // 10
    fund = rng.randint(2, 40) * 500_000
    scholarships = rng.randint(0, 12)
    awards = rng.randint(0, 20)
    sessions = rng.randint(0, 12)
    return {
        "households_total": households,
        "population_total": population if rng.random() > 0.1 else None,
        "lf_registered": households * rng.randint(70, 95) // 100,
        "lf_recognized": households * rng.randint(50, 85) // 100,
        "clans_total": clans,
        "lc_registered": clans * rng.randint(60, 100) // 100,
        "lc_recognized": clans * rng.randint(40, 90) // 100,
        "clan_boards": clans // 2,
        "village_lc_status": rng.choice(STATUSES),
        "members_total": population * rng.randint(15, 35) // 100,
        "members_new": rng.randint(0, 20),
        "adults_total": adults if rng.random() > 0.3 else None,
        "lcit_registered": adults // 2,
        "lcit_recognized": adults // 3,
        "fund_raised_vnd": fund,
        "fund_disbursed_vnd": fund // 2,
        "fund_balance_vnd": fund - fund // 2,
        "scholarship_count": scholarships,
        "scholarship_amount_vnd": scholarships * 500_000,
        "award_count": awards,
        "award_amount_vnd": awards * 200_000,
        "clc_sessions": sessions,
        "clc_attendance": sessions * rng.randint(20, 60),
        "notes": None,
    }


def half_years(last: Period, n: int) -> list[Period]:
    out = [last]
    while len(out) < n:
        out.append(out[-1].previous())
    return list(reversed(out))


async def fill(
    db: Database,
    provinces: int,
    communes: int,
    villages: int,
    periods: list[Period],
    corrections: float,
    seed: int = 7,
) -> tuple[Unit, Unit]:
    """Bulk-insert the tree and the submissions; return the first province and commune."""
    rng = random.Random(seed)
    created = NOW - timedelta(days=4000)
    units: list[dict[str, Any]] = []
    next_id = 1
    province_ids: list[int] = []
    commune_ids: list[tuple[int, str]] = []
    for p in range(provinces):
        pid = next_id
        next_id += 1
        province_ids.append(pid)
        units.append(
            {
                "id": pid,
                "parent_id": None,
                "kind": PROVINCE,
                "code": f"{p + 1:02d}",
                "name": f"Tỉnh {p + 1}",
                "name_folded": f"tinh {p + 1}",
                "path": f"/{pid}/",
                "created_at": created,
            }
        )
    per_province = [communes // provinces + (1 if i < communes % provinces else 0) for i in range(provinces)]
    for p, count in enumerate(per_province):
        for _ in range(count):
            cid = next_id
            next_id += 1
            path = f"/{province_ids[p]}/{cid}/"
            commune_ids.append((cid, path))
            units.append(
                {
                    "id": cid,
                    "parent_id": province_ids[p],
                    "kind": COMMUNE,
                    "code": f"{cid:05d}",
                    "name": f"Xã {cid}",
                    "name_folded": f"xa {cid}",
                    "path": path,
                    "created_at": created,
                }
            )
    village_rows: list[tuple[int, str]] = []
    per_commune = [villages // communes + (1 if i < villages % communes else 0) for i in range(communes)]
    for (cid, cpath), count in zip(commune_ids, per_commune, strict=True):
        for _ in range(count):
            vid = next_id
            next_id += 1
            village_rows.append((vid, f"{cpath}{vid}/"))
            units.append(
                {
                    "id": vid,
                    "parent_id": cid,
                    "kind": VILLAGE,
                    "code": None,
                    "name": f"Thôn {vid}",
                    "name_folded": f"thon {vid}",
                    "path": f"{cpath}{vid}/",
                    "created_at": created,
                }
            )
    async with db.engine.begin() as conn:
        for i in range(0, len(units), 5000):
            await conn.execute(insert(Unit), units[i : i + 5000])
    rows: list[dict[str, Any]] = []
    for period in periods:
        submitted = datetime.combine(period.end, datetime.min.time(), tzinfo=VN_TZ) - timedelta(
            days=rng.randint(0, 40)
        )
        for vid, _path in village_rows:
            record = f"{vid}:{period.key}"
            at = (submitted + timedelta(minutes=rng.randint(0, 60 * 24 * 30))).astimezone(UTC)
            rows.append(
                {
                    "form_key": "village_report",
                    "record_key": record,
                    "version": 1,
                    "unit_id": vid,
                    "period": period.key,
                    "values": village_values(rng),
                    "submitted_at": at,
                    "channel": "bench",
                }
            )
            if rng.random() < corrections:
                rows.append(
                    {
                        "form_key": "village_report",
                        "record_key": record,
                        "version": 2,
                        "unit_id": vid,
                        "period": period.key,
                        "values": village_values(rng),
                        "submitted_at": at + timedelta(days=3),
                        "channel": "bench",
                    }
                )
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            await conn.execute(insert(Submission), rows[i : i + 5000])
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
    else:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
    async with db.sessions() as s:
        province = await s.get(Unit, province_ids[0])
        commune = await s.get(Unit, commune_ids[0][0])
    assert province is not None and commune is not None
    return province, commune


async def timed(label: str, fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    await fn()
    cold = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        runs.append(time.perf_counter() - t0)
    median = statistics.median(runs)
    print(f"  {label:<52} median {median * 1000:8.1f} ms   (cold {cold * 1000:7.1f} ms, {repeat} runs)")
    return median, cold


async def read_rows(db: Database, period: Period) -> int:
    """The baseline: fetch the period's submission rows, decode their values, aggregate nothing."""
    from sqlalchemy import select

    async with db.sessions() as s:
        q = select(Submission.unit_id, Submission.version, Submission.values).where(
            Submission.form_key == "village_report", Submission.period == period.key
        )
        return sum(len(values) for _, _, values in (await s.execute(q)).all())


def ratio(label: str, report: float, baseline: float) -> None:
    print(f"  {label:<52} ratio  {report / baseline:8.2f}   (report / baseline)")


async def compile_in(db: Database, unit: Unit | None, period: Period) -> Compiled:
    async with db.sessions() as s:
        return await compile_report(
            s, unit=unit, period=period, schedules=SCHEDULES, targets=TARGETS, sum_fields=SUM_FIELDS, now=NOW
        )


async def province_scenario(url: str, repeat: int) -> None:
    db = Database(url)
    try:
        await upgrade_async(url)
        periods = half_years(Period.parse("2026-H2"), 20)
        t0 = time.perf_counter()
        province, commune = await fill(db, 1, 100, 3000, periods, corrections=0.05)
        async with db.sessions() as s:
            from sqlalchemy import func, select

            n = (await s.execute(select(func.count()).select_from(Submission))).scalar_one()
        print(
            f"province: 3,000 villages × 20 periods: {n:,} submission rows (5% corrected) "
            f"filled in {time.perf_counter() - t0:.1f} s"
        )
        latest = periods[-1]
        base, _ = await timed(f"baseline: read the {latest.key} rows", lambda: read_rows(db, latest), repeat)
        report, _ = await timed(
            f"province report {latest.key} (100 communes)", lambda: compile_in(db, province, latest), repeat
        )
        ratio("province report", report, base)
        await timed(
            f"commune report {latest.key} (30 villages)", lambda: compile_in(db, commune, latest), repeat
        )

        async def all_periods() -> None:
            for p in periods:
                await compile_in(db, province, p)

        await timed("province report, all 20 periods one after another", all_periods, max(1, repeat // 3))
        compiled = await compile_in(db, province, latest)
        t = translator("vi")
        t0 = time.perf_counter()
        xlsx = render_xlsx(compiled, t)
        t_xlsx = time.perf_counter() - t0
        t0 = time.perf_counter()
        charts = render_charts(compiled, t)
        t_png = time.perf_counter() - t0
        png_kb = sum(len(c.png) for c in charts) // 1024
        print(
            f"  rendering the province report: .xlsx {t_xlsx * 1000:.0f} ms ({len(xlsx) // 1024} KB), "
            f"{len(charts)} charts {t_png * 1000:.0f} ms ({png_kb} KB)"
        )
    finally:
        await db.dispose()


async def national_scenario(url: str, repeat: int) -> None:
    db = Database(url)
    try:
        await upgrade_async(url)
        periods = half_years(Period.parse("2026-H2"), 2)
        t0 = time.perf_counter()
        province, _ = await fill(db, 34, 3321, 64000, periods, corrections=0.0)
        print(
            f"national: 34 provinces, 3,321 communes, 64,000 villages × 2 periods filled in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        base, _ = await timed("baseline: read the 2026-H2 rows", lambda: read_rows(db, periods[-1]), repeat)
        report, _ = await timed(
            "national report 2026-H2 (34 provinces)", lambda: compile_in(db, None, periods[-1]), repeat
        )
        ratio("national report", report, base)
        await timed(
            "one province 2026-H2 (~98 communes, ~1,900 villages)",
            lambda: compile_in(db, province, periods[-1]),
            repeat,
        )
    finally:
        await db.dispose()


# ---- stall: other people's dialogues while a national report is made --------------------------

OFFICERS = 20


async def national_old_way(app: App, period: Period) -> None:
    """Before: compiled and drawn inside the dialogue's unit of work (the write lock held)."""
    t = translator("vi")
    async with app.uow() as uow:
        compiled = await compile_report(
            uow.session,
            unit=None,
            period=period,
            schedules=SCHEDULES,
            targets=TARGETS,
            sum_fields=SUM_FIELDS,
            now=NOW,
        )
        await asyncio.to_thread(render, compiled, t)
        summary_text(compiled, t)


async def national_new_way(app: App, period: Period) -> None:
    """Now: a read-only unit of work, drawing in a worker thread (bot.services.later)."""
    t = translator("vi")
    async with app.read_only() as reads:
        compiled = await compile_unit(reads, None, period, content_dir=CONTENT, forms=FORMS, now=NOW)
    await asyncio.to_thread(render, compiled, t)
    summary_text(compiled, t)


async def stall_run(
    app: App,
    label: str,
    officers: list[str],
    report: Callable[[], Awaitable[None]] | None,
    rate: float,
) -> float:
    latencies: list[float] = []
    done = asyncio.Event()
    reports: list[float] = []

    async def reports_back_to_back() -> None:
        assert report is not None
        while not done.is_set():
            t0 = time.perf_counter()
            await report()
            reports.append(time.perf_counter() - t0)

    background = asyncio.create_task(reports_back_to_back()) if report is not None else None
    if background is not None:
        await asyncio.sleep(0.2)  # the first report is under way when the officers start
    rng = random.Random(11)
    pause = len(officers) / rate
    t0 = time.perf_counter()
    await asyncio.gather(*(officer(app, ext, latencies, pause, rng) for ext in officers))
    wall = time.perf_counter() - t0
    done.set()
    if background is not None:
        await background
    q = statistics.quantiles(latencies, n=100)
    made = (
        f"; {len(reports)} national reports, median {statistics.median(reports) * 1000:.0f} ms each"
        if reports
        else ""
    )
    print(
        f"  {label:<40} steps {len(latencies):4d} in {wall:5.1f} s   p50 {q[49] * 1000:7.1f} ms   "
        f"p95 {q[94] * 1000:7.1f} ms   max {max(latencies) * 1000:7.1f} ms{made}"
    )
    return q[94] * 1000


async def stall_scenario(url: str, repeat: int, rate: float = 40.0) -> None:
    db = Database(url)
    try:
        await upgrade_async(url)
        periods = half_years(Period.parse("2026-H2"), 2)
        t0 = time.perf_counter()
        _province, commune = await fill(db, 34, 3321, 64000, periods, corrections=0.0)
    finally:
        await db.dispose()
    app = make_app(url)
    try:
        # Villages of their own for the officers (with no report yet), three runs' worth.
        from bot.services.actor import CONSOLE
        from bot.services.units import add_village

        async with app.uow() as uow:
            home = await uow.units.get(commune.id)
            assert home is not None
            villages = [
                await add_village(uow, CONSOLE, home, f"Thôn Bench {i}", VILLAGE, app.clock.now())
                for i in range(3 * OFFICERS)
            ]
            await uow.commit()
        for i, village in enumerate(villages):
            await make_contact(app, f"o{i}", VILLAGE_OFFICER, village, "vi", channel="bench")
        print(
            f"stall: the national data filled in {time.perf_counter() - t0:.1f} s; {OFFICERS} officers, "
            f"{len(script())} steps each, {rate:.0f} steps/s offered"
        )
        await national_new_way(app, periods[-1])  # warm-up: fonts, openpyxl, caches
        await national_old_way(app, periods[-1])
        ids = [f"o{i}" for i in range(3 * OFFICERS)]
        await stall_run(app, "no report", ids[:OFFICERS], None, rate)
        before = await stall_run(
            app,
            "old: inside the unit of work",
            ids[OFFICERS : 2 * OFFICERS],
            lambda: national_old_way(app, periods[-1]),
            rate,
        )
        after = await stall_run(
            app,
            "new: read-only unit of work + thread",
            ids[2 * OFFICERS :],
            lambda: national_new_way(app, periods[-1]),
            rate,
        )
        verdict = "met" if after < 50 else "NOT met"
        print(
            f"  step p95 while national reports are made: {before:.0f} ms before, {after:.0f} ms now "
            f"(target < 50 ms: {verdict})"
        )
    finally:
        await app.db.dispose()


async def run_on(
    backend: str,
    url_factory: Callable[[], Awaitable[tuple[str, Callable[[], Awaitable[None]]]]],
    only: str | None,
    repeat: int,
) -> None:
    print(f"\n== {backend} ==")
    scenarios = (("province", province_scenario), ("national", national_scenario), ("stall", stall_scenario))
    for name, scenario in scenarios:
        if only and only != name:
            continue
        url, cleanup = await url_factory()
        try:
            await scenario(url, repeat)
        finally:
            await cleanup()


def sqlite_factory(tmp: Path) -> Callable[[], Awaitable[tuple[str, Callable[[], Awaitable[None]]]]]:
    async def make() -> tuple[str, Callable[[], Awaitable[None]]]:
        path = tmp / f"bench-{uuid.uuid4().hex[:8]}.db"

        async def cleanup() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)

        return f"sqlite+aiosqlite:///{path}", cleanup

    return make


def postgres_factory(server: str) -> Callable[[], Awaitable[tuple[str, Callable[[], Awaitable[None]]]]]:
    base = make_url(normalise_url(server))

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(
            host=base.host, port=base.port, user=base.username, password=base.password, database="postgres"
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def make() -> tuple[str, Callable[[], Awaitable[None]]]:
        name = f"khuyenhoc_bench_{uuid.uuid4().hex[:8]}"
        await admin(f'CREATE DATABASE "{name}"')

        async def cleanup() -> None:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return base.set(database=name).render_as_string(hide_password=False), cleanup

    return make


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL"),
        help="a PostgreSQL server URL (a database is created and dropped)",
    )
    parser.add_argument("--only", choices=("province", "national", "stall"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="khuyenhoc-bench-") as tmp:
        if not args.no_sqlite:
            await run_on("SQLite", sqlite_factory(Path(tmp)), args.only, args.repeat)
        if args.postgres:
            await run_on("PostgreSQL", postgres_factory(args.postgres), args.only, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
