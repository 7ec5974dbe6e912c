"""The compiled report as an .xlsx: the administrative document of bot/reports/document.py.

Header lines beside the Quốc hiệu and tiêu ngữ, *Số*, place and date, the document type and its
title, then one table per topic (numbered columns, a unit-of-measure row, a total line and a
notes column), *Nơi nhận* and the signature block. Values are written as numbers with number
formats (not as formulas) so that any reader, including openpyxl, sees the figures; every text
is written through `_put_text` (names are data, never formulas).
"""

from __future__ import annotations

import io
from datetime import UTC

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.domain.i18n import Translator
from bot.domain.text import clean_text
from bot.reports.aggregate import Compiled
from bot.reports.document import MOTTO, MOTTO_STATE, Document, Profile, Table, build

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
__all__ = ["MOTTO", "MOTTO_STATE", "render_xlsx", "sheet_text"]

FONT = "Times New Roman"
THIN = Side(style="thin", color="000000")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")
# What makes a spreadsheet read a text as a formula (OWASP, CSV injection); tab and carriage
# return are removed or harmless in a cell.
FORMULA_STARTS = ("=", "+", "-", "@")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _font(size: float = 12, bold: bool = False, italic: bool = False, underline: bool = False) -> Font:
    return Font(name=FONT, size=size, bold=bold, italic=italic, underline="single" if underline else None)


def sheet_text(text: str) -> str:
    """`text` as a cell can hold it: without the control characters the file format has no
    place for (openpyxl raises IllegalCharacterError) and without lone surrogates."""
    cleaned: str = ILLEGAL_CHARACTERS_RE.sub("", clean_text(text))
    return cleaned


def _put_text(cell: Cell, text: str) -> None:
    """A text is data, never a formula: one starting with = + - @ (or that reads as an error
    code such as #REF!) is stored as a string, marked so that editing it keeps it text."""
    cell.value = sheet_text(text)
    value = cell.value
    if cell.data_type != "s" or (isinstance(value, str) and value.startswith(FORMULA_STARTS)):
        cell.data_type = "s"
        cell.quotePrefix = True


def _put(
    ws: Worksheet,
    row: int,
    col: int,
    value: object,
    *,
    font: Font | None = None,
    fmt: str | None = None,
    align: Alignment | None = None,
    border: bool = False,
    fill: PatternFill | None = None,
) -> None:
    cell = ws.cell(row=row, column=col)
    if isinstance(value, str):
        _put_text(cell, value)
    else:
        cell.value = value
    cell.font = font or _font()
    if fmt:
        cell.number_format = fmt
    if align:
        cell.alignment = align
    if border:
        cell.border = BOX
    if fill:
        cell.fill = fill


def _line(
    ws: Worksheet, row: int, first: int, last: int, text: str, font: Font, align: str = "center"
) -> None:
    ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    _put(
        ws, row, first, text, font=font, align=Alignment(horizontal=align, vertical="center", wrap_text=True)
    )


ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")
HALF = 6  # the header blocks: columns 1–6 on the left, the last 6 on the right


def _table_width(table: Table) -> int:
    return 2 + len(table.headers) + (1 if table.notes else 0)


def _head(ws: Worksheet, col: int, text: str, top: int, bottom: int) -> None:
    """A header cell, merged down to `bottom`, with borders on every cell of the range."""
    for r in range(top, bottom + 1):
        _put(ws, r, col, "", border=True, fill=HEADER_FILL)
    _put(ws, top, col, text, font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    if bottom > top:
        ws.merge_cells(start_row=top, start_column=col, end_row=bottom, end_column=col)


def _header(ws: Worksheet, row: int, table: Table) -> int:
    """The table's header: a group header merged over its columns, a column without a group
    merged over both header rows; then the numbered columns (1), (2), … and the unit of measure.
    The last row written."""
    two = any(group is not None for group, _ in table.groups)
    last = row + (1 if two else 0)
    _head(ws, 1, table.number_header, row, last)
    _head(ws, 2, table.label_header, row, last)
    col = 3
    for group, headers in table.groups:
        if group is None:
            for i, text in enumerate(headers):
                _head(ws, col + i, text, row, last)
        else:
            for i, text in enumerate(headers):
                _put(ws, row, col + i, "", border=True, fill=HEADER_FILL)
                _head(ws, col + i, text, last, last)
            _put(ws, row, col, group, font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
            if len(headers) > 1:
                ws.merge_cells(
                    start_row=row, start_column=col, end_row=row, end_column=col + len(headers) - 1
                )
        col += len(headers)
    if table.notes:
        _head(ws, col, table.notes_header, row, last)
    if two:
        ws.row_dimensions[row].height = 32
    ws.row_dimensions[last].height = 80
    width = _table_width(table)
    last += 1
    for i in range(1, width + 1):
        _put(ws, last, i, f"({i})", font=_font(10, italic=True), align=CENTER, border=True)
    if table.measures is not None:
        last += 1
        _put(ws, last, 1, "", border=True)
        _put(ws, last, 2, table.measure_label, font=_font(11, italic=True), align=CENTER, border=True)
        for i, measure in enumerate(table.measures, start=3):
            _put(ws, last, i, measure, font=_font(11, italic=True), align=CENTER, border=True)
        if table.notes:
            _put(ws, last, width, "", border=True)
    return last


def _table(ws: Worksheet, row: int, table: Table, width: int) -> int:
    """A table below `row`: its title, header, lines and the lines after it. The last row."""
    if table.title:
        row += 1
        _line(ws, row, 1, width, table.title, _font(12, bold=True, italic=True), "left")
    row = _header(ws, row + 1, table)
    for line in table.lines:
        row += 1
        fill = TOTAL_FILL if line.total else None
        font = _font(12, bold=line.total, italic=line.italic)
        _put(ws, row, 1, line.number if line.number is not None else "", align=CENTER, border=True, fill=fill)
        _put(ws, row, 2, line.label, font=font, border=True, fill=fill)
        formats = line.formats or table.formats
        for i, value in enumerate(line.values, start=3):
            fmt = formats[i - 3]
            align = CENTER if isinstance(value, str) and len(value) < 12 else None
            _put(ws, row, i, value, font=font, fmt=fmt, border=True, fill=fill, align=align)
        if table.notes:
            _put(ws, row, 3 + len(line.values), line.note or "", font=_font(11), border=True, fill=fill)
    for text in table.after:
        row += 1
        _line(ws, row, 1, width, text, _font(11, italic=True), "left")
        ws.row_dimensions[row].height = 15 * (1 + len(text) // 160)
    return row


def _top(ws: Worksheet, doc: Document, width: int) -> int:
    """The header lines, the number, the place and date, the type and the title. The last row."""
    right = width - HALF + 1
    if doc.parent_body is not None:
        _line(ws, 1, 1, HALF, doc.parent_body, _font(12))
        _line(ws, 2, 1, HALF, doc.issuing_body, _font(12, bold=True, underline=True))
    else:
        _line(ws, 1, 1, HALF, doc.issuing_body, _font(12, bold=True, underline=True))
    _line(ws, 1, right, width, MOTTO_STATE, _font(12, bold=True))
    _line(ws, 2, right, width, MOTTO, _font(13, bold=True, underline=True))
    _line(ws, 3, 1, HALF, doc.number, _font(12))
    _line(ws, 3, right, width, doc.place_date, _font(12, italic=True))
    _line(ws, 5, 1, width, doc.kind, _font(14, bold=True))
    _line(ws, 6, 1, width, doc.title, _font(13, bold=True))
    ws.row_dimensions[6].height = 34
    return 6


def _signature(ws: Worksheet, row: int, doc: Document, width: int) -> int:
    """Nơi nhận on the left; TM. BAN CHẤP HÀNH, the title and the signer on the right."""
    right = width - HALF + 1
    row += 2
    first = row
    for i, text in enumerate(doc.recipients):
        font = _font(12, bold=True, italic=True) if i == 0 else _font(11)
        _line(ws, row + i, 1, HALF, text, font, "left")
    _line(ws, first, right, width, doc.on_behalf, _font(12, bold=True))
    _line(ws, first + 1, right, width, doc.signer_title, _font(12, bold=True))
    _line(ws, first + 2, right, width, doc.sign_hint, _font(11, italic=True))
    name_row = first + 6
    _line(ws, name_row, right, width, doc.signer_name, _font(12, bold=True))
    return max(name_row, first + len(doc.recipients) - 1)


def render_xlsx(c: Compiled, t: Translator, profile: Profile | None = None) -> bytes:
    """The report as .xlsx bytes."""
    doc = build(c, t, profile)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = t("Report")[:31]
    width = max(2 * HALF + 1, *(_table_width(tb) for s in doc.sections for tb in s.tables))
    row = _top(ws, doc, width)
    for n, section in enumerate(doc.sections):
        row += 2
        _line(ws, row, 1, width, f"{ROMAN[n]}. {section.title.upper()}", _font(12, bold=True), "left")
        for text in section.paragraphs:
            row += 1
            _line(ws, row, 1, width, text, _font(12), "left")
            ws.row_dimensions[row].height = 16 * (1 + len(text) // 160)
        for table in section.tables:
            row = _table(ws, row, table, width)
        for text in section.after:
            row += 1
            _line(ws, row, 1, width, text, _font(11, italic=True), "left")
    row = _signature(ws, row, doc, width)
    row += 3
    _line(ws, row, 1, width, doc.footer, _font(10, italic=True), "left")

    ws.column_dimensions["A"].width = 6
    ws.column_dimensions["B"].width = 26
    for i in range(3, width + 1):
        ws.column_dimensions[get_column_letter(i)].width = 14
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    wb.properties.title = f"{doc.kind} {doc.title}"
    wb.properties.creator = "Khuyến học Bot"
    wb.properties.created = c.generated_at.astimezone(UTC).replace(tzinfo=None)
    wb.properties.modified = wb.properties.created
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
