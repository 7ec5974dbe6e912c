"""Which earlier report prev(), last_year() and opening() read, and what a field asked only in
some periods shows elsewhere (bot/domain/forms/history.py; DOMAIN "Corrections and additions")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.domain.forms import Form, check_rules, load_forms
from bot.domain.forms.history import (
    carried_source,
    first_found,
    needed_periods,
    opening_sources,
    previous_values,
    same_kind_a_year_earlier,
    stock_sources,
)
from bot.domain.periods import Period

FORMS_DIR = Path(__file__).resolve().parents[1] / "content" / "forms"
VILLAGE = ("half_year", "year")


@pytest.fixture(scope="module")
def village() -> Form:
    return load_forms(FORMS_DIR)["village_report"]


def keys(periods: list[Period]) -> list[str]:
    return [p.key for p in periods]


@pytest.mark.parametrize(
    ("period", "stock", "opening", "year_before", "carried"),
    [
        # H1: stocks from the latest report (last year's), flows from last year's H1, the
        # fund's opening balance at 31/12, recognitions carried from last year's year report.
        ("2026-H1", ["2025", "2025-H2", "2025-H1", "2024"], ["2025-H2", "2025"], "2025-H1", "2025"),
        # The year: stocks from the half-year filed in June, the rest from last year.
        ("2026", ["2026-H1", "2025", "2025-H2", "2025-H1"], ["2025", "2025-H2"], "2025", None),
    ],
)
def test_the_reports_a_village_report_reads(
    period: str, stock: list[str], opening: list[str], year_before: str, carried: str | None
) -> None:
    p = Period.parse(period)
    assert keys(stock_sources(p, VILLAGE)) == stock
    assert keys(opening_sources(p, VILLAGE)) == opening
    assert same_kind_a_year_earlier(p).key == year_before
    source = carried_source(p, ["year"])
    assert (source.key if source else None) == carried


@pytest.mark.parametrize(
    ("period", "ask_in", "carried"),
    [
        ("2026-03", ["half_year"], "2025-H2"),  # a monthly form asking a figure each half-year
        ("2026-08", ["half_year"], "2026-H1"),
        ("2026-W07", ["month", "year"], "2026-01"),  # the latest of several kinds
        ("2026-2027", ["year"], "2025"),  # the school year starting in September 2026
        ("2026-W07", ["week"], None),  # asked in this period's own kind: nothing carried
    ],
)
def test_carried_from_the_latest_ended_period_of_any_kind(
    period: str, ask_in: list[str], carried: str | None
) -> None:
    source = carried_source(Period.parse(period), ask_in)
    assert (source.key if source else None) == carried


def test_same_kind_a_year_earlier_for_every_kind() -> None:
    assert same_kind_a_year_earlier(Period.parse("2026-03")).key == "2025-03"
    assert same_kind_a_year_earlier(Period.parse("2026-W07")).key == "2025-W07"
    assert same_kind_a_year_earlier(Period.parse("2026-2027")).key == "2025-2026"


LAST_YEAR = {
    "households_total": 100,
    "lf_recognized": 50,
    "members_new": 5,
    "fund_balance_vnd": 1_000_000,
    "adults_learning_total": 300,
}
THIS_H1 = {"households_total": 120, "lf_recognized": None, "members_new": 9, "fund_balance_vnd": 4_000_000}


def test_prev_is_the_latest_report_for_stocks_and_last_year_for_the_rest(village: Form) -> None:
    reports: dict[str, dict[str, Any]] = {"2025": LAST_YEAR, "2026-H1": THIS_H1}
    year = Period.parse("2026")
    prev = previous_values(village, year, reports)
    assert prev["households_total"] == 120  # a stock: June's half-year
    assert prev["members_new"] == 5  # a flow: last year's year report
    assert prev["lf_recognized"] == 50
    assert prev["fund_balance_vnd"] == 1_000_000  # not a carry_over field: a year earlier
    # A stock asked only at year end is looked for in the year reports alone.
    assert prev["adults_learning_total"] == 300
    assert {"2026-H1", "2025"} <= set(keys(needed_periods(village, year)))
    assert first_found(opening_sources(year, village.period_kinds), reports) == LAST_YEAR


def _broken(
    village: Form, values: dict[str, Any], reports: dict[str, dict[str, Any]], period: str
) -> set[str]:
    p = Period.parse(period)
    found = check_rules(
        village,
        values,
        previous_values(village, p, reports),
        {},
        answered=[k for k in village.field_keys if k in values],
        focus=None,
        locale="en",
        opening=first_found(opening_sources(p, village.period_kinds), reports),
        last_year=reports.get(same_kind_a_year_earlier(p).key, {}),
    )
    return {v.rule.id for v in found}


def test_the_year_reconciles_the_fund_from_last_years_balance_and_compares_rates_year_with_year(
    village: Form,
) -> None:
    reports = {"2025": LAST_YEAR, "2026-H1": THIS_H1 | {"lf_recognized": 0}}  # an old H1 with 0
    year = {
        "households_total": 120,
        "lf_registered": 70,
        "lf_recognized": 66,  # 55% against last year's 50%: 5 points, not 55 from H1's 0
        "fund_raised_vnd": 3_000_000,
        "fund_disbursed_vnd": 1_000_000,
        "fund_balance_vnd": 3_000_000,  # 1,000,000 at 31/12/2025 + 3,000,000 − 1,000,000
        "scholarship_amount_vnd": 0,
        "award_amount_vnd": 0,
    }
    assert _broken(village, year, reports, "2026") == set()
    # Opened with June's balance instead, the same honest fund would not reconcile.
    june = check_rules(village, year, {}, {}, answered=list(year), focus=None, locale="en", opening=THIS_H1)
    assert [v.rule.id for v in june] == ["fund_reconciles"]
    jump = year | {"lf_recognized": 90}  # 75%: 25 points above last year
    assert _broken(village, jump, reports, "2026") == {"lf_rate_change", "lf_recognized_above_registered"}


def test_no_rate_change_at_the_half_year(village: Form) -> None:
    """Recognitions are not asked at H1 (stored as null), so the rate rules cannot fire there."""
    reports = {"2025": LAST_YEAR, "2025-H1": {"households_total": 100, "lf_recognized": 0}}
    h1 = {"households_total": 105, "lf_registered": 100, "lf_recognized": None}
    assert _broken(village, h1, reports, "2026-H1") == set()
