"""The compiled report as an .xlsx laid out the way Vietnamese offices file reports.

National motto and issuing body at the top, title, unit and period, the reporting situation, a
table of indicators by sub-unit with a totals line and rates, progress against the targets and
the previous period, activities, and a signature block. Values are written as numbers with
number formats (not as formulas) so that any reader, including openpyxl, sees the figures.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.domain.clock import VN_TZ
from bot.domain.forms.model import Field
from bot.domain.i18n import Translator
from bot.domain.text import clean_text
from bot.reports.aggregate import RATES, REGISTRATIONS, Compiled, Figures, progress, target_for
from bot.reports.commune_figures import (
    ADDS_TO,
    LEARNING_UNITS,
    CommuneFigures,
    CommuneReports,
    choice_counts,
    learning_units_lines,
)
from bot.reports.compiled import review_line
from bot.reports.labels import (
    ACTIVITY_COLUMNS,
    COLUMNS,
    Column,
    formal_name,
    indicator_label,
    kind_plural,
    rate_label,
)

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The national motto is part of the form of every official document: never translated.
MOTTO_STATE = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"

FONT = "Times New Roman"
NUMBER_FORMATS = {"count": "#,##0", "money": "#,##0", "per_person": "#,##0", "percent": "0.0%"}
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


def cell_value(column: Column, figures: Figures) -> float | int | None:
    """What the spreadsheet holds for a column: percentages as fractions (format 0.0%)."""
    value = column.value(figures)
    if value is None:
        return None
    return value / 100.0 if column.kind == "percent" else value


def column_header(c: Compiled, t: Translator, column: Column) -> str:
    """A column's header; a figure carried from another period says which (at H1: the recognised
    learning families of last year's year reports)."""
    header = t(column.header)
    rate = column.key.removesuffix("_pct")
    if column.key in c.carried_figures or (column.key != rate and rate in c.carried_from):
        source = c.carried_from.get(rate) or next(iter(c.carried_from.values()))
        return f"{header} — {source.label(t)}"
    return header


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


def _commune_rows(ws: Worksheet, row: int, c: Compiled, t: Translator) -> int:
    """Below the villages' totals: the communes' own figures in the columns they add to
    (commune_figures.ADDS_TO), then the totals with them. The last row written."""
    cr = c.commune
    if cr is None:
        return row
    if cr.single and c.unit is not None:
        label = t("{unit}: the commune's own report", unit=c.unit.name)
        with_label = t("Total, with the commune's own report")
    else:
        label = t(
            "The communes' own reports ({reported} of {expected})",
            reported=cr.total.reported,
            expected=cr.total.expected,
        )
        with_label = t("Total, with the communes' own reports")
    if not cr.total.reported:
        label += " — " + t("not reported")
    row += 1
    _put(ws, row, 1, "", border=True)
    _put(ws, row, 2, label, border=True, font=_font(12, italic=True))
    for i, col in enumerate(COLUMNS, start=3):
        adds = [k for k, to in ADDS_TO.items() if to == col.key]
        own = sum(cr.total.value(k) or 0 for k in adds) if adds and cr.total.reported else None
        _put(ws, row, i, own, fmt=NUMBER_FORMATS[col.kind], border=True)
    row += 1
    bold = _font(12, bold=True)
    _put(ws, row, 1, "", border=True, fill=TOTAL_FILL)
    _put(ws, row, 2, with_label, font=bold, border=True, fill=TOTAL_FILL)
    for i, col in enumerate(COLUMNS, start=3):
        both = cr.combined(c.total, col.key) if col.key in ADDS_TO.values() else cell_value(col, c.total)
        _put(
            ws,
            row,
            i,
            both if col.summed else None,
            font=bold,
            fmt=NUMBER_FORMATS[col.kind],
            border=True,
            fill=TOTAL_FILL,
        )
    return row


def _commune_cell(t: Translator, cr: CommuneReports, f: Field, figures: CommuneFigures) -> object:
    """A figure of a line: blank where no report gave it (a carried figure comes from the
    report it is carried from, whether or not this period's was filed)."""
    if f.type == "choice":
        one = figures.choice(f.key)
        if one is not None:
            return next((ch.label.get(t.locale) for ch in f.choices if ch.value == one), one)
        return choice_counts(t, f, figures.choices.get(f.key, {})) or None
    return figures.value(f.key)


def _commune_header(t: Translator, cr: CommuneReports, text: str, key: str) -> str:
    """A column's header, saying the period its figures come from when they are carried."""
    source = cr.source(key)
    return text if source == cr.period else f"{text} — {source.label(t)}"


def _field_value(t: Translator, cr: CommuneReports, f: Field) -> Callable[[CommuneFigures], object]:
    return lambda figures: _commune_cell(t, cr, f, figures)


def _rate_value(key: str) -> Callable[[CommuneFigures], object]:
    """A rate as the spreadsheet holds it: a fraction (format 0.0%)."""

    def value(figures: CommuneFigures) -> float | None:
        rate = figures.rate(key)
        return None if rate is None else rate / 100.0

    return value


def _commune_table(ws: Worksheet, row: int, c: Compiled, t: Translator, width: int) -> int:
    """V. The communes' own reports: one line per commune (per sub-unit above communes), blank
    where a commune has not reported, a totals line and learning units against their target.
    The last row written."""
    cr = c.commune
    if cr is None:
        return row
    row += 2
    title = t("V. THE COMMUNE'S OWN REPORT") if cr.single else t("V. THE COMMUNES' OWN REPORTS")
    _line(ws, row, 1, width, title, _font(12, bold=True), "left")
    shown = [f for f in cr.form.fields if f.type in ("integer", "money", "choice")]
    # (header, number format, value of a line): a rate follows the field it is computed from.
    columns: list[tuple[str, str | None, Callable[[CommuneFigures], object]]] = [
        (t("Communes to report"), "#,##0", lambda x: x.expected),
        (t("Reported"), "#,##0", lambda x: x.reported),
        # Review (DOMAIN.md "Review and approval"), as the villages' table has it.
        (t("Approved"), "#,##0", lambda x: x.approved if x.reported else None),
        (t("Not yet approved"), "#,##0", lambda x: x.reported - x.approved if x.reported else None),
    ]
    for f in shown:
        fmt = "#,##0" if f.type in ("integer", "money") else None
        columns.append((_commune_header(t, cr, f.label.get(t.locale), f.key), fmt, _field_value(t, cr, f)))
        if f.key == LEARNING_UNITS.numerator:
            header = indicator_label(t, LEARNING_UNITS.key) + " (%)"
            columns.append(
                (_commune_header(t, cr, header, LEARNING_UNITS.key), "0.0%", _rate_value(LEARNING_UNITS.key))
            )
    row += 1
    heads = [t("No."), t("Unit"), *(h for h, _, _ in columns), t("Notes")]
    for i, text in enumerate(heads, start=1):
        _put(ws, row, i, text, font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    ws.row_dimensions[row].height = 90
    for n, line in enumerate(cr.lines, start=1):
        row += 1
        _put(ws, row, 1, n, align=CENTER, border=True)
        _put(ws, row, 2, line.unit.name, border=True)
        for i, (_, fmt, value) in enumerate(columns, start=3):
            _put(ws, row, i, value(line.figures), fmt=fmt, border=True)
        if not line.figures.reported:
            note: object = t("Not reported")
        elif line.figures.reported < line.figures.expected:
            note = t("{missing} not reported", missing=line.figures.expected - line.figures.reported)
        else:
            note = None
        if note is None and line.figures.reported == 1 and line.figures.texts:
            note = "; ".join(line.figures.texts)
        _put(ws, row, len(columns) + 3, note, border=True)
    row += 1
    bold = _font(12, bold=True)
    _put(ws, row, 1, "", border=True, fill=TOTAL_FILL)
    _put(ws, row, 2, t("Total"), font=bold, border=True, fill=TOTAL_FILL)
    for i, (_, fmt, value) in enumerate(columns, start=3):
        _put(ws, row, i, value(cr.total), font=bold, fmt=fmt, border=True, fill=TOTAL_FILL)
    _put(ws, row, len(columns) + 3, "", border=True, fill=TOTAL_FILL)
    for text in learning_units_lines(t, cr, c.period):
        row += 1
        _line(ws, row, 1, width, text, _font(11, italic=True), "left")
    return row


def render_xlsx(c: Compiled, t: Translator) -> bytes:
    """The report as .xlsx bytes."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = t("Report")[:31]
    width = 2 + len(COLUMNS)
    half = max(4, width // 3)
    generated = c.generated_at.astimezone(VN_TZ)

    # Issuing body (left) and national motto (right).
    body = [formal_name(u).upper() for u in (c.ancestors[-1:] + ([c.unit] if c.unit else []))]
    upper = (
        t("STUDY PROMOTION ASSOCIATION OF {unit}", unit=body[0])
        if body
        else t("VIETNAM STUDY PROMOTION ASSOCIATION")
    )
    lower = t("STUDY PROMOTION ASSOCIATION OF {unit}", unit=body[1]) if len(body) > 1 else ""
    _line(ws, 1, 1, half, upper, _font(12))
    _line(ws, 2, 1, half, lower or upper, _font(12, bold=True, underline=True))
    _line(ws, 1, width - half + 1, width, MOTTO_STATE, _font(12, bold=True))
    _line(ws, 2, width - half + 1, width, MOTTO, _font(13, bold=True, underline=True))
    place = c.unit.name if c.unit else "Hà Nội"
    dated = t(
        "{place}, day {day} month {month} year {year}",
        place=place,
        day=f"{generated.day:02d}",
        month=f"{generated.month:02d}",
        year=generated.year,
    )
    _line(ws, 4, width - half + 1, width, dated, _font(12, italic=True))

    # Title, period, unit.
    _line(ws, 6, 1, width, t("REPORT ON BUILDING A LEARNING SOCIETY"), _font(14, bold=True))
    period_label = c.period.label(t)
    heading = f"{c.deadline.title.get(t.locale)} — {period_label}" if c.deadline else period_label
    _line(ws, 7, 1, width, heading, _font(13, bold=True))
    where = ", ".join(formal_name(u) for u in ([c.unit, *reversed(c.ancestors)] if c.unit else []))
    _line(ws, 8, 1, width, t("Unit: {unit}", unit=where or t("Whole country")), _font(12, italic=True))

    # I. Reporting situation.
    row = 10
    _line(ws, row, 1, width, t("I. REPORTING"), _font(12, bold=True), "left")
    row += 1
    total = c.total
    kinds = kind_plural(t, c.rows[0].unit.kind if c.leaf_rows and c.rows else "village")
    parts = [
        t(
            "To report: {expected} {kinds}; reported: {reported} ({share})",
            kinds=kinds,
            expected=t.number(total.expected),
            reported=t.number(total.reported),
            share=t.percent(total.completeness or 0.0),
        )
    ]
    if c.due is not None:
        parts.append(
            t(
                "on time (by {date}): {on_time} ({share})",
                date=t.date(c.due),
                on_time=t.number(total.on_time),
                share=t.percent(total.timeliness or 0.0),
            )
        )
    _line(ws, row, 1, width, "; ".join(parts) + ".", _font(12), "left")
    review = review_line(c, t, limit=60)
    if review:
        row += 1
        _line(ws, row, 1, width, review, _font(12), "left")
        ws.row_dimensions[row].height = 15 * (1 + len(review) // 180)
    missing = c.missing
    if missing:
        row += 1
        names = ", ".join(u.name for u in missing[:60]) + (" …" if len(missing) > 60 else "")
        _line(ws, row, 1, width, t("Not reported: {names}.", names=names), _font(12), "left")
        ws.row_dimensions[row].height = 15 * (1 + len(names) // 180)

    # II. Indicators by sub-unit.
    row += 2
    _line(ws, row, 1, width, t("II. RESULTS BY UNIT"), _font(12, bold=True), "left")
    row += 1
    header_row = row
    _put(ws, row, 1, t("No."), font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    _put(ws, row, 2, t("Unit"), font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    for i, col in enumerate(COLUMNS, start=3):
        _put(
            ws,
            row,
            i,
            column_header(c, t, col),
            font=_font(11, bold=True),
            align=CENTER,
            border=True,
            fill=HEADER_FILL,
        )
    ws.row_dimensions[row].height = 78
    for n, r in enumerate(c.rows, start=1):
        row += 1
        _put(ws, row, 1, n, align=CENTER, border=True)
        _put(ws, row, 2, r.unit.name, border=True)
        for i, col in enumerate(COLUMNS, start=3):
            _put(ws, row, i, cell_value(col, r.figures), fmt=NUMBER_FORMATS[col.kind], border=True)
    row += 1
    bold = _font(12, bold=True)
    _put(ws, row, 1, "", border=True, fill=TOTAL_FILL)
    _put(ws, row, 2, t("Total"), font=bold, border=True, fill=TOTAL_FILL)
    for i, col in enumerate(COLUMNS, start=3):
        _put(
            ws,
            row,
            i,
            cell_value(col, total),
            font=bold,
            fmt=NUMBER_FORMATS[col.kind],
            border=True,
            fill=TOTAL_FILL,
        )
    row = _commune_rows(ws, row, c, t)
    ws.freeze_panes = ws.cell(row=header_row + 1, column=3)
    ws.print_title_rows = f"{header_row}:{header_row}"

    # III. Progress against the targets and the previous period.
    row += 2
    _line(
        ws,
        row,
        1,
        width,
        t("III. PROGRESS AGAINST TARGETS AND THE PREVIOUS PERIOD"),
        _font(12, bold=True),
        "left",
    )
    row += 1
    year = c.targets.year
    heads = [
        t("No."),
        t("Indicator"),
        t("This period"),
        t("Previous period ({period})", period=c.previous_period.key),
        t("Change"),
        t("Target ({year})", year=year if year is not None else "—"),
        t("Share of target"),
    ]
    for i, text in enumerate(heads, start=1):
        _put(ws, row, i, text, font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    ws.row_dimensions[row].height = 33
    registrations = [r for r in REGISTRATIONS if r.registers in c.carried_from]
    for n, rate in enumerate((*RATES, *registrations), start=1):
        row += 1
        source, before = c.rate_period(rate.key), c.previous_rate_period(rate.key)
        now_v, prev_v = total.rate(rate.key), c.previous_total.rate(rate.key)
        if source == before:  # a carried rate against the report it was carried from
            prev_v = None
        target = target_for(rate, c.targets, c.period)
        share = progress(total, rate, c.targets, c.period)
        scale = 1.0 if rate.per_person else 100.0
        fmt = "#,##0" if rate.per_person else "0.0%"
        change = None if now_v is None or prev_v is None else (now_v - prev_v) / scale
        values: list[tuple[object, str | None]] = [
            (n, None),
            (rate_label(t, rate.key, source, c.period), None),
            (None if now_v is None else now_v / scale, fmt),
            (None if prev_v is None else prev_v / scale, fmt),
            (change, "+#,##0;-#,##0;0" if rate.per_person else "+0.0%;-0.0%;0.0%"),
            (None if target is None else target / scale, fmt),
            (None if share is None else share / 100.0, "0%"),
        ]
        for i, (value, number_format) in enumerate(values, start=1):
            _put(ws, row, i, value, fmt=number_format, border=True, align=CENTER if i == 1 else None)
    row += 1
    note = t("Targets: {sources}.", sources="; ".join(c.targets.sources) or "—")
    if c.targets.disadvantaged:
        note += " " + t("The lower targets for disadvantaged communes apply.")
    if any(r.flow for r in RATES) and c.period.fraction_of_year < 1:
        note += " " + t("Money raised is measured against the yearly target scaled to the period.")
    if c.carried_from:
        note += " " + t(
            "Titles are recognised at year end: the recognised rates of this report are those of "
            "{period}; this period's registrations are listed below them.",
            period=next(iter(c.carried_from.values())).label(t),
        )
    _line(ws, row, 1, width, note, _font(11, italic=True), "left")
    for rate in RATES:
        definition = c.targets.definition(rate.key, t.locale)
        if definition:
            row += 1
            _line(ws, row, 1, width, definition + ".", _font(11, italic=True), "left")

    # IV. Activities.
    row += 2
    _line(ws, row, 1, width, t("IV. LEARNING ACTIVITIES"), _font(12, bold=True), "left")
    row += 1
    _put(ws, row, 1, t("No."), font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    _put(ws, row, 2, t("Unit"), font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    for i, acol in enumerate(ACTIVITY_COLUMNS, start=3):
        _put(
            ws, row, i, t(acol.header), font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL
        )
    ws.row_dimensions[row].height = 48
    lines = [(r.unit.name, r.figures.activities) for r in c.rows]
    if not c.own_activities.empty and c.unit is not None:
        lines.append((t("{unit} (its own activities)", unit=c.unit.name), c.own_activities))
    for n, (name, acts) in enumerate(lines, start=1):
        row += 1
        _put(ws, row, 1, n, align=CENTER, border=True)
        _put(ws, row, 2, name, border=True)
        for i, acol in enumerate(ACTIVITY_COLUMNS, start=3):
            _put(ws, row, i, acol.value(acts), fmt="#,##0", border=True)
    row += 1
    _put(ws, row, 1, "", border=True, fill=TOTAL_FILL)
    _put(ws, row, 2, t("Total"), font=bold, border=True, fill=TOTAL_FILL)
    for i, acol in enumerate(ACTIVITY_COLUMNS, start=3):
        _put(ws, row, i, acol.value(total.activities), font=bold, fmt="#,##0", border=True, fill=TOTAL_FILL)

    row = _commune_table(ws, row, c, t, width)

    # Signature block.
    row += 2
    _line(ws, row, 1, half, t("Recipients:"), _font(12, bold=True, italic=True), "left")
    _line(ws, row, half + 3, width - half - 2, t("PREPARED BY"), _font(12, bold=True))
    _line(ws, row, width - half + 1, width, t("ON BEHALF OF THE STANDING COMMITTEE"), _font(12, bold=True))
    row += 1
    parent = c.ancestors[-1] if c.ancestors else None
    recipient = (
        t("- Study Promotion Association of {unit};", unit=formal_name(parent))
        if parent
        else t("- The Ministry of Education and Training;")
    )
    _line(ws, row, 1, half, recipient, _font(11), "left")
    _line(ws, row, half + 3, width - half - 2, t("(Signature and full name)"), _font(11, italic=True))
    _line(ws, row, width - half + 1, width, t("CHAIR"), _font(12, bold=True))
    row += 1
    _line(ws, row, 1, half, t("- Filed."), _font(11), "left")
    _line(ws, row, width - half + 1, width, t("(Signature and seal)"), _font(11, italic=True))
    row += 5
    _line(
        ws,
        row,
        1,
        width,
        t(
            "Compiled by Khuyến học Bot at {time} on {date} from the latest version of each report.",
            time=f"{generated:%H:%M}",
            date=t.date(generated.date()),
        ),
        _font(10, italic=True),
        "left",
    )

    # Column widths and printing.
    ws.column_dimensions["A"].width = 5
    ws.column_dimensions["B"].width = 26
    for i, col in enumerate(COLUMNS, start=3):
        ws.column_dimensions[get_column_letter(i)].width = 14 if col.kind in ("money", "per_person") else 11
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A3
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    wb.properties.title = heading
    wb.properties.creator = "Khuyến học Bot"
    wb.properties.created = c.generated_at.astimezone(UTC).replace(tzinfo=None)
    wb.properties.modified = wb.properties.created
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
