"""Aggregation village → commune → province on both backends, checked against hand computation."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from bot.domain.app import App
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.domain.schedules import load_schedules
from bot.reports.aggregate import Compiled, missing_units
from bot.reports.chart import panel_title
from bot.reports.compiled import compile_unit, summary_text
from bot.reports.targets import load_targets, parse_targets
from storage.db import Database
from storage.models import Unit
from tests.support import CONTENT, Tree, make_app, seed_tree
from tests.test_reports_helpers import submit, submit_activity, vn

H1 = Period.parse("2026-H1")
YEAR = Period.parse("2026")


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url)
    try:
        yield app
    finally:
        await app.db.dispose()


async def compiled(app: App, unit: Unit | None, period: Period = H1) -> Compiled:
    async with app.read_only() as reads:
        return await compile_unit(
            reads,
            unit,
            period,
            content_dir=app.content_dir,
            forms=app.forms,
            now=app.clock.now(),
        )


async def test_commune_rates_match_hand_computed_values(app: App) -> None:
    tree = await seed_tree(app)
    # Thôn Nà Rụa, on time (deadline 30/11/2026).
    await submit(
        app,
        tree.village,
        "2026",
        vn(2026, 11, 10),
        households_total=100,
        lf_recognized=70,
        clans_total=5,
        lc_recognized=3,
        village_lc_status="recognized",
        members_total=50,
        population_total=400,
        fund_raised_vnd=6_000_000,
        adults_total=300,
        adults_learning_total=240,
        lcit_recognized=96,
    )
    # Tổ dân phố 1, late, without population or adults (optional figures).
    await submit(
        app,
        tree.group,
        "2026",
        vn(2026, 12, 5),
        households_total=50,
        lf_recognized=20,
        clans_total=2,
        lc_recognized=1,
        village_lc_status="registered",
        members_total=30,
        population_total=None,
        fund_raised_vnd=1_000_000,
        adults_total=None,
        adults_learning_total=None,
        lcit_recognized=10,
    )
    c = await compiled(app, tree.commune, YEAR)
    t = c.total
    assert (t.expected, t.reported, t.on_time) == (2, 2, 1)
    assert t.completeness == 100.0 and t.timeliness == 50.0
    assert t.value("households_total") == 150 and t.value("lf_recognized") == 90
    assert t.rate("learning_families") == pytest.approx(90 / 150 * 100)
    assert t.rate("learning_clans") == pytest.approx(4 / 7 * 100)
    assert t.rate("learning_communities") == pytest.approx(50.0)  # 1 of the 2 villages reporting
    # Membership and fund per person only over the village that gave its population.
    assert t.rate("membership") == pytest.approx(50 / 400 * 100)
    assert t.rate("fund_per_person_vnd") == pytest.approx(6_000_000 / 400)
    # Công dân học tập over the working-age people of learning families … (not adults_total).
    assert t.rate("learning_citizens") == pytest.approx(96 / 240 * 100)
    rows = {r.unit.name: r.figures for r in c.rows}
    assert set(rows) == {"Thôn Nà Rụa", "Tổ dân phố 1"}
    assert rows["Thôn Nà Rụa"].rate("learning_families") == pytest.approx(70.0)
    assert rows["Tổ dân phố 1"].rate("membership") is None
    assert c.leaf_rows and c.missing == []
    assert c.due == date(2026, 11, 30)
    assert c.carried_from == {}  # the year asks its recognitions itself


async def test_learning_citizens_by_hand(app: App) -> None:
    """seed 001 line 54: Công dân học tập counts the working-age people OF learning families,
    clans, communities and units, asked as its own figure; adults_total stays as it was."""
    tree = await seed_tree(app)
    await submit(
        app,
        tree.village,
        "2026",
        vn(2026, 11, 10),
        adults_total=500,
        adults_learning_total=320,
        lcit_recognized=80,
    )
    await submit(
        app,
        tree.group,
        "2026",
        vn(2026, 11, 11),
        adults_total=300,
        adults_learning_total=180,
        lcit_recognized=45,
    )
    # A village that could not say: left out of the rate, numerator and denominator alike.
    await submit(
        app, tree.other_village, "2026", vn(2026, 11, 12), adults_learning_total=None, lcit_recognized=999
    )
    commune = await compiled(app, tree.commune, YEAR)
    assert commune.total.rate("learning_citizens") == pytest.approx((80 + 45) / (320 + 180) * 100)  # 25%
    assert commune.total.value("adults_total") == 800
    assert commune.total.value("adults_learning_total") == 500
    province = await compiled(app, tree.province, YEAR)
    assert province.total.rate("learning_citizens") == pytest.approx(125 / 500 * 100)
    t = translator("vi")
    text = summary_text(commune, t)
    assert "• Công dân học tập: 25%" in text
    definition = (
        "số người đạt Công dân học tập / số người trong độ tuổi lao động thuộc gia đình, dòng họ, "
        "cộng đồng, đơn vị học tập"
    )
    assert definition in text
    assert definition in load_targets(CONTENT).for_unit(2026).definition("learning_citizens", "vi")


async def test_at_the_half_year_the_recognised_rates_are_last_years(app: App) -> None:
    """Titles are recognised at year end: an H1 report shows last year's recognised rate (from
    last year's year reports) and this year's registrations, labelled as such."""
    tree = await seed_tree(app)
    await submit(
        app,
        tree.village,
        "2025",
        vn(2025, 11, 20),
        households_total=100,
        lf_recognized=60,
        clans_total=5,
        lc_recognized=2,
        village_lc_status="recognized",
    )
    await submit(
        app,
        tree.group,
        "2025",
        vn(2025, 11, 21),
        households_total=50,
        lf_recognized=15,
        clans_total=5,
        lc_recognized=3,
        village_lc_status="registered",
    )
    # H1 2026: this year's registrations; an older form's 0 for "recognised" is not read.
    await submit(
        app,
        tree.village,
        "2026-H1",
        vn(2026, 6, 10),
        households_total=110,
        lf_registered=88,
        lf_recognized=0,
        village_lc_status="registered",
    )
    await submit(
        app,
        tree.group,
        "2026-H1",
        vn(2026, 6, 11),
        households_total=50,
        lf_registered=20,
        village_lc_status="not_registered",
    )
    c = await compiled(app, tree.commune, H1)
    last_year = Period.parse("2025")
    assert c.carried_from["learning_families"] == last_year
    assert c.carried_from["learning_communities"] == last_year
    assert "membership" not in c.carried_from
    assert c.total.rate("learning_families") == pytest.approx(75 / 150 * 100)  # 2025: 50%
    assert c.total.value("lf_recognized") == 75
    assert c.total.rate("learning_clans") == pytest.approx(5 / 10 * 100)
    assert c.total.rate("learning_communities") == pytest.approx(50.0)  # 1 of 2 villages in 2025
    assert c.total.rate("lf_registration") == pytest.approx(108 / 160 * 100)  # 67.5%
    assert c.total.rate("lcom_registration") == pytest.approx(50.0)
    assert c.total.value("households_total") == 160  # stocks are this period's
    t = translator("vi")
    text = summary_text(c, t)
    assert f"• Gia đình học tập — đã công nhận, {last_year.label(t)}: 50%" in text
    assert f"Đăng ký danh hiệu — {H1.label(t)}:" in text
    assert "• Hộ đăng ký Gia đình học tập: 67,5%" in text
    en = summary_text(c, translator("en"))
    assert "• Learning families — recognised, Year 2025: 50%" in en
    assert "• Households registered for Learning Family: 67.5%" in en
    assert panel_title(c, t, "learning_families").splitlines() == [
        "Gia đình học tập",
        f"công nhận: {last_year.label(t)}",
        f"xanh dương: đăng ký, {H1.label(t)}",
    ]
    assert panel_title(c, t, "membership") == "Tỷ lệ hội viên trên dân số"  # not carried: its plain name
    # The year itself asks the recognitions: nothing carried, no registration lines.
    year = await compiled(app, tree.commune, YEAR)
    assert year.carried_from == {} and "Đăng ký danh hiệu" not in summary_text(year, t)


async def test_province_is_the_sum_of_its_communes(app: App) -> None:
    tree = await seed_tree(app)
    await submit(app, tree.village, "2026", vn(2026, 11, 1), households_total=120, lf_recognized=90)
    await submit(app, tree.group, "2026", vn(2026, 11, 2), households_total=80, lf_recognized=40)
    await submit(app, tree.other_village, "2026", vn(2026, 11, 3), households_total=60, lf_recognized=30)
    province = await compiled(app, tree.province, YEAR)
    commune = await compiled(app, tree.commune, YEAR)
    other = await compiled(app, tree.other_commune, YEAR)
    rows = {r.unit.id: r.figures for r in province.rows}
    assert set(rows) == {tree.commune.id, tree.other_commune.id}
    for unit_id, c in ((tree.commune.id, commune), (tree.other_commune.id, other)):
        assert rows[unit_id].sums == c.total.sums
        assert (rows[unit_id].expected, rows[unit_id].reported) == (c.total.expected, c.total.reported)
    assert province.total.value("households_total") == 260
    assert province.total.rate("learning_families") == pytest.approx(160 / 260 * 100)
    assert not province.leaf_rows
    national = await compiled(app, None, YEAR)
    assert [r.unit.id for r in national.rows] == [tree.province.id]
    assert national.total.sums == province.total.sums


async def test_a_correction_replaces_the_old_version_in_the_totals(app: App) -> None:
    tree = await seed_tree(app)
    await submit(app, tree.village, "2026", vn(2026, 11, 10), households_total=100, lf_recognized=70)
    await submit(app, tree.group, "2026", vn(2026, 11, 11), households_total=50, lf_recognized=25)
    before = await compiled(app, tree.commune, YEAR)
    assert before.total.value("households_total") == 150
    corrected = await submit(
        app, tree.village, "2026", vn(2026, 12, 2), households_total=120, lf_recognized=90
    )
    assert corrected.version == 2
    after = await compiled(app, tree.commune, YEAR)
    assert after.total.value("households_total") == 170  # 120 + 50, not 100 + 120 + 50
    assert after.total.value("lf_recognized") == 115
    assert after.total.reported == 2
    assert after.total.on_time == 2  # first sent on time: a later correction keeps it on time
    assert after.total.rate("learning_families") == pytest.approx(115 / 170 * 100)


async def test_change_from_the_previous_period(app: App) -> None:
    """A year is compared with the year before (the recognised rates are asked in the year)."""
    tree = await seed_tree(app)
    await submit(app, tree.village, "2025", vn(2025, 11, 20), households_total=100, lf_recognized=50)
    await submit(app, tree.village, "2026", vn(2026, 11, 20), households_total=100, lf_recognized=65)
    c = await compiled(app, tree.commune, YEAR)
    assert c.previous_period.key == "2025"
    assert c.previous_total.rate("learning_families") == pytest.approx(50.0)
    assert c.total.rate("learning_families") == pytest.approx(65.0)
    assert c.previous_total.reported == 1 and c.previous_total.expected == 2
    en = summary_text(c, translator("en"))
    assert "• Learning families: 65% (target 70%, 92.9% of it; +15 points on Year 2025)" in en


async def test_a_half_year_is_compared_with_last_years_half_year(app: App) -> None:
    """H1 is compared with last year's H1: the village report has no second half-year (a 2025-H2
    report kept from before, migration 0009, is history and not compared with)."""
    tree = await seed_tree(app)
    await submit(app, tree.village, "2025-H1", vn(2025, 6, 1), households_total=100)
    await submit(app, tree.village, "2025-H2", vn(2025, 12, 1), households_total=80)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 1), households_total=110)
    c = await compiled(app, tree.commune)
    assert c.period.key == "2026-H1" and c.previous_period.key == "2025-H1"
    assert c.previous_total.value("households_total") == 100
    assert c.total.value("households_total") == 110
    assert c.previous_total.reported == 1 and c.previous_total.expected == 2


async def test_activities_are_counted_by_their_date(app: App) -> None:
    tree = await seed_tree(app)
    await submit_activity(app, tree.village, date(2026, 3, 5), participants=40, sessions=2, female=25)
    await submit_activity(app, tree.group, date(2026, 6, 30), participants=60)
    await submit_activity(app, tree.commune, date(2026, 5, 1), participants=100)  # the commune's own
    await submit_activity(app, tree.village, date(2026, 7, 1), participants=999)  # next half-year
    await submit_activity(app, tree.other_village, date(2026, 4, 1), participants=7)  # other commune
    c = await compiled(app, tree.commune)
    acts = c.total.activities
    assert (acts.count, acts.participants, acts.sessions, acts.participants_female) == (3, 200, 4, 65)
    assert c.own_activities.count == 1 and c.own_activities.participants == 100
    rows = {r.unit.name: r.figures.activities for r in c.rows}
    assert rows["Thôn Nà Rụa"].participants == 40 and rows["Tổ dân phố 1"].participants == 60


async def test_missing_units_and_the_lifelong_learning_week(app: App) -> None:
    tree = await seed_tree(app)
    schedules = load_schedules(app.content_dir)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 1))
    async with app.read_only() as reads:
        missing = await missing_units(reads, schedules.deadline("village_report.half_year"), H1)
        assert {u.name for u in missing} == {"Tổ dân phố 1", "Xóm Pác Bó"}
    # A village's activity in the Week counts for its commune; one outside the Week does not.
    await submit_activity(app, tree.group, date(2026, 10, 3), llw=True)
    await submit_activity(app, tree.other_village, date(2026, 9, 1), llw=False)
    async with app.read_only() as reads:
        missing = await missing_units(
            reads, schedules.deadline("lifelong_learning_week"), Period.parse("2026")
        )
        assert [u.name for u in missing] == ["Xã Trường Hà"]


async def test_disadvantaged_communes_get_the_lower_targets(app: App, tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    (content / "targets.yaml").write_text(
        """
national:
  source: national
  years:
    2025:
      {learning_families: 70, learning_clans: 65, learning_communities: 65, membership: 25,
       fund_per_person_vnd: 32000}
provinces:
  "04":
    source: Cao Bằng plan
    years:
      2026: {membership: 30}
    disadvantaged:
      source: Cao Bằng, disadvantaged communes
      years:
        2025: {learning_families: 50, learning_clans: 45}
    disadvantaged_communes: ["01279"]
""",
        encoding="utf-8",
    )
    load_targets.cache_clear()
    app.settings.content_dir = str(content)
    tree = await seed_tree(app)
    c = await compiled(app, tree.province)
    by_code = {r.unit.code: r.targets for r in c.rows}
    assert by_code["01273"].get("learning_families") == 70 and not by_code["01273"].disadvantaged
    assert by_code["01279"].get("learning_families") == 50 and by_code["01279"].disadvantaged
    assert by_code["01279"].get("learning_communities") == 65  # not lowered: the national one holds
    assert by_code["01273"].get("membership") == 30  # the province's own 2026 target
    other = await compiled(app, tree.other_commune)
    assert other.targets.get("learning_clans") == 45
    assert all(r.targets.disadvantaged for r in other.rows)  # its villages too
    load_targets.cache_clear()


def test_targets_hold_until_the_next_year_with_targets() -> None:
    book = parse_targets(
        {"national": {"years": {2025: {"learning_families": 70}, 2030: {"learning_families": 80}}}}
    )
    assert book.for_unit(2024).get("learning_families") == 70  # before the first entry: the earliest
    assert book.for_unit(2027).get("learning_families") == 70
    assert book.for_unit(2030).get("learning_families") == 80
    assert book.for_unit(2031).year == 2030
    defaults = load_targets(CONTENT).for_unit(2026)
    assert (
        defaults.get("learning_families"),
        defaults.get("learning_clans"),
        defaults.get("learning_communities"),
    ) == (70, 65, 65)
    assert defaults.get("membership") == 25 and defaults.get("fund_per_person_vnd") == 32000
    assert load_targets(CONTENT).for_unit(2030).get("learning_citizens") == 60


async def test_an_empty_tree_compiles(app: App) -> None:
    tree: Tree = await seed_tree(app)
    c = await compiled(app, tree.commune, Period.parse("2026"))
    assert c.total.reported == 0 and c.total.expected == 2
    assert c.total.rate("learning_families") is None
    assert c.deadline is not None and c.due == date(2026, 11, 30)
    assert {u.name for u in c.missing} == {"Thôn Nà Rụa", "Tổ dân phố 1"}
