"""Which earlier reports a per-period report is read against (DOMAIN.md, "Corrections and
additions": report periods and the recognition cycle).

- prev(x) of a stock (a `carry_over` field: households, clans, members) is the unit's latest
  report before this one: a year report compares its households with the half-year filed in
  June.
- prev(x) of anything else (flows such as money raised, counts of the year such as recognised
  households, and the rates built on them) is the same period one year earlier: H1 with last
  year's H1, a year with last year, so that a half-year's registrations are never compared with
  a year's recognitions.
- opening(x) is the report of the period that ends the day before this one starts: the fund's
  opening balance is last year's closing balance, for the half-year and for the year alike.
- A field asked only in some period kinds (`ask_in`) shows, elsewhere, the unit's figure from
  the latest period of those kinds that has ended (`carried_source`).

Nothing here reads the database: the functions say which periods to look up, newest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from bot.domain.forms.model import Field, Form
from bot.domain.periods import KINDS, Period

STOCK_LOOKBACK = 4  # how many earlier periods a stock's "latest report" is looked for in


def same_kind_a_year_earlier(period: Period) -> Period:
    """The period of the same kind one year before: 2026-H1 → 2025-H1, 2026 → 2025."""
    spec = KINDS[period.kind]
    if spec.months == 0:
        return Period.containing(period.kind, period.start - timedelta(weeks=52))
    earlier = period
    for _ in range(max(spec.per_year, 1)):
        earlier = earlier.previous()
    return earlier


def _ended_before(kind: str, day: date) -> Period:
    """The last period of `kind` that ends before `day`."""
    candidate = Period.containing(kind, day - timedelta(days=1))
    while candidate.end >= day:
        candidate = candidate.previous()
    return candidate


def _newest_first(periods: Iterable[Period]) -> list[Period]:
    """By end date, newest first; of two ending the same day the longer one first."""
    return sorted(set(periods), key=lambda p: (-p.end.toordinal(), p.start.toordinal()))


def stock_sources(period: Period, kinds: Iterable[str]) -> list[Period]:
    """Where a stock's previous figure is looked for: the periods of `kinds` that end before
    `period` ends, newest first (2026 → 2026-H1, then 2025 …; 2026-H1 → 2025 …)."""
    found: list[Period] = []
    for kind in kinds:
        earlier = _ended_before(kind, period.end + timedelta(days=1))
        if earlier == period:
            earlier = earlier.previous()
        for _ in range(STOCK_LOOKBACK):
            if earlier.end < period.end:
                found.append(earlier)
            earlier = earlier.previous()
    return _newest_first(found)[:STOCK_LOOKBACK]


def opening_sources(period: Period, kinds: Iterable[str]) -> list[Period]:
    """The periods of `kinds` that end the day before `period` starts, the same kind first
    (2026-H1 → 2025-H2, 2025; 2026 → 2025, 2025-H2): Period.preceding."""
    day = period.start - timedelta(days=1)
    return [p for p in period.preceding(kinds) if p.end == day]


def carried_source(period: Period, ask_in: Iterable[str]) -> Period | None:
    """Where a field asked only in `ask_in` kinds is carried from in `period`: the latest
    period of those kinds that has ended before `period` starts (2026-H1 → 2025 for a figure
    asked in the year report); None when the field is asked in `period` itself."""
    kinds = tuple(ask_in)
    if not kinds or period.kind in kinds:
        return None
    return _newest_first(_ended_before(kind, period.start) for kind in kinds)[0]


def previous_values(
    form: Form, period: Period, reports: Mapping[str, Mapping[str, object]]
) -> dict[str, object]:
    """What prev(x) reads for each field, from `reports` (the unit's reports by period key)."""
    out: dict[str, object] = {}
    for f in form.fields:
        for source in prev_sources(form, f, period):
            found = reports.get(source.key)
            if found is not None:
                out[f.key] = found.get(f.key)
                break
    return out


def prev_sources(form: Form, f: Field, period: Period) -> list[Period]:
    """Where prev(f) is looked for, first found wins."""
    if f.carry_over:
        return stock_sources(period, f.ask_in or form.period_kinds)
    return [same_kind_a_year_earlier(period)]


def needed_periods(form: Form, period: Period) -> list[Period]:
    """Every earlier period whose report the rules or the carried figures of `period` may read."""
    wanted: list[Period] = list(opening_sources(period, form.period_kinds))
    for f in form.fields:
        wanted += prev_sources(form, f, period)
        source = carried_source(period, f.ask_in) if f.carried else None
        if source is not None:
            wanted.append(source)
    return _newest_first(wanted)


def first_found(
    periods: Iterable[Period], reports: Mapping[str, Mapping[str, object]]
) -> Mapping[str, object]:
    """The values of the first of `periods` that has a report; empty when none has."""
    for p in periods:
        found = reports.get(p.key)
        if found is not None:
            return found
    return {}
