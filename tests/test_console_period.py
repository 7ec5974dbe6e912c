"""The console's period view (GET /console/period, bot/reports/overview.py), on both backends.

A commune with four villages for the year 2026 (due 30 November), seen on 3 December: Thôn Nà
Rụa reported on time and was approved, Tổ dân phố 1 reported late and was returned, Thôn Mới
reported on time and waits for review, Thôn Xa has not reported. Their learning-family rates
are 70%, 60%, 40% against a 70% target: reached, within 80% of it, below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.i18n import translator
from bot.domain.parsing import fold
from bot.domain.periods import Period
from bot.domain.permissions import NotAllowed, load_grants
from bot.reports.compiled import compile_unit
from bot.reports.overview import Overview, level, overview
from bot.services.actor import CONSOLE, Actor
from bot.services.reports import compile_country, may_compile_country
from bot.services.reviews import approve, return_report
from bot.services.units import add_village
from storage.db import Database
from storage.models import ADMIN, COMMUNE_OFFICER, PROVINCE, PROVINCE_STAFF, VILLAGE, VILLAGE_OFFICER, Unit
from storage.uow import UnitOfWork
from tests.support import Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import submit, vn

YEAR = Period.parse("2026")


@dataclass
class World:
    app: App
    clock: FixedClock
    tree: Tree
    new: Unit  # Thôn Mới: on time, waiting
    far: Unit  # Thôn Xa: missing


async def actor(uow: UnitOfWork, external_id: str) -> Actor:
    contact = await uow.contacts.by_identity("test", external_id)
    assert contact is not None
    return Actor.of(contact, await load_grants(uow, contact.id))


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    clock = FixedClock(vn(2026, 11, 25, 9))
    app = make_app(db.url, clock)
    tree = await seed_tree(app)
    async with app.uow() as uow:
        commune = await uow.units.get(tree.commune.id)
        assert commune is not None
        new = await add_village(uow, CONSOLE, commune, "Thôn Mới", VILLAGE, clock.now())
        far = await add_village(uow, CONSOLE, commune, "Thôn Xa", VILLAGE, clock.now())
        await uow.commit()
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "other-commune-officer", COMMUNE_OFFICER, tree.other_commune)
    await make_contact(app, "province-staff", PROVINCE_STAFF, tree.province)
    await make_contact(app, "admin", ADMIN, tree.province)
    on_time = await submit(app, tree.village, "2026", vn(2026, 11, 25, 9), lf_recognized=70)
    await submit(app, new, "2026", vn(2026, 11, 30, 20), lf_recognized=40)
    late = await submit(app, tree.group, "2026", vn(2026, 12, 2, 8), lf_recognized=60)
    await submit(app, tree.other_village, "2026", vn(2026, 11, 20, 9))
    clock.set(vn(2026, 12, 3, 10))
    async with app.uow() as uow:
        officer = await actor(uow, "commune-officer")
        await approve(uow, officer, on_time.id, now=clock.now())
        await return_report(
            uow, officer, late.id, "Số hộ gia đình chưa khớp", now=clock.now(), forms=app.forms
        )
        await uow.commit()
    try:
        yield World(app, clock, tree, new, far)
    finally:
        await app.db.dispose()


async def commune_overview(w: World, locale: str = "vi") -> Overview:
    async with w.app.read_only() as reads:
        c = await compile_unit(
            reads, w.tree.commune, YEAR, content_dir=w.app.content_dir, forms=w.app.forms, now=w.clock.now()
        )
    return overview(c, translator(locale), w.clock.now())


def test_levels_follow_the_legend() -> None:
    assert level(None) == ""
    assert level(100.0) == "ok"
    assert level(130.0) == "ok"
    assert level(99.9) == "warn"
    assert level(80.0) == "warn"
    assert level(79.9) == "bad"
    assert level(0.0) == "bad"


async def test_each_village_has_its_state_review_and_coloured_rates(world: World) -> None:
    view = await commune_overview(world)
    by_name = {line.unit.name: line for line in view.lines}
    assert sorted(by_name) == ["Thôn Mới", "Thôn Nà Rụa", "Thôn Xa", "Tổ dân phố 1"]
    assert view.leaf and view.overdue
    states = {name: (line.state, line.review) for name, line in by_name.items()}
    assert states == {
        "Thôn Nà Rụa": ("on_time", "approved"),
        "Tổ dân phố 1": ("late", "returned"),
        "Thôn Mới": ("on_time", "waiting"),
        "Thôn Xa": ("missing", ""),
    }
    assert by_name["Thôn Xa"].tags == {"missing"}
    assert by_name["Tổ dân phố 1"].tags == {"late", "returned"}
    assert by_name["Thôn Mới"].tags == {"waiting"}
    families = {
        name: next(c for c in line.rates if c.key == "learning_families") for name, line in by_name.items()
    }
    assert families["Thôn Nà Rụa"].value == pytest.approx(70.0)
    assert families["Thôn Nà Rụa"].target == 70.0
    assert (families["Thôn Nà Rụa"].level, families["Tổ dân phố 1"].level, families["Thôn Mới"].level) == (
        "ok",
        "warn",
        "bad",
    )
    assert families["Thôn Xa"].value is None and families["Thôn Xa"].level == ""
    # DHIS2: expected 4, actual 3 (75%), on time 2 (50%); one late, one missing.
    f = view.total.figures
    assert (f.expected, f.reported, f.on_time) == (4, 3, 2)
    assert (f.completeness, f.timeliness) == (75.0, 50.0)
    assert (view.total.late, view.total.missing) == (1, 1)
    assert (f.approved, f.waiting, f.returned) == (1, 1, 1)


async def test_before_the_due_date_an_unreported_village_is_not_yet_missing(world: World) -> None:
    world.clock.set(vn(2026, 11, 28, 9))
    view = await commune_overview(world)
    assert not view.overdue
    by_name = {line.unit.name: line for line in view.lines}
    assert by_name["Thôn Xa"].state == "not_due"


async def test_the_chart_has_one_bar_per_village_and_the_target_line_at_100(world: World) -> None:
    view = await commune_overview(world)
    chart = next(ch for ch in view.charts if ch.key == "learning_families")
    assert [b.unit.name for b in chart.bars] == [line.unit.name for line in view.lines]
    widths = {b.unit.name: b.width for b in chart.bars}
    assert widths["Thôn Xa"] == 0.0
    # 70% of a 70% target ends exactly on the target line; 40% at 4/7 of the way there.
    assert chart.label_width + widths["Thôn Nà Rụa"] == pytest.approx(chart.target_x)
    assert widths["Thôn Mới"] == pytest.approx(widths["Thôn Nà Rụa"] * 4 / 7)
    assert [b.level for b in chart.bars if b.unit.name != "Thôn Xa"] == ["bad", "ok", "warn"]


async def test_the_country_is_for_staff_whose_area_covers_every_province(world: World) -> None:
    app = world.app
    async with app.uow() as uow:
        staff = await actor(uow, "province-staff")
        admin = await actor(uow, "admin")
    async with app.read_only() as reads:
        # The test tree has one province: staff on it hold the whole country.
        assert await may_compile_country(reads, staff, world.clock.now().date())
    async with app.uow() as uow:  # a second province, where nobody holds a role
        await uow.units.add(
            Unit(
                kind=PROVINCE,
                name="Hà Giang",
                name_folded=fold("Hà Giang"),
                code="02",
                created_at=app.clock.now(),
            )
        )
        await uow.commit()
    async with app.read_only() as reads:
        assert not await may_compile_country(reads, staff, world.clock.now().date())
        with pytest.raises(NotAllowed):
            await compile_country(
                reads, admin, YEAR, content_dir=app.content_dir, forms=app.forms, now=world.clock.now()
            )
