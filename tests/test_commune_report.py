"""The commune's own report (content/forms/commune_report.yaml, /baocaoxa): its form and rules,
who may file it, and its figures in the compiled commune, province and national reports — the
chat summary and the .xlsx opened with openpyxl — checked against hand computation, on both
backends. The dialogue itself: tests/dialogues/commune_report*.yaml."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.domain.app import App
from bot.domain.forms.loader import load_forms
from bot.domain.forms.model import Form
from bot.domain.forms.rules import check_rules
from bot.domain.i18n import translator
from bot.domain.parsing import fold
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed, load_grants
from bot.reports.aggregate import Compiled
from bot.reports.commune_figures import LEARNING_UNITS
from bot.reports.compiled import compile_unit, render, summary_text
from bot.services.actor import Actor
from bot.services.reviews import PeriodLocked, approve, reports_to_review, return_report
from bot.services.submissions import Draft, submit_report
from storage.db import Database
from storage.models import COMMUNE, COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER, Unit
from tests.sheet_tables import table_with, value
from tests.support import CONTENT, Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import (
    COMMUNE_VALUES,
    commune_values,
    outbox_to,
    submit,
    submit_commune_report,
    vn,
)

H1 = Period.parse("2026-H1")
FIELDS = [
    "units_total",
    "units_registered",
    "units_recognized",
    "branches_total",
    "branch_members",
    "fund_raised_vnd",
    "fund_disbursed_vnd",
    "fund_balance_vnd",
    "commune_lc_rating",
    "clc_classes",
    "clc_learners",
    "trained_officers",
    "trained_members",
    "awards_collective",
    "awards_individual",
    "notes",
]


# --- the form ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def form() -> Form:
    return load_forms(CONTENT / "forms")["commune_report"]


def violated(form: Form, values: dict[str, object], prev: dict[str, object] | None = None) -> set[str]:
    """The rules broken, with `prev` as every earlier report (prev, opening and last year alike)."""
    found = check_rules(
        form,
        values,
        prev or {},
        {},
        answered=form.field_keys,
        focus=None,
        locale="vi",
        opening=prev or {},
        last_year=prev or {},
    )
    return {v.rule.id for v in found}


def test_the_form_is_filed_by_communes_for_the_half_year_and_the_year(form: Form) -> None:
    assert list(form.field_keys) == FIELDS
    assert form.unit_kinds == ("commune",)
    assert form.period_kinds == ("half_year", "year")
    assert form.record == "per_period"
    # Stocks carry over; flows are asked each time; the recognition (units recognised, the
    # commune's rating) is asked in the year report only and shown, carried, at H1 (DOMAIN
    # "Recognition cycle"), the rating offering last year's as the default.
    assert {f.key for f in form.fields if f.carry_over} == {
        "units_total",
        "branches_total",
        "branch_members",
        "commune_lc_rating",
    }
    assert {f.key: f.ask_in for f in form.fields if f.carried} == {
        "units_recognized": ("year",),
        "commune_lc_rating": ("year",),
    }
    assert {f.key for f in form.fields if f.optional} == {"notes"}
    # "Change an answer" goes by these parts; every field is in one of them.
    assert [s.key for s in form.sections] == [
        "learning_units",
        "branches",
        "fund",
        "community",
        "training_and_awards",
    ]
    assert sorted(k for s in form.sections for k in s.fields) == sorted(FIELDS)
    assert [c.value for c in form.field("commune_lc_rating").choices] == [
        "good",
        "fair",
        "average",
        "not_rated",
    ]
    for f in form.fields:
        assert f.label.vi and f.label.en and f.help and f.help.vi and f.help.en, f.key
        if f.type in ("integer", "money"):
            assert f.min == 0 and f.max, f.key
    for rule in form.rules:
        assert rule.message.vi and rule.message.en, rule.id
        if rule.severity == "soft":  # officers are addressed as anh/chị (DOMAIN.md, "Words")
            assert rule.message.vi.endswith("Anh/chị có chắc không?"), rule.id
            assert rule.message.en.endswith("Are you sure?"), rule.id


# The previous report, whose balance reconciles with COMMUNE_VALUES: 0 + 10,000,000 − 4,000,000.
PREV = {**COMMUNE_VALUES, "fund_balance_vnd": 0}


def test_a_valid_report_breaks_no_rule(form: Form) -> None:
    assert violated(form, dict(COMMUNE_VALUES), PREV) == set()
    # A first report has no previous balance: the fund cannot be checked and does not fire.
    assert violated(form, {**COMMUNE_VALUES, "fund_balance_vnd": 1}) == set()


@pytest.mark.parametrize(
    ("rule", "changes", "prev_changes"),
    [
        ("units_registered_within_total", {"units_registered": 9}, {}),
        # More recognised than managed is also more than registered: the soft rule fires too.
        ("units_recognized_within_total+units_recognized_above_registered", {"units_recognized": 9}, {}),
        ("units_recognized_above_registered", {"units_registered": 5}, {}),
        (
            "branch_members_need_branches",
            {"branches_total": 0, "branch_members": 10},
            {"branches_total": 0, "branch_members": 10},
        ),
        ("clc_learners_need_classes", {"clc_classes": 0, "clc_learners": 5}, {}),
        # Opening 6,000,000 + 10,000,000 − 4,000,000 = 12,000,000, not 6,000,000.
        ("fund_reconciles", {}, {"fund_balance_vnd": 6_000_000}),
        ("units_total_change", {"units_total": 10, "units_registered": 7}, {}),
        ("branch_members_change", {"branch_members": 166}, {}),
        ("clc_learners_per_class", {"clc_learners": 3601}, {}),
    ],
)
def test_each_rule_fires(
    form: Form, rule: str, changes: dict[str, Any], prev_changes: dict[str, Any]
) -> None:
    prev = {**PREV, **prev_changes}
    assert violated(form, {**COMMUNE_VALUES, **changes}, prev) == set(rule.split("+"))


def test_the_boundaries_pass(form: Form) -> None:
    for changes, prev_changes in (
        ({"units_registered": 8, "units_recognized": 8}, {}),
        ({"units_registered": 6, "units_recognized": 6}, {}),  # as many recognised as registered
        ({"branch_members": 165}, {}),  # +10%
        ({"clc_learners": 3600}, {}),  # 300 a class
        ({"fund_balance_vnd": 6_001_000}, {}),  # ±1,000 đ
        ({"branches_total": 0, "branch_members": 0}, {"branch_members": 0}),
    ):
        assert violated(form, {**COMMUNE_VALUES, **changes}, {**PREV, **prev_changes}) == set(), changes


def test_at_the_half_year_the_recognition_rules_cannot_fire(form: Form) -> None:
    """units_recognized is not asked at H1 (null): fewer registrations than last year's
    recognitions is no warning then."""
    h1 = {**COMMUNE_VALUES, "units_registered": 2, "units_recognized": None, "commune_lc_rating": None}
    assert violated(form, h1, PREV) == set()


# --- who may file it --------------------------------------------------------------------------


@dataclass
class World:
    app: App
    tree: Tree
    third: Unit  # a third commune of the province, which files nothing


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    app = make_app(db.url)
    try:
        tree = await seed_tree(app)
        async with app.uow() as uow:
            third = await uow.units.add(
                Unit(
                    kind=COMMUNE,
                    name="Xã Hưng Đạo",
                    name_folded=fold("Xã Hưng Đạo"),
                    code="01282",
                    parent_id=tree.province.id,
                    created_at=app.clock.now(),
                )
            )
            await uow.commit()
        yield World(app, tree, third)
    finally:
        await app.db.dispose()


async def _actor(app: App, external_id: str) -> Actor:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", external_id)
        assert contact is not None
        grants = await load_grants(uow, contact.id)
        uow.session.expunge_all()
        return Actor.of(contact, grants)


async def test_only_the_communes_officers_file_it(world: World) -> None:
    app, tree = world.app, world.tree  # on 22/11/2026: the year is open, H1 locked since 26/06
    await make_contact(app, "village", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "other", COMMUNE_OFFICER, tree.other_commune)
    form = app.forms["commune_report"]
    draft = Draft(form, f"{tree.commune.id}:2026", tree.commune.id, "2026", dict(COMMUNE_VALUES))
    for who in ("village", "other"):  # the commune's own village officer; another commune's officer
        actor = await _actor(app, who)
        async with app.uow() as uow:
            with pytest.raises(NotAllowed) as refused:
                await submit_report(
                    uow, actor, draft, now=app.clock.now(), channel="test", content_dir=CONTENT
                )
            assert refused.value.action is Action.REPORT_COMMUNE
    actor = await _actor(app, "commune")
    async with app.uow() as uow:
        done = await submit_report(
            uow, actor, draft, now=app.clock.now(), channel="test", content_dir=CONTENT
        )
        await uow.commit()
    assert done.submission.version == 1 and done.unit.id == tree.commune.id
    async with app.uow() as uow:
        (row,) = await uow.audit.actions("submission.create")
        assert row.detail["form"] == "commune_report"


async def test_the_half_year_locks_for_the_commune_officer_not_for_the_province(world: World) -> None:
    """p9d's lock holds for any reviewed form: after 15/06 + 10 days the commune's officers can
    no longer change the commune's H1 report; province staff, who review it, still can."""
    app, tree = world.app, world.tree
    await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "staff", PROVINCE_STAFF, tree.province)
    form = app.forms["commune_report"]
    values = commune_values("2026-H1")
    draft = Draft(form, f"{tree.commune.id}:2026-H1", tree.commune.id, "2026-H1", values)
    officer, staff = await _actor(app, "commune"), await _actor(app, "staff")
    async with app.uow() as uow:
        with pytest.raises(PeriodLocked) as locked:
            await submit_report(uow, officer, draft, now=app.clock.now(), channel="test", content_dir=CONTENT)
        assert locked.value.since == vn(2026, 6, 26, 0, 0)
    async with app.uow() as uow:
        done = await submit_report(
            uow, staff, draft, now=app.clock.now(), channel="test", content_dir=CONTENT
        )
        await uow.commit()
    assert done.submission.version == 1


# --- the compiled reports ---------------------------------------------------------------------


OTHER_COMMUNE = {  # Xã Trường Hà: a smaller commune, rated good
    "units_total": 4,
    "units_registered": 2,
    "units_recognized": 1,
    "branches_total": 1,
    "branch_members": 20,
    "fund_raised_vnd": 1_000_000,
    "fund_disbursed_vnd": 0,
    "fund_balance_vnd": 1_000_000,
    "commune_lc_rating": "good",
}


async def fill(w: World) -> None:
    """Villages of both communes, and the communes' own reports of two of the three communes:
    last year's year reports (the recognition H1 shows) and this year's H1 reports."""
    app, tree = w.app, w.tree
    # 2025: 6 of 8 units recognised, rated fair (COMMUNE_VALUES); 1 of 4, rated good.
    await submit_commune_report(app, tree.commune, "2025", vn(2025, 11, 28))
    await submit_commune_report(app, tree.other_commune, "2025", vn(2025, 11, 28), **OTHER_COMMUNE)
    # Villages: members 100 + 30 (+ 40 in the other commune); funds raised 8,000,000 + 1,000,000
    # (+ 2,000,000), spent 5,000,000 each, balances 3,000,000 each.
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10), members_total=100, fund_raised_vnd=8_000_000)
    await submit(app, tree.group, "2026-H1", vn(2026, 6, 11), members_total=30, fund_raised_vnd=1_000_000)
    await submit(
        app, tree.other_village, "2026-H1", vn(2026, 6, 12), members_total=40, fund_raised_vnd=2_000_000
    )
    # H1: the commune now manages 10 units, 7 registered (150 members in 3 branches, fund
    # 10,000,000 / 4,000,000 / 6,000,000); recognition and rating are not asked (null). The
    # other commune: 2 of 4 registered. Xã Hưng Đạo files nothing, this year or last.
    await submit_commune_report(
        app, tree.commune, "2026-H1", vn(2026, 6, 14), units_total=10, notes="Trường THCS tiêu biểu"
    )
    h1 = {k: v for k, v in OTHER_COMMUNE.items() if k not in ("units_recognized", "commune_lc_rating")}
    await submit_commune_report(app, tree.other_commune, "2026-H1", vn(2026, 6, 14), **h1)


async def compiled(app: App, unit: Unit | None, period: Period = H1) -> Compiled:
    async with app.read_only() as reads:
        return await compile_unit(
            reads, unit, period, content_dir=app.content_dir, forms=app.forms, now=app.clock.now()
        )


def sheet_rows(c: Compiled, locale: str = "vi") -> list[tuple[Any, ...]]:
    (xlsx,) = render(c, translator(locale), ["xlsx"])
    ws = load_workbook(io.BytesIO(xlsx.data)).active
    assert ws is not None
    return list(ws.iter_rows(values_only=True))


def commune_table(rows: list[tuple[Any, ...]]) -> tuple[list[str], list[tuple[Any, ...]], tuple[Any, ...]]:
    """The communes' own table (section IV): its header, its lines and its total line."""
    t = translator("vi")
    start = next(i for i, r in enumerate(rows) if r[0] == t("No.") and r[2] == t("Communes to report"))
    header = [str(v) for v in rows[start] if v is not None]
    body: list[tuple[Any, ...]] = []
    for r in rows[start + 1 :]:
        if r[0] == "(1)" or r[1] == t("Unit of measure"):  # the numbered columns, the unit row
            continue
        if r[1] == t("Total"):
            return header, body, r
        body.append(r)
    raise AssertionError("no totals line in the communes' table")


async def test_the_commune_report_adds_the_communes_figures(world: World) -> None:
    await fill(world)
    c = await compiled(world.app, world.tree.commune)
    assert c.commune is not None and c.commune.single
    own = c.commune.total
    assert (own.expected, own.reported, own.approved, own.waiting) == (1, 1, 0, 1)
    # At H1 the recognition is last year's (DOMAIN "Recognition cycle"): 6 of the 8 units of
    # 2025, whatever the commune manages now; this year's registrations: 7 of 10.
    year_2025 = Period.parse("2025")
    assert c.commune.carried_from == {
        "units_recognized": year_2025,
        "commune_lc_rating": year_2025,
        "learning_units": year_2025,
    }
    assert own.value("units_total") == 10 and own.value("units_recognized") == 6
    # Đơn vị học tập: 6 / 8 = 75%, against the 2025 target of 80% (used until 2030): 93.75% of it.
    assert own.rate("learning_units") == pytest.approx(75.0)
    assert own.rate("lu_registration") == pytest.approx(70.0)
    assert own.choice("commune_lc_rating") == "fair"
    assert c.commune.targets.get("learning_units") == 80
    assert c.commune.progress(LEARNING_UNITS, c.period) == pytest.approx(93.75)
    assert c.commune.combined(c.total, "members_total") == 100 + 30 + 150
    assert c.commune.combined(c.total, "fund_raised_vnd") == 8_000_000 + 1_000_000 + 10_000_000

    vi = summary_text(c, translator("vi"))
    assert "• Báo cáo sơ kết 6 tháng của xã: đã nhận, đang chờ duyệt (số liệu chưa được duyệt)." in vi
    units = (
        "• Đơn vị học tập — đã công nhận, năm 2025: 6/8 đơn vị được công nhận, 75%"
        " (chỉ tiêu 80%, đạt 93,8% so với chỉ tiêu)."
    )
    assert units in vi
    assert "  (Đơn vị học tập: số đơn vị được công nhận Đơn vị học tập / số cơ quan, đơn vị, trường học" in vi
    assert "  Đơn vị đăng ký Đơn vị học tập — 6 tháng đầu năm 2026: 7/10, 70%." in vi
    assert "• Hội viên khuyến học: 280 (130 ở thôn, tổ dân phố; 150 ở 3 chi hội" in vi
    fund = "• Quỹ khuyến học vận động được: 19.000.000 ₫ (các thôn 9.000.000 ₫, quỹ của xã 10.000.000 ₫)"
    assert fund.replace(" ₫", "\u00a0₫") in vi
    assert "đã chi 14.000.000\u00a0₫; tồn quỹ 12.000.000\u00a0₫." in vi  # 5+5+4 million; 3+3+6 million
    assert "• Xếp loại Cộng đồng học tập cấp xã, năm 2025: Khá." in vi
    assert "• Trung tâm học tập cộng đồng: 12 lớp học, chuyên đề; 340 người học." in vi
    assert "• Tập huấn, bồi dưỡng: 15 cán bộ, 80 hội viên." in vi
    assert "• Khen thưởng, tôn vinh: 2 tập thể, 9 cá nhân." in vi
    en = summary_text(c, translator("en"))
    assert "• Learning units — recognised, Year 2025: 6 of 8 recognised, 75% (target 80%, 93.8% of it)." in en
    assert "  Units registered for Learning Unit — First half of 2026: 7 of 10, 70%." in en
    assert "• Learning Community rating of the commune, Year 2025: Fair." in en

    rows = sheet_rows(c)
    # II: the commune's row under the villages' totals, then the totals with it.
    # (in the tables of members and of the fund: those the commune's report adds to).
    mine, both = "Phường Thục Phán: báo cáo của xã", "Tổng cộng, kể cả báo cáo của xã"
    assert value(rows, mine, "members_total") == 150 and value(rows, mine, "fund_raised_vnd") == 10_000_000
    assert value(rows, both, "members_total") == 280
    assert value(rows, both, "fund_balance_vnd") == 12_000_000
    titles = table_with(rows, "Tổng số hộ")
    assert titles.total[titles.column("Tổng số hộ")] == 200  # the villages' own (100 each)
    assert mine not in [r[1] for r in titles.lines]  # the commune's report adds no households
    # V: the commune's own table, with the learning units rate beside its figures; the carried
    # columns say which period they come from.
    header, body, totals = commune_table(rows)
    assert "Số cơ quan, trường học, doanh nghiệp do xã quản lý" in header
    assert header[-1] == "Ghi chú"
    (line,) = body
    assert line[1] == "Phường Thục Phán"
    by_header = dict(zip(header, line, strict=False))  # the header has no gaps: cell i is under header i
    assert (by_header["Đã duyệt"], by_header["Chưa duyệt"]) == (0, 1)
    assert by_header["Số cơ quan, trường học, doanh nghiệp do xã quản lý"] == 10
    assert by_header["Số đơn vị được công nhận Đơn vị học tập — năm 2025"] == 6
    assert by_header["Đơn vị học tập (%) — năm 2025"] == pytest.approx(0.75)
    assert by_header["Xếp loại Cộng đồng học tập cấp xã — năm 2025"] == "Khá"
    assert by_header["Số người học tại Trung tâm học tập cộng đồng"] == 340
    assert by_header["Ghi chú"] == "Trường THCS tiêu biểu"
    assert totals[header.index("Số hội viên của các chi hội này")] == 150
    texts = [str(v) for r in rows for v in r if isinstance(v, str)]
    assert "IV. BÁO CÁO CỦA XÃ" in texts
    assert units.removeprefix("• ") in texts
    assert "Đơn vị đăng ký Đơn vị học tập — 6 tháng đầu năm 2026: 7/10, 70%." in texts
    (definition,) = [s for s in texts if s.startswith("(Đơn vị học tập: số đơn vị được công nhận")]
    assert definition.endswith("do xã quản lý)")


async def test_the_year_report_asks_the_recognition_and_carries_nothing(world: World) -> None:
    app, tree = world.app, world.tree
    await fill(world)
    await submit_commune_report(
        app,
        tree.commune,
        "2026",
        vn(2026, 11, 20),
        units_total=10,
        units_recognized=7,
        commune_lc_rating="good",
    )
    c = await compiled(app, tree.commune, Period.parse("2026"))
    assert c.commune is not None and c.commune.carried_from == {}
    assert c.commune.total.rate("learning_units") == pytest.approx(70.0)
    vi = summary_text(c, translator("vi"))
    assert (
        "• Đơn vị học tập: 7/10 đơn vị được công nhận, 70% (chỉ tiêu 80%, đạt 87,5% so với chỉ tiêu)." in vi
    )
    assert "• Xếp loại Cộng đồng học tập cấp xã: Tốt." in vi
    assert "đã công nhận, năm 2025" not in vi and "cấp xã, năm 2025" not in vi
    assert "Đơn vị đăng ký" not in vi
    header, (line,), _ = commune_table(sheet_rows(c))
    by_header = dict(zip(header, line, strict=False))
    assert by_header["Số đơn vị được công nhận Đơn vị học tập"] == 7
    assert by_header["Đơn vị học tập (%)"] == pytest.approx(0.7)


async def test_the_province_report_lists_each_commune_and_leaves_the_missing_one_blank(world: World) -> None:
    await fill(world)
    tree = world.tree
    c = await compiled(world.app, tree.province)
    assert c.commune is not None and not c.commune.single
    total = c.commune.total
    assert (total.expected, total.reported) == (3, 2)
    assert [u.name for u in c.commune.missing] == ["Xã Hưng Đạo"]
    # Last year's (6 + 1) / (8 + 4) = 58.33%; against 80%: 72.9% of the target. This year's
    # registrations: (7 + 2) / (10 + 4) = 64.3%.
    assert total.rate("learning_units") == pytest.approx(7 / 12 * 100)
    assert total.rate("lu_registration") == pytest.approx(9 / 14 * 100)
    assert c.commune.combined(c.total, "members_total") == 100 + 30 + 40 + 150 + 20
    vi = summary_text(c, translator("vi"))
    assert "• Báo cáo sơ kết 6 tháng của xã: 2/3 xã đã gửi." in vi
    assert "Chưa nhận được của: Xã Hưng Đạo." in vi
    review = (
        "  Duyệt báo cáo: 0 đã duyệt, 2 chờ duyệt, 0 đã trả lại."
        " Số liệu chưa được duyệt: Phường Thục Phán, Xã Trường Hà."
    )
    assert review in vi
    units = (
        "• Đơn vị học tập — đã công nhận, năm 2025: 7/12 đơn vị được công nhận, 58,3%"
        " (chỉ tiêu 80%, đạt 72,9% so với chỉ tiêu)."
    )
    assert units in vi
    assert "  Đơn vị đăng ký Đơn vị học tập — 6 tháng đầu năm 2026: 9/14, 64,3%." in vi
    assert "• Xếp loại Cộng đồng học tập cấp xã của các xã, năm 2025: Tốt: 1; Khá: 1." in vi

    rows = sheet_rows(c)
    header, body, totals = commune_table(rows)
    assert [r[1] for r in body] == ["Phường Thục Phán", "Xã Hưng Đạo", "Xã Trường Hà"]
    rec = header.index("Số đơn vị được công nhận Đơn vị học tập — năm 2025")
    rate = header.index("Đơn vị học tập (%) — năm 2025")
    rating = header.index("Xếp loại Cộng đồng học tập cấp xã — năm 2025")
    notes = header.index("Ghi chú")
    reported = header.index("Đã báo cáo")
    by_name = {r[1]: r for r in body}
    # A commune that has not filed: blank, not 0, and said so.
    missing = by_name["Xã Hưng Đạo"]
    assert missing[reported] == 0
    assert all(missing[i] is None for i in range(reported + 1, notes))
    assert missing[notes] == "Chưa báo cáo"
    assert by_name["Xã Trường Hà"][rec] == 1 and by_name["Xã Trường Hà"][rate] == pytest.approx(0.25)
    assert by_name["Xã Trường Hà"][rating] == "Tốt"
    assert totals[rec] == 7 and totals[rate] == pytest.approx(7 / 12)
    assert totals[rating] == "Tốt: 1; Khá: 1"
    assert totals[header.index("Số hội viên của các chi hội này")] == 170
    assert value(rows, "Báo cáo của các xã (2/3 xã)", "members_total") == 170
    assert value(rows, "Tổng cộng, kể cả báo cáo của các xã", "members_total") == 340

    national = await compiled(world.app, None)
    assert national.commune is not None
    (province_line,) = national.commune.lines
    assert province_line.unit.id == tree.province.id
    assert (province_line.figures.expected, province_line.figures.reported) == (3, 2)
    assert national.commune.total.sums == total.sums
    en = summary_text(national, translator("en"))
    assert "Figures not yet approved: Cao Bằng (0 of 2 approved)." in en


async def test_a_commune_that_has_not_filed_shows_as_not_reported(world: World) -> None:
    app, tree = world.app, world.tree
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10))
    c = await compiled(app, tree.commune)
    assert c.commune is not None and c.commune.total.reported == 0
    vi = summary_text(c, translator("vi"))
    assert "• Báo cáo sơ kết 6 tháng của xã: chưa nhận được." in vi
    assert "Đơn vị học tập" not in vi
    rows = sheet_rows(c)
    assert value(rows, "Phường Thục Phán: báo cáo của xã — chưa báo cáo", "members_total") is None
    assert value(rows, "Tổng cộng, kể cả báo cáo của xã", "members_total") == 100
    header, (line,), _ = commune_table(rows)
    assert line[header.index("Ghi chú")] == "Chưa báo cáo"
    # A later correction is what counts: the latest version of the commune's report. With no
    # report last year there is no recognition to carry: the registrations alone are shown.
    await submit_commune_report(app, tree.commune, "2026-H1", vn(2026, 6, 12))
    await submit_commune_report(app, tree.commune, "2026-H1", vn(2026, 6, 13), units_registered=8)
    c = await compiled(app, tree.commune)
    assert c.commune is not None and c.commune.total.reported == 1
    assert c.commune.total.rate("learning_units") is None
    assert c.commune.total.rate("lu_registration") == pytest.approx(100.0)
    vi = summary_text(c, translator("vi"))
    assert "• Đơn vị đăng ký Đơn vị học tập — 6 tháng đầu năm 2026: 8/8, 100%." in vi
    assert "đã công nhận" not in vi


# --- review (p9d's review holds for any per-period form) ----------------------------------------


async def test_province_staff_review_the_communes_own_reports(world: World) -> None:
    """A commune's own report is reviewed one level up, by province staff: /duyet lists it, they
    approve or return it (the commune's officers get the notice with a button to /baocaoxa), and
    the compiled reports count and name what is not approved yet."""
    app, tree = world.app, world.tree
    await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "other", COMMUNE_OFFICER, tree.other_commune)
    await make_contact(app, "staff", PROVINCE_STAFF, tree.province)
    form, year = app.forms["commune_report"], Period.parse("2026")
    officer, staff = await _actor(app, "commune"), await _actor(app, "staff")
    filed = {}
    for who, unit in (("commune", tree.commune), ("other", tree.other_commune)):
        draft = Draft(form, f"{unit.id}:2026", unit.id, "2026", dict(COMMUNE_VALUES))
        filer = await _actor(app, who)
        async with app.uow() as uow:
            filed[who] = await submit_report(
                uow, filer, draft, now=app.clock.now(), channel="test", content_dir=CONTENT
            )
            await uow.commit()
    now = app.clock.now()
    async with app.uow() as uow:
        province = await uow.units.get(tree.province.id)
        assert province is not None
        listed = await reports_to_review(uow, staff, list(app.forms.values()), year, province)
        assert sorted((i.unit.name, i.submission.form_key, i.state) for i in listed) == [
            ("Phường Thục Phán", "commune_report", "waiting"),
            ("Xã Trường Hà", "commune_report", "waiting"),
        ]
        with pytest.raises(NotAllowed):  # a commune's officer does not review the commune's report
            await approve(uow, officer, filed["commune"].submission.id, now=now)
    async with app.uow() as uow:
        await approve(uow, staff, filed["commune"].submission.id, now=now)
        returned = await return_report(
            uow, staff, filed["other"].submission.id, "Số đơn vị chưa đúng", now=now, forms=app.forms
        )
        await uow.commit()
    assert returned.notified == 1
    (notice,) = await outbox_to(app, "other")
    assert "Báo cáo Hội Khuyến học xã" in notice["text"] and "Lý do: Số đơn vị chưa đúng" in notice["text"]
    assert notice["options"] == [{"id": f"cmd:baocaoxa {tree.other_commune.id} 2026", "label": "Sửa báo cáo"}]
    assert await outbox_to(app, "commune") == []

    c = await compiled(app, tree.province, year)
    assert c.commune is not None
    assert (c.commune.total.approved, c.commune.total.waiting, c.commune.total.returned) == (1, 0, 1)
    vi = summary_text(c, translator("vi"))
    assert (
        "  Duyệt báo cáo: 1 đã duyệt, 0 chờ duyệt, 1 đã trả lại. Số liệu chưa được duyệt: Xã Trường Hà." in vi
    )
    header, body, totals = commune_table(sheet_rows(c))
    by_name = {r[1]: r for r in body}
    approved, pending = header.index("Đã duyệt"), header.index("Chưa duyệt")
    assert (by_name["Phường Thục Phán"][approved], by_name["Phường Thục Phán"][pending]) == (1, 0)
    assert (by_name["Xã Trường Hà"][approved], by_name["Xã Trường Hà"][pending]) == (0, 1)
    assert (totals[approved], totals[pending]) == (1, 1)
    one = summary_text(await compiled(app, tree.commune, year), translator("en"))
    assert "• Commune annual report: received, approved." in one
    other = summary_text(await compiled(app, tree.other_commune, year), translator("en"))
    assert "• Commune annual report: received, returned for correction (figures not yet approved)." in other
