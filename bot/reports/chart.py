"""A PNG of progress against the targets by sub-unit (matplotlib, Agg, no pyplot).

One panel per rate (learning families, clans, communities, membership), one bar per sub-unit and
one for the total, each with its own target mark: disadvantaged communes have lower targets.
In a half-year report the recognised rates are last year's (titles are recognised at year end):
their panels say so, and a thin blue line under each bar shows this year's registrations.
A Figure with its own Agg canvas keeps no global state, so charts can be drawn in a worker thread.
Names are data: every text that carries one is drawn with parse_math=False.
"""

from __future__ import annotations

import io

from bot.domain.i18n import Translator
from bot.domain.text import clean_name
from bot.reports.aggregate import RATE_BY_KEY, REGISTRATION_OF, Compiled, target_for
from bot.reports.labels import indicator_label

CONTENT_TYPE = "image/png"
CHART_RATES = ("learning_families", "learning_clans", "learning_communities", "membership")
MAX_BARS = 120  # beyond this the names become unreadable: the lowest and highest are kept
REACHED, SHORT, TARGET, EMPTY, REGISTERED = "#2e7d32", "#ef6c00", "#1a1a1a", "#9e9e9e", "#1565c0"


def panel_title(c: Compiled, t: Translator, key: str) -> str:
    """A panel's title; for a carried rate, which period it was recognised in and that the
    blue line is this period's registrations."""
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


def render_png(c: Compiled, t: Translator, dpi: int = 100) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = c.rows
    if len(rows) > MAX_BARS:
        ranked = sorted(rows, key=lambda r: r.figures.rate("learning_families") or -1.0)
        rows = ranked[: MAX_BARS // 2] + ranked[-MAX_BARS // 2 :]
    entries = [(t("Total"), c.total, c.targets, True)] + [
        (r.unit.name, r.figures, r.targets, False) for r in rows
    ]
    n = len(entries)
    height = max(3.2, 1.6 + 0.27 * n) + (0.5 if c.carried_from else 0.0)
    fig = Figure(figsize=(12, height), dpi=dpi)
    FigureCanvasAgg(fig)
    names = [chart_text(e[0]) for e in entries]
    names = [name if len(name) <= 28 else name[:27] + "…" for name in names]
    longest = max(len(name) for name in names)
    # Fixed margins: tight_layout measures every label and takes seconds for a hundred communes.
    head = 1.3 if c.carried_from else 0.8  # three-line panel titles need the room
    left, right, top, bottom = min(0.35, 0.02 + 0.0068 * longest), 0.97, 1 - head / height, 0.55 / height
    fig.subplots_adjust(left=left, right=right, top=top, bottom=bottom, wspace=0.12)
    axes = fig.subplots(1, len(CHART_RATES))
    # Bars and target marks are drawn as one line collection per panel: a hundred bar patches
    # and tick objects per panel cost far more than the picture needs.
    points_per_row = (top - bottom) * height * 72 / (n + 0.4)
    positions = list(range(n))
    for ax, key in zip(axes, CHART_RATES, strict=True):
        rate = RATE_BY_KEY[key]
        values, colours, marks = [], [], []
        for y, (_name, figures, owner, _total) in enumerate(entries):
            value = figures.rate(key)
            target = target_for(rate, owner, c.period)
            if target is not None:
                marks.append((y, target))
            values.append(min(value or 0.0, 100.0))
            if value is None:
                colours.append(EMPTY)
                ax.text(1, y, "—", va="center", fontsize=8, color=EMPTY)
            elif target is not None and value >= target:
                colours.append(REACHED)
            else:
                colours.append(SHORT)
        ax.hlines(positions, 0, values, colors=colours, linewidth=0.7 * points_per_row)
        registration = REGISTRATION_OF.get(key) if key in c.carried_from else None
        if registration is not None:
            registered = [min(f.rate(registration.key) or 0.0, 100.0) for _n, f, _o, _t in entries]
            ax.hlines(
                [y + 0.3 for y in positions],
                0,
                registered,
                colors=REGISTERED,
                linewidth=0.15 * points_per_row,
            )
        if marks:
            ax.vlines(
                [m[1] for m in marks],
                [m[0] - 0.42 for m in marks],
                [m[0] + 0.42 for m in marks],
                colors=TARGET,
                linewidth=1.6,
            )
        ax.set_xlim(0, 100)
        ax.set_ylim(n - 0.5, -0.7)
        ax.set_xticks([0, 50, 100], ["0", "50", "100%"], fontsize=8)
        ax.set_xticks([25, 75], minor=True)
        ax.set_title(panel_title(c, t, key), fontsize=10 if key not in c.carried_from else 8)
        ax.grid(axis="x", which="both", linestyle=":", linewidth=0.6, alpha=0.7)
        ax.set_axisbelow(True)
        if ax is axes[0]:
            ax.set_yticks(positions, names, fontsize=8, parse_math=False)
            ax.get_yticklabels()[0].set_fontweight("bold")
        else:
            ax.set_yticks([])
    where = c.unit.name if c.unit else t("Whole country")
    fig.suptitle(
        chart_text(t("Progress against targets — {unit} — {period}", unit=where, period=c.period.label(t))),
        fontsize=12,
        parse_math=False,
        y=1 - 0.15 / height,
    )
    legend = t("Bar: result (green: target reached, orange: not yet, grey: no data). Black mark: the target.")
    if any(key in c.carried_from for key in CHART_RATES):
        legend += " " + t("Thin blue line: registered in this period (titles are recognised at year end).")
    fig.text(0.01, 0.1 / fig.get_figheight(), legend, fontsize=8, color="#444444", parse_math=False)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()
