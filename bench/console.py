"""How long the console's period view takes: a province, and the whole country (issue 12, item 9).

On the national data of bench/reports.py (its `fill`: 34 provinces, 3,321 communes, 64,000
villages, a report from every village for 2026-H1 and for the year 2026), measured in one run:

* the compiled report alone — the service the page calls (bot.services.reports.compile_report /
  compile_country) through a read-only unit of work, as /baocaotonghop compiles it;
* the full HTTP GET of /console/period through the real ASGI app (the FastAPI app of
  bot.runtime.http, httpx's ASGI transport, no socket), with a logged-in session: the session
  and its grants loaded, the report compiled, the lines and the SVG chart laid out, the Jinja2
  template rendered — everything but the network.

The ratio page / report is what the page costs on top of the query. Targets (PostgreSQL):
province < 300 ms, national < 2 s. Each figure is the median of --repeat runs after one warm-up.

    .venv/bin/python bench/console.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/console.py --villages 8000 --repeat 3          # quicker, SQLite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from reports import (  # bench/reports.py: the same data, the same timing and databases
    CONTENT,
    FORMS,
    NOW,
    fill,
    postgres_factory,
    sqlite_factory,
)

from bot.domain.clock import FixedClock
from bot.domain.periods import Period
from bot.reports.aggregate import Compiled
from bot.services.actor import Actor
from bot.services.reports import compile_country, compile_report
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import ADMIN, PROVINCE_STAFF
from tests.console_support import console_client, log_in
from tests.support import make_app, make_contact

PERIOD = Period.parse("2026")
PROVINCE_TARGET_MS = 300.0
NATIONAL_TARGET_MS = 2000.0


async def scenario(url: str, villages: int, repeat: int, targets: bool) -> None:
    communes = max(34, round(3321 * villages / 64000))
    db = Database(url)
    try:
        await upgrade_async(url)
        t0 = time.perf_counter()
        province, _commune = await fill(db, 34, communes, villages, [Period.parse("2026-H1"), PERIOD], 0.0)
        print(
            f"34 provinces, {communes:,} communes, {villages:,} villages × 2 periods filled in "
            f"{time.perf_counter() - t0:.1f} s"
        )
    finally:
        await db.dispose()
    app = make_app(url, FixedClock(NOW))
    try:
        await make_contact(app, "province-staff", PROVINCE_STAFF, province, channel="bench")
        await make_contact(app, "admin", ADMIN, province, channel="bench")
        async with app.uow() as uow:  # the country: an admin granted on every province
            admin = await uow.contacts.by_identity("bench", "admin")
            assert admin is not None
            for p in await uow.units.children(None):
                if p.id != province.id:
                    await uow.contacts.grant(admin.id, ADMIN, p.id, app.clock.now())
            await uow.commit()
        actors: dict[str, Actor] = {}
        async with app.uow() as uow:
            from bot.domain.permissions import load_grants

            for ext in ("province-staff", "admin"):
                contact = await uow.contacts.by_identity("bench", ext)
                assert contact is not None
                actors[ext] = Actor.of(contact, await load_grants(uow, contact.id))

        async def report_province() -> None:
            async with app.read_only() as reads:
                await compile_report(
                    reads,
                    actors["province-staff"],
                    province.id,
                    PERIOD,
                    content_dir=CONTENT,
                    forms=FORMS,
                    now=NOW,
                )

        async def report_country() -> None:
            async with app.read_only() as reads:
                await compile_country(
                    reads, actors["admin"], PERIOD, content_dir=CONTENT, forms=FORMS, now=NOW
                )

        async with console_client(app) as staff_client, console_client(app) as admin_client:
            for client, ext in ((staff_client, "province-staff"), (admin_client, "admin")):
                await log_in(client, app, ext, channel="bench")
            views = {
                "province": (
                    staff_client,
                    f"/console/period?unit={province.id}&period={PERIOD.key}",
                    report_province,
                ),
                "country": (admin_client, f"/console/period?period={PERIOD.key}", report_country),
            }
            results: dict[str, tuple[float, float]] = {}
            for name, (client, path, report) in views.items():

                async def page(client: httpx.AsyncClient = client, path: str = path) -> str:
                    response = await client.get(path)
                    assert response.status_code == 200, (response.status_code, response.text[:300])
                    return response.text

                # The page shows every line of the report it compiles: one row per sub-unit.
                async with app.read_only() as reads:
                    expected_rows = len((await _compiled(reads, name, actors, province.id)).rows)
                html = await page()
                rows = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr ")
                assert rows == expected_rows, (name, rows, expected_rows)
                print(f"  {name}: {rows} rows, {len(html) // 1024} KB of HTML")
                # Alternately, so that both see the same state of the machine and the database.
                results[name] = await interleaved(name, report, page, repeat)
        for name, (report_s, page_s) in results.items():
            print(
                f"  {name:<9} page {page_s * 1000:8.1f} ms   report {report_s * 1000:8.1f} ms   "
                f"ratio page/report {page_s / report_s:5.2f}"
            )
        if targets:
            for name, limit in (("province", PROVINCE_TARGET_MS), ("country", NATIONAL_TARGET_MS)):
                ms = results[name][1] * 1000
                verdict = "met" if ms < limit else "NOT met"
                print(f"  {name} page {ms:.0f} ms, target < {limit:.0f} ms: {verdict}")
    finally:
        await app.db.dispose()


async def _compiled(reads: Any, name: str, actors: dict[str, Actor], province_id: int) -> Compiled:
    if name == "country":
        return await compile_country(
            reads, actors["admin"], PERIOD, content_dir=CONTENT, forms=FORMS, now=NOW
        )
    return await compile_report(
        reads, actors["province-staff"], province_id, PERIOD, content_dir=CONTENT, forms=FORMS, now=NOW
    )


async def interleaved(
    name: str, report: Callable[[], Awaitable[Any]], page: Callable[[], Awaitable[Any]], repeat: int
) -> tuple[float, float]:
    """Median seconds of the report and of the page, run one after the other `repeat` times
    after a warm-up of each."""
    await report()
    await page()
    reports, pages = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await report()
        reports.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await page()
        pages.append(time.perf_counter() - t0)
    for label, runs in (("compiled report (the query)", reports), ("GET /console/period (the page)", pages)):
        print(
            f"  {name + ': ' + label:<52} median {statistics.median(runs) * 1000:8.1f} ms   "
            f"(min {min(runs) * 1000:7.1f}, max {max(runs) * 1000:7.1f}, {repeat} runs)"
        )
    return statistics.median(reports), statistics.median(pages)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL"),
        help="a PostgreSQL server URL (a database is created and dropped)",
    )
    parser.add_argument("--villages", type=int, default=64000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="khuyenhoc-bench-") as tmp:
        backends = []
        if not args.no_sqlite:
            backends.append(("SQLite", sqlite_factory(Path(tmp)), False))
        if args.postgres:
            backends.append(("PostgreSQL", postgres_factory(args.postgres), True))
        for name, factory, targets in backends:
            print(f"\n== {name} ==")
            url, cleanup = await factory()
            try:
                await scenario(url, args.villages, args.repeat, targets)
            finally:
                await cleanup()


if __name__ == "__main__":
    asyncio.run(main())
