"""The jobs that reach officers without being asked: the half-year report after the deadline and
the Monday digest. Fixed clock, both backends."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import date

import pytest
from openpyxl import load_workbook

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.messaging.digest import send_weekly_digest
from bot.messaging.reminders import send_reminders
from bot.messaging.report_delivery import send_period_reports
from bot.services.actor import CONSOLE
from bot.services.profiles import set_profile
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER
from tests.support import make_app, make_contact, seed_tree
from tests.test_reports_helpers import files_of, outbox, outbox_to, set_locale, submit, submit_activity, vn


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url, FixedClock(vn(2026, 6, 12, 8)))
    try:
        yield app
    finally:
        await app.db.dispose()


async def test_after_the_half_year_deadline_the_commune_officer_receives_the_report(app: App) -> None:
    """The issue's 'done when': villages that had not reported were reminded beforehand, and after
    the deadline the commune officer gets, without asking, a summary, an Excel file and a chart."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    tree = await seed_tree(app)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "group-officer", VILLAGE_OFFICER, tree.group)
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "province-staff", PROVINCE_STAFF, tree.province)
    await set_locale(app, "province-staff", "en")
    # Last year's year reports: the H1 report's recognised rates are theirs.
    await submit(app, tree.village, "2025", vn(2025, 11, 20), households_total=100, lf_recognized=70)
    await submit(app, tree.group, "2025", vn(2025, 11, 20), households_total=50, lf_recognized=20)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100)

    await send_reminders(app)  # 12/06
    (reminder,) = await outbox_to(app, "group-officer")
    assert reminder["text"].startswith("⏰")
    assert await outbox_to(app, "village-officer") == []
    # The commune officer is reminded of the commune's own report (due with the villages').
    (own,) = await outbox_to(app, "commune-officer")
    assert own["text"].startswith("⏰") and "/baocaoxa" in own["text"]
    await submit(app, tree.group, "2026-H1", vn(2026, 6, 13), households_total=50)

    clock.set(vn(2026, 6, 15, 8, 30))  # the due day: nothing compiled yet
    assert await send_period_reports(app) == 0
    await make_contact(app, "second-commune-officer", COMMUNE_OFFICER, tree.commune)
    async with app.uow() as uow:  # the commune's own signer and symbol (/hoso)
        await set_profile(
            uow,
            CONSOLE,
            tree.commune,
            signer_name="Nông Văn Hải",
            signer_title="Phó Chủ tịch",
            number_symbol="BC-HKHP",
            now=clock.now(),
        )
        await uow.commit()
    clock.set(vn(2026, 6, 16, 8, 30))
    assert await send_period_reports(app) == 3
    _, report = await outbox_to(app, "commune-officer")  # after the reminder above
    assert "Báo cáo sơ kết 6 tháng" in report["text"]
    assert "Phường Thục Phán" in report["text"]
    assert "Gia đình học tập — đã công nhận, năm 2025: 60%" in report["text"]
    files = await files_of(app, report)
    assert set(files) == {"xlsx", "docx", "png"}
    assert files["png"].startswith(b"\x89PNG")
    ws = load_workbook(io.BytesIO(files["xlsx"])).active
    assert ws is not None
    cells = [v for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)]
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in cells and "HỘI KHUYẾN HỌC PHƯỜNG THỤC PHÁN" in cells
    assert {"Nông Văn Hải", "PHÓ CHỦ TỊCH", "Số: …/BC-HKHP"} <= set(cells)
    (english,) = await outbox_to(app, "province-staff")
    assert "Half-year report" in english["text"]
    assert "Learning families — recognised, Year 2025: 60%" in english["text"]
    # Daily re-runs (and a late joiner within two weeks) never send it twice.
    clock.set(vn(2026, 6, 17, 8, 30))
    assert await send_period_reports(app) == 0
    await make_contact(app, "new-commune-officer", COMMUNE_OFFICER, tree.commune)
    assert await send_period_reports(app) == 1
    # A unit's files are made and stored once, whoever receives them.
    first, second = await outbox_to(app, "commune-officer"), await outbox_to(app, "second-commune-officer")
    shared = [a["file_id"] for a in second[0]["attachments"]]
    assert [a["file_id"] for a in first[-1]["attachments"]] == shared


async def test_the_monday_digest(app: App) -> None:
    clock = app.clock
    assert isinstance(clock, FixedClock)
    tree = await seed_tree(app)
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "province-staff", PROVINCE_STAFF, tree.province)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    # Monday 23/11/2026 07:00; last week is 16–22/11; the open period is the year 2026 (due 30/11).
    await submit(
        app,
        tree.village,
        "2026",
        vn(2026, 11, 18),
        households_total=100,
        lf_recognized=80,
        village_lc_status="recognized",
    )
    await submit(
        app,
        tree.village,
        "2026",
        vn(2026, 11, 19),
        households_total=100,
        lf_recognized=82,
        village_lc_status="recognized",
    )  # a correction
    await submit(app, tree.other_village, "2026", vn(2026, 11, 10), households_total=60, lf_recognized=30)
    await submit_activity(app, tree.group, date(2026, 11, 20), participants=35)
    await submit_activity(app, tree.village, date(2026, 11, 23), participants=500)  # this week: not counted
    clock.set(vn(2026, 11, 23, 7))
    assert await send_weekly_digest(app) == 2
    (commune,) = [p["text"] for p in await outbox_to(app, "commune-officer")]
    assert commune.startswith("📰 Bản tin tuần 16/11/2026–22/11/2026 — Phường Thục Phán")
    assert "Số báo cáo nhận được: 1 (Thôn Nà Rụa); báo cáo sửa lại: 1" in commune
    assert "Tổ dân phố 1" in commune and "1/2" in commune  # still missing for the year
    assert "1 hoạt động, 35 lượt người" in commune
    (province,) = [p["text"] for p in await outbox_to(app, "province-staff")]
    assert "Tiến độ thực hiện chỉ tiêu" in province and "1. Phường Thục Phán" in province
    assert await outbox_to(app, "village-officer") == []
    assert await send_weekly_digest(app) == 0
    assert len(await outbox(app)) == 2
