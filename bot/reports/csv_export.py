"""The compiled report as CSV, for data exchange: machine column names, one line per sub-unit.

UTF-8 without a byte-order mark, comma-separated, a dot as decimal mark and no grouping, so that
other programs read it as it is; people open the .xlsx instead. The last line (`line` = total)
holds the totals, computed as in the spreadsheet. Names are escaped against CSV injection.
"""

from __future__ import annotations

import csv
import io

from bot.domain.text import clean_name
from bot.reports.aggregate import Compiled, Figures
from bot.reports.labels import ACTIVITY_COLUMNS, COLUMNS

CONTENT_TYPE = "text/csv"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HEADER = [
    "line",
    "unit_id",
    "unit_code",
    "unit_name",
    "unit_kind",
    "period",
    *(c.key for c in COLUMNS),
    *(f"activity_{c.key}" for c in ACTIVITY_COLUMNS),
]


def csv_text(text: str) -> str:
    """A text field as written: without control characters, and, after OWASP's advice on CSV
    injection, with a leading apostrophe when it starts with = + - @ tab or carriage return, so
    that a spreadsheet opening the file shows it as text instead of running it as a formula.
    Figures are written as they are (a negative number stays a number)."""
    text = clean_name(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _numbers(figures: Figures) -> list[str]:
    out: list[str] = []
    for col in COLUMNS:
        value = col.value(figures)
        out.append("" if value is None else (str(value) if isinstance(value, int) else f"{value:.4f}"))
    out += [str(c.value(figures.activities)) for c in ACTIVITY_COLUMNS]
    return out


def render_csv(c: Compiled) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for r in c.rows:
        writer.writerow(
            [
                "unit",
                r.unit.id,
                csv_text(r.unit.code or ""),
                csv_text(r.unit.name),
                r.unit.kind,
                c.period.key,
                *_numbers(r.figures),
            ]
        )
    unit = c.unit
    writer.writerow(
        [
            "total",
            unit.id if unit else "",
            csv_text(unit.code or "") if unit else "",
            csv_text(unit.name) if unit else "",
            unit.kind if unit else "",
            c.period.key,
            *_numbers(c.total),
        ]
    )
    return buf.getvalue().encode("utf-8")
