"""Reporting periods: "2026-H1", "2026-H2" (half-years) and "2026" (a year)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.domain.i18n import Translator

_PERIOD = re.compile(r"^(\d{4})(?:-H([12]))?$")


@dataclass(frozen=True, slots=True)
class Period:
    year: int
    half: int | None = None  # 1, 2, or None for the whole year

    @property
    def key(self) -> str:
        return f"{self.year}-H{self.half}" if self.half else str(self.year)

    @property
    def kind(self) -> str:
        return "half_year" if self.half else "year"

    @property
    def start(self) -> date:
        return date(self.year, 7, 1) if self.half == 2 else date(self.year, 1, 1)

    @property
    def end(self) -> date:
        return date(self.year, 6, 30) if self.half == 1 else date(self.year, 12, 31)

    def previous(self) -> Period:
        if self.half == 2:
            return Period(self.year, 1)
        if self.half == 1:
            return Period(self.year - 1, 2)
        return Period(self.year - 1)

    def preceding(self) -> list[Period]:
        """The periods that end the day before this one starts, the same kind first: what a
        report for this period is compared with (a stock's change, the fund's opening balance)."""
        if self.half == 2:
            return [Period(self.year, 1)]
        if self.half == 1:
            return [Period(self.year - 1, 2), Period(self.year - 1)]
        return [Period(self.year - 1), Period(self.year - 1, 2)]

    def label(self, t: Translator) -> str:
        if self.half == 1:
            return t("First half of {year}", year=self.year)
        if self.half == 2:
            return t("Second half of {year}", year=self.year)
        return t("Year {year}", year=self.year)

    @classmethod
    def parse(cls, key: str) -> Period:
        m = _PERIOD.match(key.strip().upper())
        if not m:
            raise ValueError(f"not a period: {key!r}")
        return cls(int(m.group(1)), int(m.group(2)) if m.group(2) else None)


def current_half_year(today: date) -> Period:
    return Period(today.year, 1 if today.month <= 6 else 2)


def period_choices(today: date, kinds: tuple[str, ...]) -> list[Period]:
    """The periods an officer may report, the default (the current half-year) first."""
    out: list[Period] = []
    current = current_half_year(today)
    if "half_year" in kinds:
        out += [current, current.previous()]
    if "year" in kinds:
        out.append(Period(today.year))
        if today.month <= 2:  # early in the year the previous year is still being closed
            out.append(Period(today.year - 1))
    return out
