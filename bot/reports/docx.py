"""The compiled report as a .docx the office completes and files (python-docx).

The same document as the .xlsx (bot/reports/document.py): header lines, *Số*, place and date,
type and title, then the narrative frame of a Vietnamese report — I. results (the tables),
II. assessment, III. direction for the next period, IV. recommendations — where II–IV are
bracketed placeholders the officer replaces, then *Nơi nhận* and the signature block. The
tables sit in a landscape section (they are as wide as the spreadsheet's); the text is portrait.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document as new_document
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor

from bot.domain.i18n import Translator
from bot.domain.periods import Period
from bot.domain.text import clean_text
from bot.reports.aggregate import Compiled
from bot.reports.document import MOTTO, MOTTO_STATE, Document, Profile, Table, build, period_phrase

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FONT = "Times New Roman"
ROMAN = ("I", "II", "III", "IV")


def _text(value: object) -> str:
    """A cell's text: the control characters a .docx cannot hold dropped (names are data)."""
    return "".join(ch for ch in clean_text(str(value)) if ch in "\t\n" or ord(ch) >= 0x20)


def _run(paragraph: Any, text: str, *, size: float = 13, bold: bool = False, italic: bool = False) -> None:
    run = paragraph.add_run(_text(text))
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.italic = italic
    run.font.name = FONT


def _para(
    container: Any,
    text: str,
    *,
    size: float = 13,
    bold: bool = False,
    italic: bool = False,
    align: Any = WD_ALIGN_PARAGRAPH.JUSTIFY,
    style: str | None = None,
) -> Any:
    paragraph = container.add_paragraph(style=style) if style else container.add_paragraph()
    paragraph.alignment = align
    paragraph.paragraph_format.space_after = Pt(2)
    _run(paragraph, text, size=size, bold=bold, italic=italic)
    return paragraph


def _cell_para(cell: Any, text: str, **kw: Any) -> Any:
    """Write into a table cell: its first (empty) paragraph, then new ones."""
    first = cell.paragraphs[0]
    if not first.text and not first.runs:
        first.alignment = kw.pop("align", WD_ALIGN_PARAGRAPH.CENTER)
        first.paragraph_format.space_after = Pt(0)
        _run(first, text, **kw)
        return first
    return _para(cell, text, align=kw.pop("align", WD_ALIGN_PARAGRAPH.CENTER), **kw)


def _styles(doc: Any) -> None:
    normal = doc.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(13)
    normal.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)
    for name, size in (("Heading 1", 13), ("Heading 2", 13)):
        style = doc.styles[name]
        style.font.name = FONT
        style.font.size = Pt(size)
        style.font.bold = True
        style.font.italic = False
        style.font.color.rgb = RGBColor(0, 0, 0)
        style.element.rPr.rFonts.set(qn("w:ascii"), FONT)
        style.element.rPr.rFonts.set(qn("w:hAnsi"), FONT)
        style.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)


def _heading(doc: Any, text: str, level: int) -> None:
    paragraph = doc.add_heading(level=level)
    paragraph.paragraph_format.space_before = Pt(6)
    paragraph.paragraph_format.space_after = Pt(3)
    _run(paragraph, text, size=13, bold=True)


def _top(doc: Any, d: Document) -> None:
    """Issuing body and motto side by side, with the number and the date below them."""
    grid = doc.add_table(rows=1, cols=2)
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    left, right = grid.rows[0].cells
    if d.parent_body is not None:
        _cell_para(left, d.parent_body, size=12)
    _cell_para(left, d.issuing_body, size=12, bold=True)
    _cell_para(left, "———", size=10)
    _cell_para(left, d.number, size=12)
    _cell_para(right, MOTTO_STATE, size=12, bold=True)
    _cell_para(right, MOTTO, size=13, bold=True)
    _cell_para(right, "———————————", size=10)
    _cell_para(right, d.place_date, size=13, italic=True)
    _para(doc, "", size=6)
    _para(doc, d.kind, size=14, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(doc, d.title, size=13, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(doc, "———", size=10, align=WD_ALIGN_PARAGRAPH.CENTER)


def _table(doc: Any, table: Table) -> None:
    """A table as the spreadsheet has it: group headers merged over their columns, the
    numbered columns, the unit of measure, the lines, the total in bold."""
    width = 2 + len(table.headers) + (1 if table.notes else 0)
    two = any(group is not None for group, _ in table.groups)
    head_rows = 2 if two else 1
    rows = head_rows + 1 + (1 if table.measures is not None else 0) + len(table.lines)
    grid = doc.add_table(rows=rows, cols=width)
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    size = 8 if width > 12 else 9

    def head(row: int, col: int, text: str, down: bool) -> None:
        cell = grid.cell(row, col)
        if down and two:
            cell = cell.merge(grid.cell(row + 1, col))
        _cell_para(cell, text, size=size, bold=True)

    head(0, 0, table.number_header, True)
    head(0, 1, table.label_header, True)
    col = 2
    for group, headers in table.groups:
        if group is None:
            for i, text in enumerate(headers):
                head(0, col + i, text, True)
        else:
            merged = grid.cell(0, col).merge(grid.cell(0, col + len(headers) - 1))
            _cell_para(merged, group, size=size, bold=True)
            for i, text in enumerate(headers):
                head(1, col + i, text, False)
        col += len(headers)
    if table.notes:
        head(0, col, table.notes_header, True)
    row = head_rows
    for i in range(width):
        _cell_para(grid.cell(row, i), f"({i + 1})", size=size, italic=True)
    if table.measures is not None:
        row += 1
        _cell_para(grid.cell(row, 1), table.measure_label, size=size, italic=True)
        for i, measure in enumerate(table.measures, start=2):
            _cell_para(grid.cell(row, i), measure, size=size, italic=True)
    for line in table.lines:
        row += 1
        cells = grid.rows[row].cells
        bold = line.total
        if line.number is not None:
            _cell_para(cells[0], str(line.number), size=size)
        _cell_para(
            cells[1], line.label, size=size, bold=bold, italic=line.italic, align=WD_ALIGN_PARAGRAPH.LEFT
        )
        formats = line.formats or table.formats
        for i, value in enumerate(line.values):
            text = _number(value, formats[i])
            if text:
                _cell_para(cells[2 + i], text, size=size, bold=bold, align=WD_ALIGN_PARAGRAPH.RIGHT)
        if table.notes and line.note:
            _cell_para(cells[-1], line.note, size=size, align=WD_ALIGN_PARAGRAPH.LEFT)
    for text in table.after:
        _para(doc, text, size=11, italic=True)


def _number(value: object, fmt: str | None) -> str:
    """A value as the spreadsheet's number format shows it, written the Vietnamese way
    (1.250.000; 65,2%); blank stays blank."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, int | float):
        return _text(value)
    sign = "+" if fmt and fmt.startswith("+") and value > 0 else ""
    if fmt and "%" in fmt:
        digits = 0 if fmt.rstrip(";").endswith("0%") and ".0%" not in fmt else 1
        text = f"{value * 100:,.{digits}f}%"
    else:
        text = f"{round(value):,}"
    return sign + text.replace(",", " ").replace(".", ",").replace(" ", ".")


def next_period_phrase(t: Translator, period: Period) -> str:
    """What the direction of a report is for: after the half-year, the rest of the year; after
    the year, the next year."""
    if period.kind == "half_year" and period.number == 1:
        return t("the last six months of {year}", year=period.year)
    if period.kind == "year":
        return period_phrase(t, Period.parse(str(period.year + 1)))
    return t("the next period")


def _signature(doc: Any, d: Document) -> None:
    grid = doc.add_table(rows=1, cols=2)
    left, right = grid.rows[0].cells
    first, *rest = d.recipients
    _cell_para(left, first, size=12, bold=True, italic=True, align=WD_ALIGN_PARAGRAPH.LEFT)
    for text in rest:
        _cell_para(left, text, size=11, align=WD_ALIGN_PARAGRAPH.LEFT)
    _cell_para(right, d.on_behalf, size=13, bold=True)
    _cell_para(right, d.signer_title, size=13, bold=True)
    _cell_para(right, d.sign_hint, size=11, italic=True)
    for _ in range(3):
        _cell_para(right, "", size=13)
    _cell_para(right, d.signer_name, size=13, bold=True)


def render_docx(c: Compiled, t: Translator, profile: Profile | None = None) -> bytes:
    """The report as .docx bytes."""
    d = build(c, t, profile)
    doc = new_document()
    _styles(doc)
    doc.core_properties.title = f"{d.kind} {d.title}"
    doc.core_properties.author = "Khuyến học Bot"
    _top(doc, d)

    # I. Results: the tables, in a landscape section.
    wide = doc.add_section(WD_SECTION.NEW_PAGE)
    wide.orientation = WD_ORIENT.LANDSCAPE
    wide.page_width, wide.page_height = wide.page_height, wide.page_width
    _heading(doc, f"{ROMAN[0]}. {t('RESULTS')}", 1)
    for n, section in enumerate(d.sections, start=1):
        _heading(doc, f"{n}. {section.title}", 2)
        for text in section.paragraphs:
            _para(doc, text)
        for table in section.tables:
            if table.title:
                _para(doc, table.title, size=12, bold=True, italic=True, align=WD_ALIGN_PARAGRAPH.LEFT)
            _table(doc, table)
        for text in section.after:
            _para(doc, text, size=11, italic=True)

    # II–IV: the narrative the office writes, back in portrait.
    tall = doc.add_section(WD_SECTION.NEW_PAGE)
    tall.orientation = WD_ORIENT.PORTRAIT
    tall.page_width, tall.page_height = tall.page_height, tall.page_width
    frame = (
        (
            t("ASSESSMENT"),
            [
                t("1. Strengths: [the results that stand out, good practices, examples to follow]."),
                t("2. Shortcomings and their causes: [what fell short of the targets, and why]."),
            ],
        ),
        (
            t("DIRECTION AND TASKS FOR {period}", period=next_period_phrase(t, c.period).upper()),
            [t("[The main tasks and targets for the next period, and how they will be carried out].")],
        ),
        (
            t("RECOMMENDATIONS AND PROPOSALS"),
            [
                t(
                    "[What the association asks of the Party committee, the authorities and the association above]."
                )
            ],
        ),
    )
    for n, (title, lines) in enumerate(frame, start=1):
        _heading(doc, f"{ROMAN[n]}. {title}", 1)
        for text in lines:
            _para(doc, text)
    _para(doc, "", size=6)
    _signature(doc, d)
    _para(doc, "", size=6)
    _para(doc, d.footer, size=9, italic=True, align=WD_ALIGN_PARAGRAPH.LEFT)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
