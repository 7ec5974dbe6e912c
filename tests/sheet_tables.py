"""Reading the tables of a compiled report's .xlsx back, as an officer reads them: a table's
header (group headers over column headers, merged), the numbered-columns row, the unit of
measure row, its lines and its total line."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from bot.domain.i18n import translator
from bot.reports.labels import COLUMNS

Row = tuple[Any, ...]


@dataclass
class SheetTable:
    first_row: int  # 1-based: the first header row
    groups: list[Any]  # the first header row (group headers, or column headers merged down)
    headers: list[str]  # each column's own header (the lowest header row that names it)
    numbers: list[Any]
    measures: list[Any] | None
    lines: list[Row]  # numbered lines and the lines under the total (the commune's own report)
    total: Row | None  # None: a table without one (progress against the targets)

    def column(self, header: str) -> int:
        """The index of the column whose header is `header` (or starts with `header — `)."""
        for i, h in enumerate(self.headers):
            if h == header or h.startswith(header + " — "):
                return i
        raise KeyError(header)

    def line(self, label: str) -> Row:
        for r in [*self.lines, *([self.total] if self.total else [])]:
            if r[1] == label:
                return r
        raise KeyError(label)

    def value(self, label: str, header: str) -> Any:
        return self.line(label)[self.column(header)]

    @property
    def body(self) -> list[Row]:
        """The numbered lines (one per unit)."""
        return [r for r in self.lines if isinstance(r[0], int)]


def workbook_sheet(data: bytes) -> Worksheet:
    ws = load_workbook(io.BytesIO(data)).active
    assert isinstance(ws, Worksheet)
    return ws


def tables(rows: list[Row], locale: str = "vi") -> list[SheetTable]:
    """Every table of a sheet's rows (values_only), in order."""
    t = translator(locale)
    out: list[SheetTable] = []
    i = 0
    while i < len(rows):
        if rows[i][0] != t("No."):
            i += 1
            continue
        start = i
        header_rows = [rows[i]]
        i += 1
        while rows[i][0] != "(1)":
            header_rows.append(rows[i])
            i += 1
        numbers = list(rows[i])
        width = sum(1 for v in numbers if v is not None)
        headers = []
        for col in range(width):
            texts = [r[col] for r in header_rows if r[col] not in (None, "")]
            headers.append(str(texts[-1]) if texts else "")
        i += 1
        measures = None
        if rows[i][1] == t("Unit of measure"):
            measures = list(rows[i][:width])
            i += 1
        lines: list[Row] = []
        total: Row | None = None
        while i < len(rows) and rows[i][1] is not None and not (rows[i][0] and rows[i][1] is None):
            r = tuple(rows[i][:width])
            if r[1] == t("Total"):
                total = r
            else:
                lines.append(r)
            i += 1
        out.append(
            SheetTable(
                start + 1, list(header_rows[0][:width]), headers, numbers[:width], measures, lines, total
            )
        )
    return out


def table_with(rows: list[Row], header: str, locale: str = "vi") -> SheetTable:
    """The table with a column headed `header` (a translated header)."""
    for table in tables(rows, locale):
        try:
            table.column(header)
        except KeyError:
            continue
        return table
    raise KeyError(header)


def value(rows: list[Row], label: str, key: str, locale: str = "vi") -> Any:
    """The cell of the line `label` under the column `key` of bot/reports/labels.py COLUMNS."""
    t = translator(locale)
    (col,) = [c for c in COLUMNS if c.key == key]
    return table_with(rows, t(col.header), locale).value(label, t(col.header))
