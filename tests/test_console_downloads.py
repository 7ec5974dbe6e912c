"""Downloads of the staff console (issue 12, item 6): the raw latest submissions as CSV, and the
compiled files of any unit and period of the staff's area, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.periods import Period
from bot.domain.permissions import NotAllowed, load_grants
from bot.services.actor import Actor
from bot.services.reports import submissions_csv
from bot.services.reviews import approve
from bot.services.submissions import Draft, submit_report
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER, Unit
from tests.support import START, Tree, make_app, make_contact, seed_tree

VILLAGE = "village_report"
YEAR = Period.parse("2026")
AFTER_DEADLINE = datetime(2026, 12, 2, 8, 0, tzinfo=VN_TZ)  # the year report was due 30 November


@dataclass
class World:
    app: App
    clock: FixedClock
    tree: Tree


async def actor(app: App, ext: str) -> Actor:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", ext)
        assert contact is not None
        return Actor.of(contact, await load_grants(uow, contact.id))


async def file_report(world: World, ext: str, unit: Unit, values: dict[str, Any]) -> int:
    app = world.app
    who = await actor(app, ext)
    async with app.uow() as uow:
        draft = Draft(app.forms[VILLAGE], f"{unit.id}:{YEAR.key}", unit.id, YEAR.key, values)
        saved = await submit_report(
            uow, who, draft, now=app.clock.now(), channel="test", content_dir=app.content_dir
        )
        await uow.commit()
    return saved.submission.id


async def build(app: App, clock: FixedClock) -> World:
    tree = await seed_tree(app)
    people = [
        ("co", COMMUNE_OFFICER, tree.commune, "Chị Lan"),
        ("ps", PROVINCE_STAFF, tree.province, "Anh Dũng"),
        ("vo1", VILLAGE_OFFICER, tree.village, "Ông Nông Văn Pác"),
        ("vo2", VILLAGE_OFFICER, tree.group, "=HYPERLINK(1)"),
        ("vo3", VILLAGE_OFFICER, tree.other_village, "Bà Hoàng Thị Mai"),
    ]
    for ext, role, unit, name in people:
        await make_contact(app, ext, role, unit)
        async with app.uow() as uow:
            contact = await uow.contacts.by_identity("test", ext)
            assert contact is not None
            contact.display_name = name
            await uow.commit()
    world = World(app, clock, tree)
    # Thôn Nà Rụa: on time, then corrected after the deadline (still on time: the first counts),
    # and the correction approved. Tổ dân phố 1: first filed after the deadline. Xóm Pác Bó, in
    # the other commune: on time.
    await file_report(world, "vo1", tree.village, {"households_total": 120, "notes": "Đủ số liệu"})
    await file_report(world, "vo3", tree.other_village, {"households_total": 75})
    clock.set(AFTER_DEADLINE)
    corrected = await file_report(
        world, "vo1", tree.village, {"households_total": 121, "fund_raised_vnd": 5_000_000}
    )
    await file_report(world, "vo2", tree.group, {"households_total": 90, "notes": "=1+2"})
    officer = await actor(app, "co")
    async with app.uow() as uow:
        await approve(uow, officer, corrected, now=app.clock.now())
        await uow.commit()
    return world


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    clock = FixedClock(START)
    app = make_app(db.url, clock)
    yield await build(app, clock)
    await app.db.dispose()


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with a byte-order mark, for Excel"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


async def csv_of(world: World, ext: str, unit: Unit) -> bytes:
    app = world.app
    who = await actor(app, ext)
    async with app.read_only() as reads:
        return await submissions_csv(
            reads, who, unit.id, YEAR, app.forms[VILLAGE], content_dir=app.content_dir
        )


# ---- the raw CSV, through the service ------------------------------------------------------------


async def test_the_raw_csv_has_one_line_per_reporting_village_with_its_latest_version(world: World) -> None:
    rows = read_csv(await csv_of(world, "co", world.tree.commune))
    assert [r["unit"] for r in rows] == ["Thôn Nà Rụa", "Tổ dân phố 1"]  # not the other commune's
    village, group = rows
    form = world.app.forms[VILLAGE]
    assert list(village)[:3] == ["province", "commune", "unit"]
    assert list(village)[-len(form.fields) :] == [f.key for f in form.fields]  # the form's order
    assert village["province"] == "Cao Bằng" and village["commune"] == "Phường Thục Phán"
    assert village["period"] == "2026" and village["unit_kind"] == "village"
    assert village["version"] == "2" and village["households_total"] == "121"
    assert village["fund_raised_vnd"] == "5000000"  # unformatted
    assert village["notes"] == ""  # the latest version's values only
    assert village["on_time"] == "1" and village["review"] == "approved"
    assert village["filed_by"] == "Ông Nông Văn Pác"
    assert village["filed_at"] == "2026-12-02T08:00:00+07:00"
    assert group["version"] == "1" and group["on_time"] == "0" and group["review"] == "waiting"
    # Text that a spreadsheet would run as a formula is written as text.
    assert group["notes"] == "'=1+2" and group["filed_by"] == "'=HYPERLINK(1)"
    assert group["lf_recognized"] == ""  # not asked: blank, not 0


async def test_the_province_csv_covers_every_commune(world: World) -> None:
    rows = read_csv(await csv_of(world, "ps", world.tree.province))
    assert [(r["commune"], r["unit"]) for r in rows] == [
        ("Phường Thục Phán", "Thôn Nà Rụa"),
        ("Phường Thục Phán", "Tổ dân phố 1"),
        ("Xã Trường Hà", "Xóm Pác Bó"),
    ]
    assert rows[2]["version"] == "1" and rows[2]["on_time"] == "1"


async def test_the_raw_csv_of_another_commune_or_a_village_is_refused(world: World) -> None:
    with pytest.raises(NotAllowed):
        await csv_of(world, "co", world.tree.other_commune)
    with pytest.raises(NotAllowed):
        await csv_of(world, "co", world.tree.village)  # a village's report is not a compilation
    with pytest.raises(NotAllowed):
        await csv_of(world, "vo1", world.tree.commune)


async def test_a_period_nobody_reported_gives_only_the_header(world: World) -> None:
    app = world.app
    who = await actor(app, "co")
    async with app.read_only() as reads:
        data = await submissions_csv(
            reads,
            who,
            world.tree.commune.id,
            Period.parse("2025"),
            app.forms[VILLAGE],
            content_dir=app.content_dir,
        )
    assert read_csv(data) == []
    assert data.decode("utf-8-sig").startswith("commune,unit,unit_code,")


def test_the_csv_escapes_only_text() -> None:
    from bot.reports.submissions_csv import _value

    assert _value(-3) == "-3" and _value(None) == "" and _value("+84 912") == "'+84 912"
