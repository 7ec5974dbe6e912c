"""Tests for bot.domain.periods: keys and labels officers see, what a period is compared with, and
properties that hold for every kind (Hypothesis). Which periods a form is filed for, and the
default one: tests/test_period_rule.py."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.i18n import translator
from bot.domain.periods import KINDS, PERIOD_KINDS, Period, period_in_words

PROPERTY = settings(max_examples=300, deadline=None, database=None)

days = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))
kinds = st.sampled_from(PERIOD_KINDS)
periods = st.builds(Period.containing, kinds, days)


def keys(ps: list[Period]) -> list[str]:
    return [p.key for p in ps]


# ---- examples ---------------------------------------------------------------------------------

EXAMPLES = [  # key, kind, year, number, start, end, English label
    ("2026-W07", "week", 2026, 7, date(2026, 2, 9), date(2026, 2, 15),
     "Week 7 of 2026 (Feb 9, 2026–Feb 15, 2026)"),
    ("2026-W53", "week", 2026, 53, date(2026, 12, 28), date(2027, 1, 3), None),
    ("2026-03", "month", 2026, 3, date(2026, 3, 1), date(2026, 3, 31), "Month 3/2026"),
    ("2024-02", "month", 2024, 2, date(2024, 2, 1), date(2024, 2, 29), "Month 2/2024"),
    ("2026-H1", "half_year", 2026, 1, date(2026, 1, 1), date(2026, 6, 30), "First half of 2026"),
    ("2026-H2", "half_year", 2026, 2, date(2026, 7, 1), date(2026, 12, 31), "Second half of 2026"),
    ("2026", "year", 2026, 0, date(2026, 1, 1), date(2026, 12, 31), "Year 2026"),
    ("2026-2027", "school_year", 2026, 0, date(2026, 9, 1), date(2027, 8, 31), "School year 2026–2027"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "kind", "year", "number", "start", "end", "label"), EXAMPLES)
def test_keys_dates_and_labels(
    key: str, kind: str, year: int, number: int, start: date, end: date, label: str | None
) -> None:
    period = Period.parse(key)
    assert period == Period(kind, year, number)
    assert (period.key, period.start, period.end) == (key, start, end)
    if label is not None:
        assert period.label(translator("en")) == label


def test_vietnamese_labels() -> None:
    t = translator("vi")
    assert Period.parse("2026-H1").label(t) == "6 tháng đầu năm 2026"
    assert Period.parse("2026-H2").label(t) == "6 tháng cuối năm 2026"
    assert Period.parse("2026").label(t) == "năm 2026"


@pytest.mark.parametrize(
    ("typed", "key"),
    [(" 2026-h1 ", "2026-H1"), ("2026 - H2", "2026-H2"), ("2026-w7", "2026-W07"), ("2026-3", "2026-03")],
)
def test_parse_forgives_case_spaces_and_a_missing_zero(typed: str, key: str) -> None:
    assert Period.parse(typed).key == key


@pytest.mark.parametrize(
    "key",
    ["", "26", "2026-", "H1-2026", "2026-H0", "2026-H3", "2026-00", "2026-13", "2026-W00", "2025-W53",
     "2026-W54", "2026-2028", "2026-Q1", "0000", "2026-H1-2"],
)  # fmt: skip
def test_parse_rejects(key: str) -> None:
    with pytest.raises(ValueError):
        Period.parse(key)


@pytest.mark.parametrize(
    ("kind", "year", "number"),
    [
        ("quarter", 2026, 1),
        ("month", 2026, 0),
        ("month", 2026, 13),
        ("half_year", 2026, 0),
        ("year", 2026, 1),
        ("week", 2025, 53),
    ],
)
def test_a_period_that_does_not_exist_cannot_be_made(kind: str, year: int, number: int) -> None:
    with pytest.raises(ValueError):
        Period(kind, year, number)


def test_what_a_report_is_compared_with() -> None:
    """The rules' prev(): H1 with last year's H2 (else last year), H2 with H1, a year with the year
    before (else its H2)."""
    village = ("half_year", "year")
    assert keys(Period.parse("2026-H1").preceding(village)) == ["2025-H2", "2025"]
    assert keys(Period.parse("2026-H2").preceding(village)) == ["2026-H1"]
    assert keys(Period.parse("2026").preceding(village)) == ["2025", "2025-H2"]
    assert keys(Period.parse("2026").preceding(("year",))) == ["2025"]


def test_the_fraction_of_a_year() -> None:
    assert [Period.containing(k, date(2026, 5, 1)).fraction_of_year for k in PERIOD_KINDS] == [
        7 / 365,
        1 / 12,
        0.5,
        1.0,
        1.0,
    ]


# ---- properties ---------------------------------------------------------------------------------


@PROPERTY
@given(periods)
def test_key_parse_round_trips(period: Period) -> None:
    assert Period.parse(period.key) == period
    assert Period.parse(f" {period.key.lower()} ") == period


@PROPERTY
@given(kinds, days)
def test_the_period_containing_a_day_contains_it(kind: str, day: date) -> None:
    period = Period.containing(kind, day)
    assert period.kind == kind
    assert period.start <= day <= period.end
    assert period.contains(day)
    assert not period.contains(period.start - timedelta(days=1))
    assert not period.contains(period.end + timedelta(days=1))
    assert Period.containing(kind, period.start) == period == Period.containing(kind, period.end)


@PROPERTY
@given(periods)
def test_next_and_previous_tile_the_calendar(period: Period) -> None:
    assert period.next().start == period.end + timedelta(days=1)
    assert period.previous().end == period.start - timedelta(days=1)
    assert period.next().previous() == period == period.previous().next()
    assert period.previous() < period < period.next()  # within a kind, order is time order
    assert period.previous().key < period.key < period.next().key  # and so is the keys' order


@PROPERTY
@given(periods)
def test_a_period_spans_its_fraction_of_a_year(period: Period) -> None:
    length = (period.end - period.start).days + 1
    assert abs(length / 365 - period.fraction_of_year) < 0.01
    if KINDS[period.kind].months == 0:
        assert length == 7


@PROPERTY
@given(periods, st.lists(kinds, unique=True))
def test_the_preceding_periods_end_the_day_before(period: Period, others: list[str]) -> None:
    preceding = period.preceding(others)
    day_before = period.start - timedelta(days=1)
    assert preceding[0] == period.previous()
    assert all(p.end == day_before for p in preceding)
    expected = {k for k in others if Period.containing(k, day_before).end == day_before} - {period.kind}
    assert [p.kind for p in preceding[1:]] == [k for k in others if k in expected]


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("6 tháng đầu năm 2025", "2025-H1"),
        ("6 thang dau nam 2025", "2025-H1"),
        ("6 tháng đầu 2025", "2025-H1"),
        ("First half of 2025", "2025-H1"),
        ("H1 2025", "2025-H1"),
        ("6 tháng cuối năm 2024", "2024-H2"),
        ("Second half of 2024.", "2024-H2"),
        ("năm 2025", "2025"),
        ("Cả năm 2025", "2025"),
        ("Year 2025", "2025"),
    ],
)
def test_a_half_year_or_a_year_typed_in_words(typed: str, key: str) -> None:
    assert period_in_words(typed) == Period.parse(key)


@pytest.mark.parametrize("typed", ["2025-H1", "tháng 6 năm 2025", "năm ngoái", "6 tháng đầu năm", ""])
def test_other_text_is_no_period_in_words(typed: str) -> None:
    assert period_in_words(typed) is None
