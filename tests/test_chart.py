"""Issue 10, item 2: charts for phones, one indicator per picture.

Before, one 12-inch picture held four panels side by side: on a phone its names were 4 px high.
Now each indicator is its own picture, 4 inches wide, with vertical bars sorted by value, the
target as a line, and sub-units without a report as labelled empty slots. These tests read the
drawn figures themselves; tests/test_chart_on_phone.py shows them in Chromium at 390 px.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from bot.domain.app import App
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.reports.aggregate import Compiled
from bot.reports.chart import (
    CHART_RATES,
    DPI,
    MAX_SLOTS,
    WIDTH_IN,
    build_figure,
    png_of,
    render_charts,
    slots,
)
from bot.reports.compiled import compile_unit
from storage.db import Database
from storage.models import COMMUNE, Unit
from tests.support import Tree, make_app, seed_tree
from tests.test_names_are_data import raw_unit
from tests.test_reports_helpers import submit, vn

H1 = Period.parse("2026-H1")
YEAR = Period.parse("2026")
PHONE_CSS_PX = 390
SMALLEST_PX = 11


@pytest.fixture
async def app(sqlite_db: Database) -> AsyncIterator[App]:
    app = make_app(sqlite_db.url)
    try:
        yield app
    finally:
        await app.db.dispose()


async def compiled(app: App, unit: Unit | None, period: Period = YEAR) -> Compiled:
    async with app.read_only() as reads:
        return await compile_unit(
            reads, unit, period, content_dir=app.content_dir, forms=app.forms, now=app.clock.now()
        )


def drawn_texts(fig: Figure) -> list[Text]:
    """Every text the picture shows (tick labels exist once the figure has been drawn)."""
    png_of(fig)
    return [
        t
        for t in fig.findobj(Text)
        if isinstance(t, Text) and t.get_visible() and t.get_text().strip() and t.get_alpha() != 0
    ]


def px_at_phone_width(points: float, width_in: float = WIDTH_IN) -> float:
    """How high `points` of the figure are on a phone showing the picture 390 CSS px wide."""
    return points / 72 * PHONE_CSS_PX / width_in


async def big_commune(app: App, tree: Tree, villages: int = 30) -> Unit:
    """A commune with many villages (every seventh without a report)."""
    commune = await raw_unit(app, tree.province, "Xã Nhiều Thôn", COMMUNE)
    for n in range(villages):
        village = await raw_unit(app, commune, f"Thôn {n + 1:02d}")
        if n % 7 != 6:
            await submit(app, village, "2026", vn(2026, 11, 10), households_total=100, lf_recognized=n * 3)
    return commune


async def test_every_text_is_legible_on_a_phone_and_inside_the_picture(app: App) -> None:
    tree = await seed_tree(app)
    commune = await big_commune(app, tree)
    await submit(app, tree.village, "2025", vn(2025, 11, 20), households_total=100, lf_recognized=70)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100, lf_registered=80)
    cases = [(commune, YEAR), (tree.commune, H1), (tree.province, H1), (None, YEAR)]
    for unit, period in cases:
        c = await compiled(app, unit, period)
        for locale in ("vi", "en"):
            t = translator(locale)
            for key in CHART_RATES:
                fig = build_figure(c, t, key)
                assert fig.get_figwidth() == WIDTH_IN and fig.dpi == DPI
                texts = drawn_texts(fig)
                smallest = min(t.get_fontsize() for t in texts)
                assert px_at_phone_width(smallest) >= SMALLEST_PX, (key, smallest)
                box = fig.bbox
                renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
                for text in texts:  # nothing cut off at the edges
                    extent = text.get_window_extent(renderer)
                    assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, text.get_text()
                    assert extent.y0 >= box.y0 - 1 and extent.y1 <= box.y1 + 1, text.get_text()


async def test_bars_are_sorted_and_units_without_a_report_are_empty_slots(app: App) -> None:
    tree = await seed_tree(app)
    await submit(app, tree.village, "2026", vn(2026, 11, 10), households_total=100, lf_recognized=30)
    # Tổ dân phố 1 has not reported.
    t = translator("vi")
    shown = slots(await compiled(app, tree.commune), t, "learning_families")
    assert [(s.label, s.kind, s.value) for s in shown] == [
        ("Thôn Nà Rụa", "bar", 30.0),
        ("Tổ dân phố 1", "no_report", None),  # a slot, not a 0 bar
    ]
    fig = build_figure(await compiled(app, tree.commune), t, "learning_families")
    (ax,) = fig.axes
    bars = [p for p in ax.patches if p.get_facecolor()[3] > 0]  # filled: the results
    assert [round(b.get_height(), 1) for b in bars] == [30.0]
    assert "chưa báo cáo" in [x.get_text() for x in ax.texts]
    # The target, 70% for this commune (content/targets.yaml), is one line across.
    (target,) = ax.get_lines()
    assert list(target.get_ydata()) == [70.0, 70.0]
    assert "Tính chung: 30%; chỉ tiêu 70%" in [x.get_text() for x in fig.texts]


async def test_many_villages_keep_the_highest_and_the_lowest(app: App) -> None:
    tree = await seed_tree(app)
    commune = await big_commune(app, tree, villages=30)
    t = translator("vi")
    shown = slots(await compiled(app, commune), t, "learning_families")
    assert len(shown) == MAX_SLOTS
    values = [s.value for s in shown if s.kind == "bar"]
    assert values == sorted(values, reverse=True)
    assert values[0] == 87.0 and values[-1] == 0.0  # Thôn 30 and Thôn 01: highest and lowest
    (more,) = [s for s in shown if s.kind == "more"]
    reported = 30 - 4  # Thôn 07, 14, 21, 28 have not reported
    assert more.label == f"… và {reported - len(values)} đơn vị khác"
    assert shown[-1].kind == "no_report" and shown[-1].label == "4 đơn vị chưa báo cáo"


async def test_a_half_year_chart_says_its_rates_are_last_years(app: App) -> None:
    tree = await seed_tree(app)
    await submit(app, tree.village, "2025", vn(2025, 11, 20), households_total=100, lf_recognized=70)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100, lf_registered=80)
    c = await compiled(app, tree.commune, H1)
    t = translator("vi")
    fig = build_figure(c, t, "learning_families")
    header = [x.get_text() for x in fig.texts]
    assert f"công nhận: {Period.parse('2025').label(t)}" in header
    (ax,) = fig.axes
    blue = [
        p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((0x15 / 255, 0x65 / 255, 0xC0 / 255))
    ]
    assert [round(b.get_height()) for b in blue] == [80]  # this year's registrations beside last year's rate
    membership = build_figure(c, t, "membership")
    assert not any("công nhận" in x.get_text() for x in membership.texts)  # not carried


async def test_the_pictures_are_phone_sized_pngs(app: App) -> None:
    tree = await seed_tree(app)
    commune = await big_commune(app, tree, villages=40)
    charts = render_charts(await compiled(app, commune), translator("vi"))
    assert [c.slug for c in charts] == [
        "gia-dinh-hoc-tap",
        "dong-ho-hoc-tap",
        "cong-dong-hoc-tap",
        "ty-le-hoi-vien-tren-dan-so",
    ]
    for chart in charts:
        with Image.open(io.BytesIO(chart.png)) as image:
            width, height = image.size
            assert width == WIDTH_IN * DPI == 800
            assert height <= 2 * width  # a phone screen or two, never a scroll of names
            assert round(image.info["dpi"][0]) == DPI
