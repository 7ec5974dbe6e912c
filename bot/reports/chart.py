"""Charts for phones: one PNG per indicator, vertical bars sorted by value (matplotlib, Agg).

Each chart is drawn for a screen 390 px wide: the figure is WIDTH_IN inches wide and no text is
smaller than MIN_FONT_PT, so at 390 CSS px (the image shown across a phone's chat) every text is
at least 11 px high (tests/test_chart_on_phone.py measures it in Chromium). That leaves room for
about MAX_SLOTS bars: above that the highest and the lowest are drawn, with a slot saying how many
lie between (the spreadsheet lists them all).

A sub-unit without a report gets a labelled empty slot, not a 0 bar; a target is a line (one across
the chart when every sub-unit has the same target, else one over each bar: disadvantaged communes
have lower targets). In a half-year report the recognised rates are last year's (titles are
recognised at year end): the title says so, and a thin blue bar beside each one shows this year's
registrations.

A Figure with its own Agg canvas keeps no global state, so charts can be drawn in a worker thread.
Names are data: every text is drawn with parse_math=False, so "Thôn $\\x$" is no mathtext.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.domain.i18n import Translator
from bot.domain.parsing import fold
from bot.domain.text import clean_name
from bot.reports.aggregate import RATE_BY_KEY, REGISTRATION_OF, Compiled, Figures, target_for
from bot.reports.labels import formal_name, indicator_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

CONTENT_TYPE = "image/png"
CHART_RATES = ("learning_families", "learning_clans", "learning_communities", "membership")
WIDTH_IN = 4.0  # 288 pt across: 390 CSS px shows 1.35 px per point
DPI = 200  # 800 px wide: sharp on phones with two device pixels per CSS pixel
MIN_FONT_PT = 10.0  # 13.5 px at 390 CSS px, still 11 px when the picture is shown 320 px wide
TITLE_FONT_PT = 12.5
MAX_SLOTS = 18  # one 10 pt label each across 240 pt of plot
MAX_NAMED_MISSING = 3  # more sub-units without a report share one slot
NAME_CHARS = 22
PLOT_IN = 2.7
REACHED, SHORT, TARGET, EMPTY, REGISTERED = "#2e7d32", "#ef6c00", "#1a1a1a", "#757575", "#1565c0"
TEXT, MUTED = "#1b1f23", "#3d474f"
SlotKind = Literal["bar", "no_report", "no_figure", "more"]


@dataclass(frozen=True, slots=True)
class Slot:
    """One place along the axis: a sub-unit's bar, an empty slot, or the ones not drawn."""

    label: str
    kind: SlotKind
    value: float | None = None
    target: float | None = None
    registered: float | None = None


@dataclass(frozen=True, slots=True)
class Chart:
    """One indicator's chart: its key, the file name's ending and the PNG."""

    key: str
    slug: str
    png: bytes


def panel_title(c: Compiled, t: Translator, key: str) -> str:
    """A chart's title; for a carried rate, which period it was recognised in and that the
    blue bars are this period's registrations."""
    source = c.rate_period(key)
    if source == c.period:
        return indicator_label(t, key)
    title = indicator_label(t, key) + "\n" + t("recognised: {period}", period=source.label(t))
    if key in REGISTRATION_OF:
        title += "\n" + t("blue: registered, {period}", period=c.period.label(t))
    return title


def chart_text(text: str) -> str:
    """A name as the chart draws it: plain text (names are drawn with parse_math=False, so
    "Thôn $\\x$" is no mathtext), without characters no font has a glyph for."""
    return clean_name(text)


def short_name(name: str) -> str:
    name = chart_text(name)
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1].rstrip() + "…"


def slug(t: Translator, key: str) -> str:
    """'gia-dinh-hoc-tap': the indicator in a file name, ASCII."""
    return re.sub(r"[^a-z0-9]+", "-", fold(indicator_label(t, key))).strip("-")


def slots(c: Compiled, t: Translator, key: str) -> list[Slot]:
    """The chart's slots, highest value first; sub-units without a report at the end."""
    rate = RATE_BY_KEY[key]
    registration = REGISTRATION_OF.get(key) if key in c.carried_from else None

    def registered(f: Figures) -> float | None:
        return f.rate(registration.key) if registration is not None else None

    bars: list[Slot] = []
    no_figure: list[Slot] = []
    missing: list[str] = []
    for row in c.rows:
        f = row.figures
        name = short_name(row.unit.name)
        target = target_for(rate, row.targets, c.period)
        if not f.reported:
            missing.append(name)
        elif (value := f.rate(key)) is None:
            no_figure.append(Slot(name, "no_figure", target=target, registered=registered(f)))
        else:
            bars.append(Slot(name, "bar", value, target, registered(f)))
    bars.sort(key=lambda s: -(s.value or 0.0))
    if len(missing) > MAX_NAMED_MISSING:
        tail = [Slot(t("{count} not reported", count=t.number(len(missing))), "no_report")]
    else:
        tail = [Slot(name, "no_report") for name in missing]
    shown = bars + no_figure
    room = MAX_SLOTS - len(tail)
    if len(shown) > room:
        head = room // 2
        foot = room - 1 - head
        hidden = len(shown) - head - foot
        shown = [*shown[:head], Slot(t("… {count} more", count=t.number(hidden)), "more"), *shown[-foot:]]
    return shown + tail


def _text_width(renderer: RendererAgg, text: str, prop: FontProperties) -> float:
    width, _h, _d = renderer.get_text_width_height_descent(text, prop, ismath=False)  # type: ignore[no-untyped-call]
    return float(width)


def wrap(renderer: RendererAgg, text: str, prop: FontProperties, max_px: float) -> list[str]:
    """`text` broken into lines no wider than `max_px` as drawn (a longer word stays whole).
    Each word is measured once and a line is the sum of its words and spaces: measuring every
    candidate line cost most of the drawing time, and kerning across a space changes little."""
    space = _text_width(renderer, "a a", prop) - _text_width(renderer, "aa", prop)
    widths: dict[str, float] = {}
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line, used = "", 0.0
        for word in paragraph.split(" "):
            if word not in widths:
                widths[word] = _text_width(renderer, word, prop)
            width = widths[word]
            if line and used + space + width > max_px:
                lines.append(line)
                line, used = word, width
            elif line:
                line, used = f"{line} {word}", used + space + width
            else:
                line, used = word, width
        lines.append(line)
    return lines


def scale_top(highest: float, per_person: bool) -> float:
    """The top of the value axis: 100% once a bar or target reaches 60%, else the next ten above
    the highest (membership rates of 10–30% would be slivers on a 100% axis); money: a round
    number above the highest."""
    if per_person:
        step = 10 ** max(0, len(str(int(max(highest, 1.0)))) - 1)
        return float(math.ceil(highest * 1.1 / step) * step) or 1.0
    if highest >= 60.0:
        return 100.0
    return float(max(10, math.ceil(highest * 1.1 / 10) * 10))


def _value_text(t: Translator, key: str, value: float) -> str:
    if RATE_BY_KEY[key].per_person:
        return t.number(round(value))
    return t.percent(round(value))


def build_figure(c: Compiled, t: Translator, key: str, dpi: int = DPI) -> Figure:
    """One indicator's chart as a Figure (exposed for the legibility tests)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    rate = RATE_BY_KEY[key]
    fig = Figure(figsize=(WIDTH_IN, 6.0), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    small = FontProperties(size=MIN_FONT_PT)
    bold = FontProperties(size=MIN_FONT_PT, weight="bold")
    big = FontProperties(size=TITLE_FONT_PT, weight="bold")
    px_per_in = float(dpi)
    text_px = (WIDTH_IN - 0.3) * px_per_in

    # The header: the indicator, the unit and period, where carried figures come from, the total.
    where = formal_name(c.unit) if c.unit else t("Whole country")
    title, *notes = panel_title(c, t, key).splitlines()
    total = c.total.rate(key)
    target = target_for(rate, c.targets, c.period)
    if total is None:
        total_line = t("All together: no figure")
    elif target is None:
        total_line = t("All together: {value}", value=_value_text(t, key, total))
    else:
        total_line = t(
            "All together: {value}; target {target}",
            value=_value_text(t, key, total),
            target=_value_text(t, key, target),
        )
    header: list[tuple[str, FontProperties, str]] = []
    header += [(line, big, TEXT) for line in wrap(renderer, chart_text(title), big, text_px)]
    subtitle = chart_text(f"{where} — {c.period.label(t)}")
    header += [(line, small, MUTED) for line in wrap(renderer, subtitle, small, text_px)]
    for note in notes:
        header += [(line, small, MUTED) for line in wrap(renderer, note, small, text_px)]
    header += [(line, bold, TEXT) for line in wrap(renderer, total_line, bold, text_px)]

    shown = slots(c, t, key)
    carried = key in c.carried_from and key in REGISTRATION_OF
    legend = t("Bars: highest first (green: target reached, orange: not yet). Black line: the target.")
    if carried:
        legend += " " + t("Thin blue bar: registered in this period (titles are recognised at year end).")
    if any(s.kind == "more" for s in shown):
        legend += " " + t("The spreadsheet lists every unit.")
    footer = wrap(renderer, legend, small, text_px)

    # Heights in inches, top to bottom; the figure is as tall as its parts.
    line_in = MIN_FONT_PT * 1.3 / 72
    title_in = TITLE_FONT_PT * 1.3 / 72
    header_in = sum(title_in if prop is big else line_in for _l, prop, _c in header)
    labels_px = max([_text_width(renderer, s.label, small) for s in shown] or [0.0])
    labels_in = labels_px / px_per_in + 0.12
    footer_in = len(footer) * line_in
    top_pad, gap, bottom_pad = 0.12, 0.14, 0.1
    height = top_pad + header_in + gap + PLOT_IN + labels_in + gap + footer_in + bottom_pad
    fig.set_size_inches(WIDTH_IN, height)

    y = height - top_pad
    for line, prop, colour in header:
        step = title_in if prop is big else line_in
        fig.text(
            0.15 / WIDTH_IN, y / height, line, fontproperties=prop, color=colour, va="top", parse_math=False
        )
        y -= step
    for n, line in enumerate(footer):
        at = bottom_pad + footer_in - n * line_in
        fig.text(
            0.15 / WIDTH_IN, at / height, line, fontproperties=small, color=MUTED, va="top", parse_math=False
        )

    left, right = 0.62, 0.12
    bottom = bottom_pad + footer_in + gap + labels_in
    ax = fig.add_axes(
        ((left / WIDTH_IN), bottom / height, (WIDTH_IN - left - right) / WIDTH_IN, PLOT_IN / height)
    )
    _draw(ax, t, key, shown, carried)
    return fig


def png_of(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=fig.dpi)
    return out.getvalue()


def _draw(ax: Axes, t: Translator, key: str, shown: list[Slot], carried: bool) -> None:
    per_person = RATE_BY_KEY[key].per_person
    values = [s.value for s in shown if s.value is not None]
    targets = [s.target for s in shown if s.target is not None]
    top = scale_top(max([*values, *targets, 0.0]), per_person)
    head = top * 0.24  # room above the highest bar for its value, written upwards
    n = len(shown)
    xs = list(range(n))
    ax.set_xlim(-0.6, max(n, 1) - 0.4)
    ax.set_ylim(0, top + head)
    main_w, main_dx = (0.56, -0.11) if carried else (0.7, 0.0)
    for x, s in zip(xs, shown, strict=True):
        if s.kind == "bar" and s.value is not None:
            value = min(s.value, top)
            colour = REACHED if s.target is not None and s.value >= s.target else SHORT
            ax.bar(x + main_dx, value, width=main_w, color=colour, zorder=2)
            ax.text(
                x + main_dx,
                value + top * 0.015,
                _value_text(t, key, s.value),
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=MIN_FONT_PT,
                color=TEXT,
                parse_math=False,
                zorder=4,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.5},
            )
        elif s.kind in ("no_report", "no_figure"):
            ax.bar(
                x,
                top,
                width=0.8,
                color="none",
                edgecolor=EMPTY,
                linestyle=(0, (3, 2)),
                linewidth=0.8,
                zorder=1,
            )
            ax.text(
                x,
                top * 0.03,
                t("not reported") if s.kind == "no_report" else t("no figure"),
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=MIN_FONT_PT,
                color=EMPTY,
                parse_math=False,
            )
        if carried and s.registered is not None and s.kind in ("bar", "no_figure"):
            ax.bar(x + 0.3, min(s.registered, top), width=0.18, color=REGISTERED, zorder=3)
    targets_here = {s.target for s in shown if s.target is not None and s.kind != "more"}
    if len(targets_here) == 1:  # its value is in the header
        ax.axhline(next(iter(targets_here)), color=TARGET, linewidth=1.6, zorder=3)
    elif targets_here:
        marks = [(x, s.target) for x, s in zip(xs, shown, strict=True) if s.target is not None]
        ax.hlines(
            [m[1] for m in marks],
            [m[0] - 0.45 for m in marks],
            [m[0] + 0.45 for m in marks],
            colors=TARGET,
            linewidth=1.8,
            zorder=5,
        )
    ticks = [0.0, top / 2, top]
    ax.set_yticks(ticks, [_value_text(t, key, v) for v in ticks], fontsize=MIN_FONT_PT)
    ax.set_yticks([top / 4, 3 * top / 4], minor=True)
    ax.tick_params(axis="y", which="minor", length=2)
    ax.set_xticks(xs, [s.label for s in shown], rotation=90, fontsize=MIN_FONT_PT, parse_math=False)
    for label, s in zip(ax.get_xticklabels(), shown, strict=True):
        if s.kind in ("no_report", "more"):
            label.set_color(MUTED)
            label.set_fontstyle("italic")
    ax.tick_params(axis="x", length=0, pad=4)
    ax.grid(axis="y", which="both", linestyle=":", linewidth=0.6, alpha=0.7, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def render_charts(c: Compiled, t: Translator, dpi: int = DPI) -> list[Chart]:
    """The charts of a compiled report, one per indicator (CHART_RATES)."""
    return [Chart(key, slug(t, key), png_of(build_figure(c, t, key, dpi))) for key in CHART_RATES]
