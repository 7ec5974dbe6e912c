"""One period rule (issue 9, item 1): which periods a form is filed for is derived from
content/schedules.yaml, and one function — `Schedules.open_period`, the open period whose deadline
comes next — is the default of /baocao, /hoatdong, /baocaotonghop, the digest and the CLI.

On 2 December 2026 /baocao used to default to the second half-year while /baocaotonghop defaulted
to the year, so the commune's report said 0/7 while the village had filed. Here: the choices on
dates that matter, the two dialogues agreeing on every day of two years, a new period kind made of
one KINDS row and YAML, the service refusing a period the form is not filed for, and the CLI's
default.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.i18n import N_, translator
from bot.domain.periods import KINDS, Period, PeriodKind
from bot.domain.schedules import PeriodNotFiled, Schedules, load_schedules, parse_schedules
from bot.runtime import cli as cli_module
from bot.runtime.bootstrap import Bot, bootstrap
from bot.runtime.cli import app as cli
from bot.services.actor import CONSOLE
from bot.services.submissions import Draft, submit_report
from storage.db import Database
from storage.migrate import upgrade
from storage.models import COMMUNE_OFFICER, VILLAGE_OFFICER
from tests.support import Chat, make_app, make_contact, seed_tree
from tests.test_reports_helpers import submit, vn

CONTENT = Path(__file__).resolve().parent.parent / "content"
VILLAGE = "village_report"
ACTIVITY = "activity_report"


@pytest.fixture(scope="module")
def schedules() -> Schedules:
    return load_schedules(CONTENT)


def keys(periods: list[Period]) -> list[str]:
    return [p.key for p in periods]


# ---- the village report and the activity report, as content/ says -------------------------------


@pytest.mark.parametrize(
    ("today", "village", "activity"),
    [
        # 2 December: the year (due 30 November) is open until mid-January; H1 may still be sent late.
        (date(2026, 12, 2), ["2026", "2026-H1"], ["2026"]),
        (date(2026, 5, 20), ["2026-H1", "2026"], ["2026"]),
        # H1 is due 15 June and open 45 days more: it stays the default until 30 July.
        (date(2026, 7, 30), ["2026-H1", "2026"], ["2026"]),
        (date(2026, 7, 31), ["2026", "2026-H1"], ["2026"]),
        # Early January: last year is still being closed, and is the default while it is open.
        (date(2027, 1, 5), ["2026", "2027", "2027-H1"], ["2027", "2026"]),
        (date(2027, 1, 20), ["2027-H1", "2027"], ["2027", "2026"]),
        (date(2027, 3, 1), ["2027-H1", "2027"], ["2027"]),
    ],
)
def test_the_periods_an_officer_may_file(
    schedules: Schedules, today: date, village: list[str], activity: list[str]
) -> None:
    assert keys(schedules.period_choices(VILLAGE, today)) == village
    assert keys(schedules.period_choices(ACTIVITY, today)) == activity
    assert schedules.open_period(VILLAGE, today)[0].key == village[0]


def test_the_second_half_year_is_not_a_village_report_period(schedules: Schedules) -> None:
    h1, h2, year = Period.parse("2026-H1"), Period.parse("2026-H2"), Period.parse("2026")
    assert schedules.files_for(VILLAGE, h1) and schedules.files_for(VILLAGE, year)
    assert not schedules.files_for(VILLAGE, h2)
    assert schedules.covering(VILLAGE, h2) == year  # what someone typing 2026-H2 is told
    assert schedules.covering(VILLAGE, h1) == year
    # The compiled report compares H1 with last year's H1, the year with last year.
    assert schedules.previous_period(VILLAGE, h1).key == "2025-H1"
    assert schedules.previous_period(VILLAGE, year).key == "2025"
    # Activities are filed under their year (counted by their date everywhere).
    assert not schedules.files_for(ACTIVITY, h1) and schedules.files_for(ACTIVITY, year)


def test_every_day_of_two_years_the_defaults_agree_and_follow_the_deadlines(schedules: Schedules) -> None:
    """/baocao's choices, /baocaotonghop's choices and the digest's open period start with the
    same period on every day; it is never the second half-year; and it is the open period whose
    deadline comes next: last year until 14 January, H1 until 30 July, then the year."""
    day = date(2026, 1, 1)
    while day <= date(2027, 12, 31):
        filing = schedules.period_choices(VILLAGE, day)
        compiling = schedules.recent_periods(VILLAGE, day)
        default, deadline = schedules.open_period(VILLAGE, day)
        assert filing[0] == compiling[0] == default, day
        assert all(schedules.files_for(VILLAGE, p) for p in filing + compiling), day
        assert len(set(filing)) == len(filing), day
        if day < date(day.year, 1, 15):
            expected = Period("year", day.year - 1)
        elif day <= date(day.year, 7, 30):
            expected = Period("half_year", day.year, 1)
        else:
            expected = Period("year", day.year)
        assert default == expected, day
        assert deadline is not None and deadline.is_open(default, day), day
        day += timedelta(days=1)


async def test_the_dialogues_offer_the_same_default_on_every_day_of_a_year(db: Database) -> None:
    """Through the real dialogues: a village officer's /baocao and the commune officer's
    /baocaotonghop, every day of 2026, offer the same period first."""
    clock = FixedClock(datetime(2026, 1, 1, 9, tzinfo=VN_TZ))
    app = make_app(db.url, clock)
    try:
        tree = await seed_tree(app)
        await make_contact(app, "village", VILLAGE_OFFICER, tree.village)
        await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
        village, commune = Chat(app, "village"), Chat(app, "commune")
        seen: set[str] = set()
        while clock.now().year == 2026:
            await village.say("/baocao")
            filing = village.option_ids[0]
            await village.say("hủy")
            await commune.say("/baocaotonghop")
            compiling = commune.option_ids[0]
            await commune.say("hủy")
            assert filing == compiling, clock.now().date()
            seen.add(filing)
            clock.advance(timedelta(days=1))
        assert seen == {"2025", "2026-H1", "2026"}
    finally:
        await app.db.dispose()


# ---- a new period kind: one row of KINDS, then YAML -----------------------------------------------

QUARTERLY = {
    "forms": {"club_report": {"period_kinds": ["quarter"]}},
    "deadlines": [
        {
            "id": "club_report.quarter",
            "form": "club_report",
            "period": "quarter",
            "only": [2, 4],  # reported twice a year, for the second and the fourth quarter
            "due_after_end_days": 10,
            "expected": ["commune"],
            "title": {"vi": "Báo cáo câu lạc bộ", "en": "Club report"},
        }
    ],
}


def test_a_new_period_kind_is_a_row_of_kinds_and_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    quarter = PeriodKind(
        "quarter", 3, "{year}-Q{number}", r"-Q(?P<number>[1-4])", (N_("Quarter {number} of {year}"),)
    )
    monkeypatch.setitem(KINDS, "quarter", quarter)
    q3 = Period.parse("2026-q3")
    assert (q3.key, q3.start, q3.end) == ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30))
    assert q3.label(translator("en")) == "Quarter 3 of 2026"
    assert Period.containing("quarter", date(2026, 11, 2)).key == "2026-Q4"

    s = parse_schedules(QUARTERLY)
    q2, q4 = Period.parse("2026-Q2"), Period.parse("2026-Q4")
    assert s.files_for("club_report", q2) and not s.files_for("club_report", q3)
    # 1 August: Q2 (due 10 July) is open until 24 August; Q3 is not reported.
    assert keys(s.period_choices("club_report", date(2026, 8, 1))) == ["2026-Q2"]
    # 1 September: Q2 is closed, nothing is open; Q2 is still offered, to be sent late.
    assert keys(s.period_choices("club_report", date(2026, 9, 1))) == ["2026-Q2"]
    # 5 October: Q4 has begun and its deadline comes next; Q2 is closed and no longer offered.
    assert s.open_period("club_report", date(2026, 10, 5)) == (q4, s.deadline("club_report.quarter"))
    assert keys(s.period_choices("club_report", date(2026, 10, 5))) == ["2026-Q4"]
    assert s.previous_period("club_report", q4) == q2
    # Reminders find the period due (10 January 2027) from the same entry.
    deadline = s.deadline("club_report.quarter")
    assert deadline.periods_due_near(date(2027, 1, 7), 3, 1) == [q4]


def test_a_month_based_report_is_a_yaml_edit() -> None:
    s = parse_schedules(
        {
            "deadlines": [
                {
                    "id": "reading.month",
                    "form": "reading_report",
                    "period": "month",
                    "only": [4, 10],  # April (book day) and October (the Week)
                    "due_after_end_days": 5,
                    "expected": ["village"],
                    "title": {"vi": "Văn hóa đọc", "en": "Reading culture"},
                }
            ]
        }
    )
    assert s.kinds("reading_report") == ("month",)  # from its deadlines
    assert keys(s.period_choices("reading_report", date(2026, 5, 3))) == ["2026-04"]
    assert keys(s.period_choices("reading_report", date(2026, 10, 20))) == ["2026-10"]
    assert s.open_period("reading_report", date(2026, 10, 20))[0].key == "2026-10"
    assert not s.files_for("reading_report", Period.parse("2026-05"))


# ---- the service, on both backends -----------------------------------------------------------------


async def test_the_service_refuses_a_period_the_form_is_not_filed_for(db: Database) -> None:
    app = make_app(db.url)
    try:
        tree = await seed_tree(app)
        data: dict[str, Any] = {"households_total": 100}
        async with app.uow() as uow:
            with pytest.raises(PeriodNotFiled) as refused:
                await submit_report(
                    uow,
                    CONSOLE,
                    Draft(app.forms[VILLAGE], f"{tree.village.id}:2026-H2", tree.village.id, "2026-H2", data),
                    now=app.clock.now(),
                    channel="test",
                    content_dir=app.content_dir,
                )
            assert refused.value.covered_by == Period.parse("2026")
            saved = await submit_report(
                uow,
                CONSOLE,
                Draft(app.forms[VILLAGE], f"{tree.village.id}:2026", tree.village.id, "2026", data),
                now=app.clock.now(),
                channel="test",
                content_dir=app.content_dir,
            )
            await uow.commit()
        assert saved.submission.period == "2026"
        async with app.uow() as uow:
            assert await uow.submissions.count(VILLAGE) == 1
    finally:
        await app.db.dispose()


# ---- khuyenhoc report: the same default -----------------------------------------------------------------


def test_khuyenhoc_report_defaults_to_the_open_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    december = FixedClock(datetime(2026, 12, 2, 9, tzinfo=VN_TZ))

    async def seed() -> str:
        app = make_app(url, december)
        try:
            tree = await seed_tree(app)
            await submit(app, tree.village, "2026", vn(2026, 11, 28), households_total=100, lf_recognized=70)
            return tree.commune.code or ""
        finally:
            await app.db.dispose()

    code = asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CONTENT_DIR", str(CONTENT))

    def on_2_december(settings: Any = None, clock: Any = None) -> Bot:
        return bootstrap(settings, clock or december)

    monkeypatch.setattr(cli_module, "bootstrap", on_2_december)
    out = tmp_path / "report.csv"
    result = CliRunner().invoke(cli, ["report", "--unit", code, "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "năm 2026" in result.output and "Đã báo cáo: 1/2" in result.output
