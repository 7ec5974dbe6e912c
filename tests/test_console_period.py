"""The console's period view (GET /console/period, bot/reports/overview.py), on both backends.

A commune with four villages for the year 2026 (due 30 November), seen on 3 December: Thôn Nà
Rụa reported on time and was approved, Tổ dân phố 1 reported late and was returned, Thôn Mới
reported on time and waits for review, Thôn Xa has not reported. Their learning-family rates
are 70%, 60%, 40% against a 70% target: reached, within 80% of it, below.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.i18n import translator
from bot.domain.parsing import fold
from bot.domain.periods import Period
from bot.domain.permissions import NotAllowed, load_grants
from bot.domain.schedules import load_schedules
from bot.reports.compiled import compile_unit
from bot.reports.overview import Overview, level, overview
from bot.services.actor import CONSOLE, Actor
from bot.services.reports import compile_country, may_compile_country
from bot.services.reviews import approve, return_report
from bot.services.units import add_village
from storage.db import Database
from storage.models import ADMIN, COMMUNE_OFFICER, PROVINCE, PROVINCE_STAFF, VILLAGE, VILLAGE_OFFICER, Unit
from storage.uow import UnitOfWork
from tests.console_support import console_client, csrf_of, log_in
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


# ---- the page --------------------------------------------------------------------------------


def rows_of(html: str) -> dict[str, str]:
    """The table's body rows by unit name: each row's HTML."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    out = {}
    for row in body.split("<tr ")[1:]:
        name = re.search(r'data-testid="unit-link">([^<]+)</a>', row)
        assert name is not None, row
        out[name.group(1)] = row
    return out


def cell(row: str, attr: str) -> str:
    """The `<td …>` opening tag of the row's cell with `attr` (e.g. 'data-rate="membership"')."""
    found = re.search(r"<td[^>]*" + re.escape(attr) + r"[^>]*>", row)
    assert found is not None, (attr, row)
    return found.group(0)


async def test_a_commune_officer_sees_every_village_with_its_state_and_colours(world: World) -> None:
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune-officer")
        page = await client.get("/console/period")
    assert page.status_code == 200, page.text
    html = page.text
    rows = rows_of(html)
    assert sorted(rows) == ["Thôn Mới", "Thôn Nà Rụa", "Thôn Xa", "Tổ dân phố 1"]
    assert "Xóm Pác Bó" not in html  # the other commune's village
    expected = {
        "Thôn Nà Rụa": ("on_time", "ok", "approved", "ok", "ok"),
        "Tổ dân phố 1": ("late", "warn", "returned", "bad", "warn"),
        "Thôn Mới": ("on_time", "ok", "waiting", "warn", "bad"),
        "Thôn Xa": ("missing", "bad", "", "", ""),
    }
    for name, (state, state_class, review, review_class, rate_class) in expected.items():
        row = rows[name]
        state_td = cell(row, "data-state=")
        assert f'data-state="{state}"' in state_td and f'class="{state_class}"' in state_td, (name, state_td)
        review_td = cell(row, "data-review=")
        assert f'data-review="{review}"' in review_td and f'class="{review_class}"' in review_td, name
        families = cell(row, 'data-rate="learning_families"')
        assert f'class="num {rate_class}"' in families, (name, families)
    # The links: each village to its own page; the filter tags the rows.
    assert f'href="/console/village/{world.far.id}"' in rows["Thôn Xa"]
    assert 'data-states="late returned"' in rows["Tổ dân phố 1"]
    assert 'data-states="missing"' in rows["Thôn Xa"]
    # The words: Vietnamese first; the DHIS2 numbers and the legend.
    assert "Đúng hạn" in rows["Thôn Nà Rụa"] and "Trễ hạn" in rows["Tổ dân phố 1"]
    summary = html.split('data-testid="period-summary"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'data-testid="expected">4<', summary)
    assert re.search(r'data-testid="reported">3 <small>\(75%\)', summary)
    assert re.search(r'data-testid="on-time">2 <small>\(50%\)', summary)
    assert 'data-testid="legend"' in html and "80%" in html.split('data-testid="legend"', 1)[1][:600]
    # The chart: one bar group per village, the target line.
    chart = html.split('data-chart="learning_families"', 1)[1].split("</figure>", 1)[0]
    assert chart.count("<g data-unit=") == 4 and 'class="target"' in chart
    assert chart.count('class="bar-ok"') == 1 and chart.count('class="bar-bad"') == 1


async def test_the_default_period_is_the_chats_and_the_select_offers_the_others(world: World) -> None:
    today = world.clock.now().date()
    schedules = load_schedules(world.app.content_dir)
    default, _ = schedules.open_period("village_report", today)
    assert default == YEAR  # on 3 December: the year 2026, closing
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune-officer")
        html = (await client.get("/console/period")).text
        options = re.findall(
            r'<option value="([^"]+)"( selected)?>',
            html.split('id="period-select"', 1)[1].split("</select>", 1)[0],
        )
        assert [key for key, _ in options] == [
            p.key for p in schedules.recent_periods("village_report", today)
        ]
        assert options[0] == (default.key, " selected")
        # Another period: the first half of 2026, where nothing was filed.
        other = await client.get("/console/period", params={"period": "2026-H1"})
        assert other.status_code == 200
        assert "6 tháng đầu năm 2026" in other.text
        assert set(re.findall(r'data-state="(\w+)"', other.text)) == {"missing"}
        assert (await client.get("/console/period", params={"period": "soon"})).status_code == 400
        # An older period typed in the address is offered in the select too, chosen.
        older = (await client.get("/console/period", params={"period": "2023"})).text
        assert '<option value="2023" selected>' in older and "năm 2023" in older


async def test_province_staff_drill_down_from_the_province_to_a_commune(world: World) -> None:
    tree = world.tree
    async with console_client(world.app) as client:
        await log_in(client, world.app, "province-staff")
        page = await client.get("/console/period")
        assert page.status_code == 200
        rows = rows_of(page.text)
        assert sorted(rows) == ["Phường Thục Phán", "Xã Trường Hà"]
        commune = rows["Phường Thục Phán"]
        link = f'href="/console/period?unit={tree.commune.id}&amp;period=2026"'
        assert link in commune
        numbers = re.findall(r'<td class="num[^"]*" data-value="([^"]+)">', commune)
        # expected, reported, on time, late, missing, completeness, timeliness, approved, waiting, returned
        assert numbers[:10] == ["4", "3", "2", "1", "1", "75.000", "50.000", "1", "1", "1"]
        assert 'data-states="late missing returned waiting"' in commune
        assert 'data-states="waiting"' in rows["Xã Trường Hà"]  # on time, not reviewed yet
        # The breadcrumbs start at the staff's own province.
        down = await client.get(f"/console/period?unit={tree.commune.id}&period=2026")
        assert down.status_code == 200
        crumbs = down.text.split('data-testid="breadcrumbs"', 1)[1].split("</nav>", 1)[0]
        assert f'href="/console/period?unit={tree.province.id}&amp;period=2026">Cao Bằng</a>' in crumbs
        assert "<strong>Phường Thục Phán</strong>" in crumbs
        assert sorted(rows_of(down.text)) == ["Thôn Mới", "Thôn Nà Rụa", "Thôn Xa", "Tổ dân phố 1"]
        # A village id goes to the village's own page.
        village = await client.get(f"/console/period?unit={tree.village.id}")
        assert (
            village.status_code == 303
            and village.headers["location"] == f"/console/village/{tree.village.id}"
        )


async def test_the_commune_officers_breadcrumbs_never_go_above_the_commune(world: World) -> None:
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune-officer")
        html = (await client.get("/console/period")).text
    crumbs = html.split('data-testid="breadcrumbs"', 1)[1].split("</nav>", 1)[0]
    assert "Cao Bằng" not in crumbs and "<strong>Phường Thục Phán</strong>" in crumbs
    assert "Cao Bằng" not in html.split("</nav>", 2)[-1].split('data-testid="period-table"')[0]


async def test_units_outside_the_area_answer_404(world: World) -> None:
    tree = world.tree
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune-officer")
        for unit in (tree.other_commune, tree.other_village, tree.province):
            page = await client.get(f"/console/period?unit={unit.id}")
            assert page.status_code == 404, unit.name
            assert "Xóm Pác Bó" not in page.text and "Xã Trường Hà" not in page.text
        assert (await client.get("/console/period?unit=999999")).status_code == 404
        assert (await client.get(f"/console/period?unit={tree.commune.id}")).status_code == 200


async def test_without_a_console_role_or_session_there_is_no_period_view(world: World) -> None:
    async with console_client(world.app) as client:
        assert (await client.get("/console/period")).status_code == 401
        # Logged in as a commune officer who is then only a village officer: 403 at once.
        await log_in(client, world.app, "commune-officer")
        async with world.app.uow() as uow:
            contact = await uow.contacts.by_identity("test", "commune-officer")
            assert contact is not None
            for grant in await uow.contacts.roles(contact.id):
                grant.revoked_at = world.clock.now()
            await uow.contacts.grant(contact.id, VILLAGE_OFFICER, world.tree.village.id, world.clock.now())
            await uow.commit()
        assert (await client.get("/console/period")).status_code == 403
        assert (await client.get(f"/console/period?unit={world.tree.commune.id}")).status_code == 403


async def test_staff_over_every_province_see_the_country_first(world: World) -> None:
    app, tree = world.app, world.tree
    async with app.uow() as uow:
        other = await uow.units.add(
            Unit(
                kind=PROVINCE,
                name="Hà Giang",
                name_folded=fold("Hà Giang"),
                code="02",
                created_at=app.clock.now(),
            )
        )
        admin = await uow.contacts.by_identity("test", "admin")
        assert admin is not None
        await uow.contacts.grant(admin.id, ADMIN, other.id, app.clock.now())
        await uow.commit()
    async with console_client(app) as client:
        await log_in(client, app, "admin")
        page = await client.get("/console/period")
        assert page.status_code == 200
        assert sorted(rows_of(page.text)) == ["Cao Bằng", "Hà Giang"]
        assert (
            "<strong>Toàn quốc</strong>"
            in page.text.split('data-testid="breadcrumbs"', 1)[1].split("</nav>")[0]
        )
        down = await client.get(f"/console/period?unit={tree.province.id}")
        crumbs = down.text.split('data-testid="breadcrumbs"', 1)[1].split("</nav>")[0]
        assert 'href="/console/period?period=2026">Toàn quốc</a>' in crumbs
        assert sorted(rows_of(down.text)) == ["Phường Thục Phán", "Xã Trường Hà"]
    async with console_client(app) as client:  # staff of one province of the two: their province
        await log_in(client, app, "province-staff")
        page = await client.get("/console/period")
        assert sorted(rows_of(page.text)) == ["Phường Thục Phán", "Xã Trường Hà"]
        assert "Toàn quốc" not in page.text.split('data-testid="breadcrumbs"', 1)[1].split("</nav>")[0]
        assert (await client.get(f"/console/period?unit={other.id}")).status_code == 404


async def test_the_console_opens_on_the_period_view(world: World) -> None:
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune-officer")
        home = await client.get("/console/")
        assert home.status_code == 303 and home.headers["location"] == "/console/period"
        page = await client.get("/console/period")
        assert 'href="/console/period" aria-current="page"' in page.text  # the header's link


async def test_the_state_filter_and_the_english_page(world: World) -> None:
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune-officer")
        page = await client.get("/console/period", params={"show": "late"})
        rows = rows_of(page.text)
        shown = [name for name, row in rows.items() if 'class="hidden"' not in row.split(">", 1)[0]]
        assert shown == ["Tổ dân phố 1"]
        assert '<option value="late" selected>' in page.text
        switched = await client.post(
            "/console/lang", data={"locale": "en", "back": "/console/period", "csrf": csrf_of(page.text)}
        )
        assert switched.status_code == 303
        english = (await client.get("/console/period")).text
    rows = rows_of(english)
    assert (
        "On time" in rows["Thôn Nà Rụa"] and "Late" in rows["Tổ dân phố 1"] and "Missing" in rows["Thôn Xa"]
    )
    assert "Year 2026" in english and "Completeness" in english and "target reached" in english
