"""/baocaotonghop (/summary): a compiled report on demand, only inside the officer's area."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from openpyxl import load_workbook

from bot.domain.app import App
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.domain.permissions import NotAllowed
from bot.services.actor import Actor
from bot.services.reports import compile_report
from storage.db import Database
from storage.models import COMMUNE, COMMUNE_OFFICER, PROVINCE, PROVINCE_STAFF, VILLAGE_OFFICER, Unit
from tests.support import Chat, Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import grants_of, submit, vn

H1 = Period.parse("2026-H1")


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url)
    try:
        yield app
    finally:
        await app.db.dispose()


async def fill(app: App) -> Tree:
    """H1 2026 reports, and the year reports of 2025 their recognised rates come from."""
    tree = await seed_tree(app)
    await submit(app, tree.village, "2025", vn(2025, 11, 20), households_total=100, lf_recognized=70)
    await submit(app, tree.other_village, "2025", vn(2025, 11, 20), households_total=80, lf_recognized=20)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100, lf_registered=80)
    await submit(app, tree.other_village, "2026-H1", vn(2026, 6, 10), households_total=80, lf_registered=60)
    return tree


async def test_a_commune_officer_gets_the_commune_report(app: App) -> None:
    tree = await fill(app)
    t = translator("vi")
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    chat = Chat(app, "commune-officer")
    await chat.say("/baocaotonghop")  # one commune: straight to the period
    assert "Phường Thục Phán" in chat.text and "2026-H1" in chat.option_ids
    await chat.press("2026-H1")
    report = chat.replies[0]
    assert "Báo cáo sơ kết 6 tháng" in report.text
    assert "Đã báo cáo: 1/2 thôn, tổ dân phố (50%)" in report.text
    # Titles are recognised at year end: H1 shows last year's rate, and this year's registrations.
    assert f"Gia đình học tập — đã công nhận, {Period.parse('2025').label(t)}: 70%" in report.text
    assert f"Đăng ký danh hiệu — {H1.label(t)}:" in report.text
    assert "• Hộ đăng ký Gia đình học tập: 80%" in report.text
    assert "Chưa báo cáo: Tổ dân phố 1." in report.text
    kinds = {a.filename.rsplit(".", 1)[1]: a for a in report.attachments}
    assert set(kinds) == {"xlsx", "docx", "png"}
    assert kinds["xlsx"].filename == "bao-cao-phuong-thuc-phan-2026-H1.xlsx"
    assert load_workbook(io.BytesIO(kinds["xlsx"].data)).active is not None
    assert kinds["png"].data.startswith(b"\x89PNG")
    assert "Xóm Pác Bó" not in report.text
    assert "cmd:baocaotonghop" in chat.option_ids  # the menu follows, with the report in it


async def test_english_and_a_typed_period(app: App) -> None:
    tree = await fill(app)
    await make_contact(app, "officer-en", COMMUNE_OFFICER, tree.commune, locale="en")
    chat = Chat(app, "officer-en")
    await chat.say("/summary")
    await chat.say("2026-h1")
    assert "Reported: 1 of 2 villages and residential groups (50%)" in chat.replies[0].text
    assert chat.replies[0].attachments


@pytest.mark.parametrize(
    ("locale", "typed", "expect"),
    [
        ("vi", "6 thang dau nam 2026", "Phường Thục Phán — 6 tháng đầu năm 2026"),  # without diacritics
        ("vi", "năm 2025", "Phường Thục Phán — năm 2025"),
        ("en", "First half of 2026", "Phường Thục Phán — First half of 2026"),
    ],
)
async def test_a_period_typed_in_words(app: App, locale: str, typed: str, expect: str) -> None:
    """The question suggests periods in words ("6 tháng đầu năm 2025"), never as keys like
    2025-H1, and the words are understood."""
    tree = await fill(app)
    await make_contact(app, "officer", COMMUNE_OFFICER, tree.commune, locale=locale)
    chat = Chat(app, "officer")
    await chat.say("/baocaotonghop")
    assert "-H1" not in chat.text
    suggested = {"vi": "“6 tháng đầu năm 2025” hoặc “năm 2025”", "en": "“First half of 2025” or “Year 2025”"}
    assert suggested[locale] in chat.text
    await chat.say(typed)
    assert expect in chat.replies[0].text
    assert chat.replies[0].attachments


async def test_province_staff_pick_a_commune_by_name(app: App) -> None:
    tree = await fill(app)
    await make_contact(app, "province-staff", PROVINCE_STAFF, tree.province)
    chat = Chat(app, "province-staff")
    await chat.say("/baocaotonghop")
    assert f"unit:{tree.province.id}" in chat.option_ids
    await chat.say("truong ha")  # without diacritics
    assert "Xã Trường Hà" in chat.text
    await chat.press("2026-H1")
    assert "Xã Trường Hà" in chat.replies[0].text
    assert "Gia đình học tập — đã công nhận, năm 2025: 25%" in chat.replies[0].text


async def test_a_commune_officer_cannot_get_another_communes_report(app: App) -> None:
    tree = await fill(app)
    # An officer of two communes of one province, so that the unit question is asked.
    now = app.clock.now()
    async with app.uow() as uow:
        third = await uow.units.add(
            Unit(
                kind=COMMUNE,
                name="Xã Hòa An",
                name_folded="xa hoa an",
                code="01300",
                parent_id=tree.province.id,
                created_at=now,
            )
        )
        elsewhere = await uow.units.add(
            Unit(kind=PROVINCE, name="Lạng Sơn", name_folded="lang son", code="20", created_at=now)
        )
        await uow.commit()
    await make_contact(app, "officer", COMMUNE_OFFICER, tree.commune)
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", "officer")
        assert contact is not None
        await uow.contacts.grant(contact.id, COMMUNE_OFFICER, third.id, now)
        await uow.commit()
    chat = Chat(app, "officer")
    await chat.say("/baocaotonghop")
    assert set(chat.option_ids) >= {f"unit:{tree.commune.id}", f"unit:{third.id}"}
    assert f"unit:{tree.other_commune.id}" not in chat.option_ids
    for forged in (tree.other_commune.id, tree.province.id):  # buttons that were never offered
        await chat.press(f"unit:{forged}")
        assert "Lập báo cáo tổng hợp cho đơn vị nào?" in chat.text and not any(
            r.attachments for r in chat.replies
        )
    await chat.say("Trường Hà")  # typed
    assert "Xã Trường Hà không thuộc địa bàn của anh/chị" in chat.text
    assert not any(r.attachments for r in chat.replies)
    await chat.say("Hòa An")  # their other commune
    await chat.press("2026-H1")
    assert "Xã Hòa An" in chat.replies[0].text and chat.replies[0].attachments
    # The service layer refuses whatever the dialogue does.
    grants = await grants_of(app, "officer")
    async with app.uow() as uow:
        officer = await uow.contacts.by_identity("test", "officer")
    assert officer is not None
    actor = Actor.of(officer, grants)
    async with app.read_only() as reads:
        for unit_id in (tree.other_commune.id, tree.province.id, elsewhere.id, tree.village.id, 999_999):
            with pytest.raises(NotAllowed):
                await compile_report(
                    reads,
                    actor,
                    unit_id,
                    H1,
                    content_dir=app.content_dir,
                    forms=app.forms,
                    now=app.clock.now(),
                )
        ok = await compile_report(
            reads,
            actor,
            tree.commune.id,
            H1,
            content_dir=app.content_dir,
            forms=app.forms,
            now=app.clock.now(),
        )
        assert ok.unit is not None and ok.unit.id == tree.commune.id


async def test_village_officers_and_members_are_told_it_is_not_for_them(app: App) -> None:
    tree = await fill(app)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    chat = Chat(app, "village-officer")
    await chat.say("/baocaotonghop")
    assert "dành cho cán bộ Hội Khuyến học xã, phường và tỉnh" in chat.text
    assert not any(r.attachments for r in chat.replies)
    assert "cmd:baocaotonghop" not in chat.option_ids
