"""The report files: the .xlsx opens with openpyxl and adds up, the chart is a PNG, the CSV parses,
and `khuyenhoc report` writes the same files."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image
from typer.testing import CliRunner

from bot.domain.app import App
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.reports.aggregate import Compiled
from bot.reports.compiled import compile_unit, file_stem, render
from bot.reports.labels import COLUMNS
from bot.reports.targets import load_targets
from bot.runtime.cli import app as cli
from bot.services.actor import CONSOLE
from bot.services.profiles import set_profile
from storage.db import Database
from storage.migrate import upgrade
from tests.sheet_tables import table_with, tables
from tests.support import CONTENT, Tree, make_app, seed_tree
from tests.test_reports_helpers import submit, submit_activity, vn

H1 = Period.parse("2026-H1")
# The columns whose figures an H1 report carries from last year's year reports.
CARRIED = {
    "lf_recognized",
    "learning_families_pct",
    "lc_recognized",
    "learning_clans_pct",
    "villages_recognized",
    "learning_communities_pct",
    "adults_learning_total",
    "lcit_recognized",
    "learning_citizens_pct",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def fill(app: App) -> Tree:
    """H1 2026 reports, and last year's year reports their recognised rates are carried from."""
    tree = await seed_tree(app)
    await submit(app, tree.village, "2025", vn(2025, 11, 20), households_total=100, lf_recognized=60)
    await submit(app, tree.group, "2025", vn(2025, 11, 21), households_total=50, lf_recognized=30)
    await submit(
        app,
        tree.village,
        "2026-H1",
        vn(2026, 6, 10),
        households_total=100,
        lf_registered=70,
        clans_total=5,
        lc_registered=3,
        members_total=50,
        population_total=400,
        fund_raised_vnd=6_000_000,
    )
    await submit(
        app,
        tree.group,
        "2026-H1",
        vn(2026, 6, 20),
        households_total=50,
        lf_registered=20,
        clans_total=2,
        lc_registered=1,
        members_total=30,
        population_total=None,
        fund_raised_vnd=1_000_000,
    )
    await submit_activity(app, tree.village, date(2026, 3, 5), participants=40)
    await submit_activity(app, tree.commune, date(2026, 5, 1), participants=100)
    return tree


@pytest.fixture
async def app(sqlite_db: Database) -> AsyncIterator[App]:
    app = make_app(sqlite_db.url)
    try:
        yield app
    finally:
        await app.db.dispose()


async def compiled(app: App, unit: Any) -> Compiled:
    async with app.read_only() as reads:
        return await compile_unit(
            reads, unit, H1, content_dir=app.content_dir, forms=app.forms, now=app.clock.now()
        )


async def test_xlsx_opens_and_its_totals_are_the_sum_of_its_rows(app: App) -> None:
    tree = await fill(app)
    t = translator("vi")
    for unit in (tree.commune, tree.province):
        c = await compiled(app, unit)
        (xlsx,) = render(c, t, ["xlsx"])
        assert xlsx.filename.endswith(".xlsx")
        wb = load_workbook(io.BytesIO(xlsx.data))
        ws = wb.active
        assert ws is not None
        rows = list(ws.iter_rows(values_only=True))
        texts = [str(v) for row in rows for v in row if isinstance(v, str)]
        assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in texts
        assert "Độc lập - Tự do - Hạnh phúc" in texts
        assert any("xã hội học tập" in s for s in texts)  # the title
        assert any(unit.name in s for s in texts)
        assert any("6 tháng đầu năm 2026" in s for s in texts)
        assert "CHỦ TỊCH" in texts  # the signature block
        # Every column of bot/reports/labels.py is in one of the topic tables, once; the
        # recognised figures are last year's: their headers say so.
        last_year = " — " + Period.parse("2025").label(t)
        found = {}
        for table in tables(rows):
            if t("Communes to report") in table.headers:  # the communes' own reports
                continue
            for col in COLUMNS:
                header = t(col.header) + (last_year if col.key in CARRIED else "")
                if header in table.headers:
                    assert col.key not in found, col.key
                    found[col.key] = (table, table.headers.index(header))
                    # a line per sub-unit (then, in the activities, the commune's own)
                    names = [r[1] for r in table.body][: len(c.rows)]
                    assert names == [r.unit.name for r in c.rows]
        assert set(found) == {col.key for col in COLUMNS}
        for col in COLUMNS:
            table, i = found[col.key]
            assert table.total is not None
            if col.summed:
                assert table.total[i] == sum(r[i] or 0 for r in table.body), col.key
        # Rates in the total line are recomputed from the totals, as fractions (format 0.0%).
        lf_table, lf = found["learning_families_pct"]
        assert lf_table.total is not None and lf_table.total[lf] == pytest.approx(90 / 150)  # 2025's 60 + 30
        carried_note = t(
            "Titles are recognised at year end: the recognised rates of this report are those of "
            "{period}; this period's registrations are listed below them.",
            period=Period.parse("2025").label(t),
        )
        assert any(carried_note in s for s in texts)
        definition = load_targets(CONTENT).for_unit(2026).definition("learning_citizens", "vi")
        assert definition is not None and definition + "." in texts
        pp_table, per_person = found["fund_per_person_vnd"]
        assert pp_table.total is not None and pp_table.total[per_person] == pytest.approx(6_000_000 / 400)
        assert ws.cell(row=1, column=1).font.name == "Times New Roman"
        # The activities table adds up too (with the commune's own activities on a line).
        acts = table_with(rows, t("Activities"))
        n = acts.column(t("Activities"))
        assert acts.total is not None and acts.total[n] == sum(r[n] for r in acts.body) == 2


async def test_a_chart_per_indicator_each_a_valid_png(app: App) -> None:
    tree = await fill(app)
    t = translator("vi")
    for unit in (tree.commune, tree.province, None):
        c = await compiled(app, unit)
        charts = render(c, t, ["png"])
        stem = file_stem(c)
        assert [p.filename for p in charts] == [
            f"{stem}-gia-dinh-hoc-tap.png",
            f"{stem}-dong-ho-hoc-tap.png",
            f"{stem}-cong-dong-hoc-tap.png",
            f"{stem}-ty-le-hoi-vien-tren-dan-so.png",
        ]
        for png in charts:
            assert png.content_type == "image/png"
            assert png.data.startswith(PNG_MAGIC)
            with Image.open(io.BytesIO(png.data)) as image:
                image.verify()
            with Image.open(io.BytesIO(png.data)) as image:  # 4 inches at 200 dpi: phone-sized
                assert image.format == "PNG" and image.size[0] == 800 and 800 <= image.size[1] <= 1600
    english = render(c, translator("en"), ["png"])
    assert english[0].filename == f"{file_stem(c)}-learning-families.png"  # named in the officer's language


async def test_csv_for_data_exchange(app: App) -> None:
    tree = await fill(app)
    c = await compiled(app, tree.commune)
    (data,) = render(c, translator("en"), ["csv"])
    lines = list(csv.DictReader(io.StringIO(data.data.decode("utf-8"))))
    units, total = lines[:-1], lines[-1]
    assert total["line"] == "total" and total["unit_id"] == str(tree.commune.id)
    assert [u["unit_name"] for u in units] == ["Thôn Nà Rụa", "Tổ dân phố 1"]
    assert int(total["households_total"]) == sum(int(u["households_total"]) for u in units) == 150
    assert float(total["learning_families_pct"]) == pytest.approx(60.0, abs=1e-3)
    assert units[1]["membership_pct"] == ""  # no population given: no rate


def test_khuyenhoc_report_writes_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)

    async def seed() -> Tree:
        app = make_app(url)
        try:
            tree = await fill(app)
            async with app.uow() as uow:  # the commune's own signer and symbol (/hoso)
                await set_profile(
                    uow,
                    CONSOLE,
                    tree.commune,
                    signer_name="Nông Văn Hải",
                    signer_title="",
                    number_symbol="BC-HKHP",
                    now=app.clock.now(),
                )
                await uow.commit()
            return tree
        finally:
            await app.db.dispose()

    tree = asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CONTENT_DIR", str(CONTENT))
    runner = CliRunner()
    charts = ("gia-dinh-hoc-tap", "dong-ho-hoc-tap", "cong-dong-hoc-tap", "ty-le-hoi-vien-tren-dan-so")
    for fmt, magic in (("xlsx", b"PK"), ("docx", b"PK"), ("png", PNG_MAGIC), ("csv", b"line,unit_id")):
        out = tmp_path / f"report.{fmt}"
        result = runner.invoke(
            cli,
            [
                "report",
                "--unit",
                tree.commune.code or "",
                "--period",
                "2026-H1",
                "--format",
                fmt,
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        # png: a chart per indicator, each named after --out
        written = [tmp_path / f"report-{c}.png" for c in charts] if fmt == "png" else [out]
        for path in written:
            assert path.read_bytes().startswith(magic)
            assert f"Written: {path}" in result.output
        assert "Thục Phán" in result.output
        if fmt == "xlsx":
            ws = load_workbook(out).active
            assert ws is not None
            cells = {v for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)}
            assert {"Nông Văn Hải", "CHỦ TỊCH", "Số: …/BC-HKHP"} <= cells
    result = runner.invoke(
        cli, ["report", "--unit", str(tree.province.id), "--period", "2026-H7", "--format", "xlsx"]
    )
    assert result.exit_code != 0
