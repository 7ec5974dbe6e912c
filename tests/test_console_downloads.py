"""Downloads of the staff console (issue 12, item 6): the raw latest submissions as CSV, and the
compiled files of any unit and period of the staff's area, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from html import unescape
from typing import Any

import openpyxl
import pytest
from docx import Document
from sqlalchemy import update

from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.periods import Period
from bot.domain.permissions import NotAllowed, load_grants
from bot.reports.chart import CHART_RATES
from bot.services.actor import Actor
from bot.services.reports import submissions_csv
from bot.services.reviews import approve
from bot.services.submissions import Draft, submit_report
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER, RoleGrant, Unit
from tests.console_support import console_client, log_in
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


# ---- the page and its files -------------------------------------------------------------------------


def links_of(html: str) -> dict[str, str]:
    """data-testid → href of the page's download links."""
    return {
        tid: unescape(href)
        for href, tid in re.findall(r'<a href="([^"]+)" data-testid="(download-[^"]+)"', html)
    }


def sheet_texts(data: bytes) -> set[str]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return {
        str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None
    }


async def test_the_commune_officer_downloads_every_file_of_the_open_period(world: World) -> None:
    app, tree = world.app, world.tree
    async with console_client(app) as client:
        await log_in(client, app, "co")
        page = await client.get("/console/downloads")
        assert page.status_code == 200
        assert 'href="/console/downloads"' in page.text  # the header's link
        links = links_of(page.text)
        # The chat's default period (the year 2026 is still open on 2 December), the commune.
        assert all(f"unit={tree.commune.id}&period=2026&" in href for href in links.values())
        assert set(links) == {
            "download-xlsx",
            "download-docx",
            *(f"download-chart-{key}" for key in CHART_RATES),
            "download-csv-village_report",
            "download-csv-commune_report",
        }
        xlsx = await client.get(links["download-xlsx"])
        assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith("application/vnd.openxml")
        assert 'filename="bao-cao-phuong-thuc-phan-2026.xlsx"' in xlsx.headers["content-disposition"]
        texts = sheet_texts(xlsx.content)
        assert {"Thôn Nà Rụa", "Tổ dân phố 1"} <= texts and "Xóm Pác Bó" not in texts
        docx = await client.get(links["download-docx"])
        text = "\n".join(
            cell.text
            for table in Document(io.BytesIO(docx.content)).tables
            for row in table.rows
            for cell in row.cells
        )
        assert "Thôn Nà Rụa" in text and "Xóm Pác Bó" not in text
        for key in CHART_RATES:
            png = await client.get(links[f"download-chart-{key}"])
            assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
            assert png.headers["content-type"] == "image/png"
        raw = await client.get(links["download-csv-village_report"])
        assert raw.headers["content-type"].startswith("text/csv")
        rows = read_csv(raw.content)
        assert [(r["unit"], r["version"]) for r in rows] == [("Thôn Nà Rụa", "2"), ("Tổ dân phố 1", "1")]
        # Another period, chosen in the select.
        older = await client.get("/console/downloads", params={"period": "2026-H1"})
        assert all("period=2026-H1&" in href for href in links_of(older.text).values())


async def test_province_staff_choose_any_commune_of_the_province(world: World) -> None:
    app, tree = world.app, world.tree
    async with console_client(app) as client:
        await log_in(client, app, "ps")
        page = await client.get("/console/downloads")
        for unit in (tree.province, tree.commune, tree.other_commune):
            assert f'<option value="{unit.id}"' in page.text
        other = await client.get("/console/downloads", params={"unit": tree.other_commune.id})
        rows = read_csv((await client.get(links_of(other.text)["download-csv-village_report"])).content)
        assert [r["unit"] for r in rows] == ["Xóm Pác Bó"]
        whole = await client.get(links_of(page.text)["download-xlsx"])
        assert {"Phường Thục Phán", "Xã Trường Hà"} <= sheet_texts(whole.content)


async def test_no_file_outside_the_area_and_none_for_a_village_officer(world: World) -> None:
    app, tree = world.app, world.tree
    async with console_client(app) as client:
        await log_in(client, app, "co")
        for unit_id in (tree.other_commune.id, tree.province.id, tree.village.id, 999_999):
            assert (await client.get("/console/downloads", params={"unit": unit_id})).status_code == 404
            for kind, extra in [
                ("xlsx", {}),
                ("docx", {}),
                ("chart", {"chart": CHART_RATES[0]}),
                ("csv", {}),
            ]:
                answer = await client.get(
                    "/console/downloads/file",
                    params={"unit": unit_id, "period": "2026", "kind": kind, **extra},
                )
                assert answer.status_code == 404, (unit_id, kind)
        mine = {"unit": tree.commune.id, "period": "2026"}
        for bad in (
            {"kind": "pdf"},
            {"kind": "chart", "chart": "nope"},
            {"kind": "csv", "form": "activity_report"},
        ):
            assert (await client.get("/console/downloads/file", params={**mine, **bad})).status_code == 404
        assert (
            await client.get("/console/downloads/file", params={**mine, "kind": "xlsx", "period": "x"})
        ).status_code == 400
        # The commune role taken away, a village officer's left: the same cookie gets nothing.
        async with app.uow() as uow:
            officer = await uow.contacts.by_identity("test", "co")
            assert officer is not None
            await uow.session.execute(
                update(RoleGrant).where(RoleGrant.contact_id == officer.id).values(revoked_at=app.clock.now())
            )
            await uow.contacts.grant(officer.id, VILLAGE_OFFICER, tree.village.id, app.clock.now())
            await uow.commit()
        assert (await client.get("/console/downloads")).status_code == 403
        answer = await client.get("/console/downloads/file", params={**mine, "kind": "csv"})
        assert answer.status_code == 403
    async with console_client(app) as client:  # no session at all
        assert (
            await client.get("/console/downloads/file", params={**mine, "kind": "csv"})
        ).status_code == 401
