"""Reporting periods: one type for every kind a form, a deadline or a compiled report uses.

A period is a kind, a year and a number within the year, and is stored under its key:

    week         2026-W07    ISO week 7 (Monday to Sunday; the year is the ISO year)
    month        2026-03     March 2026
    half_year    2026-H1     January–June 2026 (2026-H2: July–December)
    year         2026        the calendar year
    school_year  2026-2027   1 September 2026 – 31 August 2027

Submissions, notices and compiled reports are stored under the key, so a key never changes
meaning. The kinds are the table `KINDS` (length in months, the month the first one of a year
starts in, the shape of the key); start, end, next, previous and the period containing a day are
derived from it, so a new kind is a row of the table (with its label). Which kinds a form is
reported for, and which periods of a kind (the village report: the first half-year and the
year, no second half-year), is data: `period_kinds` in the form's YAML and content/schedules.yaml
(bot/domain/schedules.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from bot.domain.i18n import N_, Translator
from bot.domain.parsing import fold


@dataclass(frozen=True, slots=True)
class PeriodKind:
    """How the periods of one kind divide the calendar and how their keys are written."""

    name: str
    months: int  # the length of one period; 0: ISO weeks
    key: str  # str.format pattern over year, number and next_year
    suffix: str  # what follows the year in a key, as a regex ("number" / "next_year" groups)
    # How people read a period (msgids, N_): one for every period, or one per number. They may
    # use {year}, {number}, {next_year}, {start} and {end} (dates); {week} and {month} = number.
    labels: tuple[str, ...]
    first_month: int = 1  # the month the first period of a year starts in

    @property
    def per_year(self) -> int:
        """How many periods of the kind a year has; 0 for ISO weeks (a year has 52 or 53)."""
        return 12 // self.months if self.months else 0


KINDS: dict[str, PeriodKind] = {
    k.name: k
    for k in (
        PeriodKind(
            "week",
            0,
            "{year}-W{number:02d}",
            r"-W(?P<number>\d{1,2})",
            (N_("Week {week} of {year} ({start}–{end})"),),
        ),
        PeriodKind("month", 1, "{year}-{number:02d}", r"-(?P<number>\d{1,2})", (N_("Month {month}/{year}"),)),
        PeriodKind(
            "half_year",
            6,
            "{year}-H{number}",
            r"-H(?P<number>[12])",
            (N_("First half of {year}"), N_("Second half of {year}")),
        ),
        PeriodKind("year", 12, "{year}", "", (N_("Year {year}"),)),
        PeriodKind(
            "school_year",
            12,
            "{year}-{next_year}",
            r"-(?P<next_year>\d{4})",
            (N_("School year {year}–{next_year}"),),
            first_month=9,
        ),
    )
}
PERIOD_KINDS: tuple[str, ...] = tuple(KINDS)


def _key_patterns() -> list[tuple[PeriodKind, re.Pattern[str]]]:
    """The key pattern of every kind of KINDS (read each time: a kind added later is known)."""
    return [(kind, _pattern(kind.suffix)) for kind in KINDS.values()]


@lru_cache(maxsize=64)
def _pattern(suffix: str) -> re.Pattern[str]:
    return re.compile(r"(?P<year>\d{4})" + suffix)


def _first_of_month(year: int, month_index: int) -> date:
    """The first day of the `month_index`-th month counted from January of `year` (0-based)."""
    return date(year + month_index // 12, month_index % 12 + 1, 1)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One period of one kind. `number`: the ISO week, the month, the half (1–2); 0 for a kind
    with one period a year (the year, the school year)."""

    kind: str
    year: int
    number: int = 0

    def __post_init__(self) -> None:
        spec = KINDS.get(self.kind)
        if spec is None:
            raise ValueError(f"unknown period kind {self.kind!r}")
        if not 1 <= self.year <= 9998:
            raise ValueError(f"no {self.kind} in the year {self.year}")
        if spec.months == 0:
            date.fromisocalendar(self.year, self.number, 1)  # ValueError for a week the year lacks
        elif not (self.number == 0 if spec.per_year == 1 else 1 <= self.number <= spec.per_year):
            raise ValueError(f"no {self.kind} {self.number} in {self.year}")

    @property
    def _spec(self) -> PeriodKind:
        return KINDS[self.kind]

    @property
    def key(self) -> str:
        return self._spec.key.format(year=self.year, number=self.number, next_year=self.year + 1)

    @property
    def _index(self) -> int:
        """Which period of its year this is, from 0 (month-based kinds)."""
        return max(self.number - 1, 0)

    @property
    def start(self) -> date:
        spec = self._spec
        if spec.months == 0:
            return date.fromisocalendar(self.year, self.number, 1)
        return _first_of_month(self.year, spec.first_month - 1 + self._index * spec.months)

    @property
    def end(self) -> date:
        return self.next().start - timedelta(days=1)

    @property
    def fraction_of_year(self) -> float:
        """How much of a year the period spans: flow targets (money raised) scale with it."""
        months = self._spec.months
        return months / 12 if months else 7 / 365

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def _step(self, by: int) -> Period:
        spec = self._spec
        if spec.months == 0:
            return Period.containing(self.kind, self.start + timedelta(days=7 * by))
        year, index = divmod(self.year * spec.per_year + self._index + by, spec.per_year)
        return Period(self.kind, year, index + 1 if spec.per_year > 1 else 0)

    def next(self) -> Period:
        return self._step(1)

    def previous(self) -> Period:
        return self._step(-1)

    def preceding(self, kinds: Iterable[str]) -> list[Period]:
        """The periods of `kinds` that end the day before this one starts, this kind first: what a
        report for this period is compared with (a stock's change, the fund's opening balance).
        For half-years and years: H1 → [H2 and the year before]; H2 → [H1]; a year → [the year
        before, its H2]."""
        day = self.start - timedelta(days=1)
        out = [self.previous()]
        for kind in kinds:
            if kind != self.kind:
                other = Period.containing(kind, day)
                if other.end == day:
                    out.append(other)
        return out

    def label(self, t: Translator) -> str:
        labels = self._spec.labels
        return t(
            labels[self._index] if len(labels) > 1 else labels[0],
            year=self.year,
            number=self.number,
            week=self.number,
            month=self.number,
            next_year=self.year + 1,
            start=t.date(self.start),
            end=t.date(self.end),
        )

    @classmethod
    def parse(cls, key: str) -> Period:
        """'2026-W07', '2026-03', '2026-H1', '2026', '2026-2027' → a period; ValueError otherwise."""
        text = key.strip().upper().replace(" ", "")
        for kind, pattern in _key_patterns():
            m = pattern.fullmatch(text)
            if m is None:
                continue
            year, found = int(m["year"]), m.groupdict()
            if found.get("next_year") is not None and int(found["next_year"]) != year + 1:
                raise ValueError(f"not a {kind.name.replace('_', ' ')}: {key!r}")
            try:
                return cls(kind.name, year, int(found.get("number") or 0))
            except ValueError:
                raise ValueError(f"not a {kind.name.replace('_', ' ')}: {key!r}") from None
        raise ValueError(f"not a period: {key!r}")

    @classmethod
    def containing(cls, kind: str, day: date) -> Period:
        spec = KINDS.get(kind)
        if spec is None:
            raise ValueError(f"unknown period kind {kind!r}")
        if spec.months == 0:
            iso = day.isocalendar()
            return cls(kind, iso.year, iso.week)
        year, month = divmod(day.year * 12 + day.month - spec.first_month, 12)
        index = month // spec.months
        return cls(kind, year, index + 1 if spec.per_year > 1 else 0)


# The Vietnam Study Promotion Association was founded in 1996: no report of the movement is older.
FIRST_REPORT_YEAR = 1996


class PeriodOutOfRange(ValueError):
    """A period typed for a report that cannot exist: before FIRST_REPORT_YEAR, or not begun yet."""


# A half-year or a year typed in words, as the labels say it ("6 tháng đầu năm 2025",
# "Cả năm 2025", "First half of 2025", "Year 2025") and as people shorten it; folded first.
_WORDED: tuple[tuple[re.Pattern[str], str, int], ...] = (
    (re.compile(r"(?:6 thang dau|nua dau|first half|h1)(?: (?:nam|of|year))? (\d{4})"), "half_year", 1),
    (re.compile(r"(?:6 thang cuoi|nua cuoi|second half|h2)(?: (?:nam|of|year))? (\d{4})"), "half_year", 2),
    (re.compile(r"(?:ca nam|nam|year|the year|whole year|all of) (\d{4})"), "year", 0),
)


def period_in_words(text: str) -> Period | None:
    """A half-year or a year typed in words (Vietnamese, with or without diacritics, or English)."""
    folded = fold(text).strip(" .")
    for pattern, kind, number in _WORDED:
        m = pattern.fullmatch(folded)
        if m is not None:
            return Period(kind, int(m[1]), number)
    return None


def typed_report_period(text: str, today: date) -> Period:
    """A period a person typed for a compiled report ("6 tháng đầu năm 2025", "năm 2025", or the
    key: "2025-H1", "2025"): ValueError when it is no period, PeriodOutOfRange when it is one no
    report can cover. Bounded on both sides so that "9999" is answered, not carried into date
    arithmetic past the calendar's end."""
    period = period_in_words(text) or Period.parse(text)
    if period.year < FIRST_REPORT_YEAR or period.start > today:
        raise PeriodOutOfRange(f"no report for {period.key}: periods run from {FIRST_REPORT_YEAR} to today")
    return period
