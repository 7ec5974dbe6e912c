"""The period at a glance (the console's period view): one line per sub-unit of a compiled report.

Nothing is counted again here: every number comes from the compiled report
(`bot/reports/aggregate.py`, one query per part), and this module only says what the console
shows of it — the reporting state of each sub-unit, completeness and timeliness as DHIS2 defines
them (expected reports, actual reports, reports on time), the review state, the key rates against
the targets with a level, and the geometry of the progress chart (inline SVG, drawn by the
template).

Levels (the legend on the page says the same): a rate at or above its target is `ok`, at 80% of
it or more `warn`, below that `bad`; a rate with no target or nothing to compute it from has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.domain.i18n import N_, Translator
from bot.reports.aggregate import RATES, Compiled, Figures, Rate, Row, UnitRef, progress, target_for
from bot.reports.labels import format_rate, indicator_label, rate_label
from storage.models import VILLAGE_KINDS

Level = Literal["ok", "warn", "bad", ""]
State = Literal["on_time", "late", "missing", "not_due"]
Review = Literal["approved", "waiting", "returned", ""]

WARN_SHARE = 80.0  # percent of the target: at or above it a rate is `warn`, below it `bad`
FILTERS = ("all", "missing", "late", "waiting", "returned")
FILTER_LABELS = {
    "all": N_("All"),
    "missing": N_("Not reported"),
    "late": N_("Late"),
    "waiting": N_("Waiting for review"),
    "returned": N_("Returned"),
}
STATE_LABELS = {
    "on_time": N_("On time"),
    "late": N_("Late"),
    "missing": N_("Missing"),
    "not_due": N_("Not yet reported"),
}
REVIEW_LABELS = {"approved": N_("Approved"), "waiting": N_("Waiting"), "returned": N_("Returned")}


def level(share: float | None) -> Level:
    """The colour of a rate that reached `share` percent of its target."""
    if share is None:
        return ""
    if share >= 100.0:
        return "ok"
    return "warn" if share >= WARN_SHARE else "bad"


@dataclass(frozen=True, slots=True)
class RateCell:
    key: str
    value: float | None  # percent, or đồng per person
    target: float | None
    share: float | None  # percent of the target reached (100 = reached)
    level: Level


@dataclass(frozen=True, slots=True)
class Line:
    """One sub-unit (a village of a commune, a commune of a province, a province of the country)."""

    unit: UnitRef
    figures: Figures
    leaf: bool  # a reporting unit (a village): a state, not counts
    state: State | None  # leaf lines only
    review: Review  # leaf lines only
    late: int
    missing: int
    rates: tuple[RateCell, ...]
    tags: frozenset[str]  # the filters the line matches ("missing", "late", "waiting", "returned")

    @property
    def completeness(self) -> float | None:
        return self.figures.completeness

    @property
    def timeliness(self) -> float | None:
        return self.figures.timeliness


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of the progress chart: a sub-unit's share of the target for one rate."""

    unit: UnitRef
    y: int
    width: float  # in px (0: no figure)
    share: float | None
    level: Level
    label: str  # the value shown beside the bar


@dataclass(frozen=True, slots=True)
class Chart:
    """Progress towards the target of one rate, one horizontal bar per sub-unit (inline SVG)."""

    key: str
    title: str
    bars: tuple[Bar, ...]
    target_x: float  # where 100% of the target is
    width: int
    height: int
    label_width: int
    plot_width: int
    scale_max: float  # the share (percent) at the right edge
    ticks: tuple[tuple[float, str], ...]  # (x, label)


@dataclass(frozen=True, slots=True)
class Overview:
    compiled: Compiled
    lines: tuple[Line, ...]
    total: Line
    overdue: bool  # the period's due date has passed: an unreported unit is missing, not early
    rates: tuple[Rate, ...]  # the rate columns, in order
    charts: tuple[Chart, ...]

    @property
    def leaf(self) -> bool:
        return self.compiled.leaf_rows


def rate_cells(c: Compiled, figures: Figures, row: Row | None) -> tuple[RateCell, ...]:
    targets = row.targets if row is not None else c.targets
    cells = []
    for rate in RATES:
        share = progress(figures, rate, targets, c.period)
        cells.append(
            RateCell(
                rate.key, figures.rate(rate.key), target_for(rate, targets, c.period), share, level(share)
            )
        )
    return tuple(cells)


def _line(c: Compiled, unit: UnitRef, figures: Figures, row: Row | None, overdue: bool) -> Line:
    leaf = unit.kind in VILLAGE_KINDS and row is not None
    late = max(figures.reported - figures.on_time, 0)
    missing = max(figures.expected - figures.reported, 0)
    tags: set[str] = set()
    if missing:
        tags.add("missing")
    if late:
        tags.add("late")
    if figures.waiting > 0:
        tags.add("waiting")
    if figures.returned:
        tags.add("returned")
    state: State | None = None
    review: Review = ""
    if leaf:
        if figures.reported:
            state = "late" if late else "on_time"
            review = "approved" if figures.approved else ("returned" if figures.returned else "waiting")
        else:
            state = "missing" if overdue else "not_due"
    return Line(
        unit, figures, leaf, state, review, late, missing, rate_cells(c, figures, row), frozenset(tags)
    )


CHART_WIDTH = 760
LABEL_WIDTH = 190
VALUE_WIDTH = 110
BAR_HEIGHT = 14
BAR_GAP = 6
AXIS_HEIGHT = 22


def _chart(c: Compiled, lines: tuple[Line, ...], index: int, t: Translator) -> Chart:
    rate = RATES[index]
    plot = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    shares = [s for line in lines if (s := line.rates[index].share) is not None]
    # The scale reaches past the target line, and past the best unit up to twice the target.
    scale_max = max(125.0, min(max(shares, default=0.0), 200.0))
    scale_max = 25.0 * -(-scale_max // 25.0)
    bars = []
    for i, line in enumerate(lines):
        cell = line.rates[index]
        share = cell.share
        width = 0.0 if share is None else plot * min(share, scale_max) / scale_max
        if cell.value is None:
            label = t("no figures")
        elif share is None:
            label = format_rate(t, rate.key, cell.value)
        else:
            label = t.percent(share)
        bars.append(Bar(line.unit, AXIS_HEIGHT + i * (BAR_HEIGHT + BAR_GAP), width, share, cell.level, label))
    ticks = tuple(
        (LABEL_WIDTH + plot * v / scale_max, t.percent(v)) for v in range(0, int(scale_max) + 1, 25)
    )
    return Chart(
        key=rate.key,
        title=rate_label(t, rate.key, c.rate_period(rate.key), c.period),
        bars=tuple(bars),
        target_x=LABEL_WIDTH + plot * 100.0 / scale_max,
        width=CHART_WIDTH,
        height=AXIS_HEIGHT + max(len(lines), 1) * (BAR_HEIGHT + BAR_GAP) + 4,
        label_width=LABEL_WIDTH,
        plot_width=plot,
        scale_max=scale_max,
        ticks=ticks,
    )


def overview(c: Compiled, t: Translator, now: datetime) -> Overview:
    """The period view of a compiled report, for the staff reading it at `now`."""
    overdue = c.deadline is not None and now > c.deadline.due_at(c.period)
    lines = tuple(_line(c, row.unit, row.figures, row, overdue) for row in c.rows)
    total_unit = c.unit or UnitRef(0, t("Whole country"), "country", None, "/", None)
    total = _line(c, total_unit, c.total, None, overdue)
    charts = tuple(_chart(c, lines, i, t) for i in range(len(RATES)))
    return Overview(c, lines, total, overdue, RATES, charts)


def rate_header(c: Compiled, t: Translator, rate: Rate) -> str:
    """A rate column's header: the indicator, and the period it is recognised in when carried."""
    return rate_label(t, rate.key, c.rate_period(rate.key), c.period)


def cell_title(t: Translator, cell: RateCell) -> str:
    """The tooltip of a rate cell: its target and how far towards it."""
    if cell.target is None:
        return t("No target")
    if cell.share is None:
        return t("Target {target}", target=format_rate(t, cell.key, cell.target))
    return t(
        "target {target}, {share} of it",
        target=format_rate(t, cell.key, cell.target),
        share=t.percent(cell.share),
    )


__all__ = [
    "FILTERS",
    "FILTER_LABELS",
    "REVIEW_LABELS",
    "STATE_LABELS",
    "Chart",
    "Line",
    "Overview",
    "cell_title",
    "indicator_label",
    "level",
    "overview",
    "rate_header",
]
