"""The answers to an ad hoc request, compiled: the sums per unit, as a chat summary and an .xlsx.

The figures come from the compiled-report query (bot/reports/aggregate.py `compile_report`),
given the request's form, period and deadline (bot/domain/requests.py): the latest version of
each answer, summed per sub-unit of the request's area, with who has answered and on time. The
.xlsx follows the compiled report's layout (issuing body, national motto, numbered table with a
total row; units that have not answered are blank, not 0).
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.domain.clock import VN_TZ
from bot.domain.forms.model import Form
from bot.domain.i18n import N_, Translator
from bot.domain.messages import Attachment
from bot.domain.parsing import fold
from bot.domain.requests import AUDIENCE_KINDS, request_deadline, request_period
from bot.domain.schedules import Deadline, Schedules, load_schedules
from bot.reports.aggregate import Compiled, Figures, UnitRef, compile_report
from bot.reports.compiled import MissingWords, missing_lines
from bot.reports.labels import formal_name, kind_plural
from bot.reports.targets import load_targets
from storage.models import Unit
from storage.models_requests import ReportRequest
from storage.readonly import ReadOnlyUnitOfWork

LIST_LIMIT = 15
ANSWERS = MissingWords(
    N_("Not answered yet: {units}."),
    N_("{unit}: {reported} of {expected} answered"),
    N_("Not answered yet: {units}."),
)


def number_fields(form: Form) -> tuple[str, ...]:
    """What the compiled answers add up: the form's integer and money fields."""
    return tuple(f.key for f in form.fields if f.type in ("integer", "money"))


@dataclass
class Answers:
    """The compiled answers, and the units that had nobody to ask (not counted as expected)."""

    compiled: Compiled
    unstaffed: list[UnitRef] = field(default_factory=list)


async def compile_request(
    reads: ReadOnlyUnitOfWork,
    request: ReportRequest,
    form: Form,
    *,
    content_dir: Path,
    now: datetime,
    staffed: Collection[int],
) -> Answers:
    """The answers so far, summed per sub-unit of the request's area. A unit that has not
    answered and is not in `staffed` (those with an officer to ask) is not expected: it is
    listed apart."""
    deadline = request_deadline(request, form, load_schedules(content_dir).requests)
    unit = await reads.units.get(request.unit_id)
    assert unit is not None, "a request's area is a unit"
    compiled = await _compile(reads, request, form, deadline, unit, content_dir=content_dir, now=now)
    kinds = AUDIENCE_KINDS[request.audience]
    units = await reads.requests.units_in(request.area_path, kinds, now.astimezone(VN_TZ).date())
    replied = await reads.requests.replies(form.key)
    unstaffed = [UnitRef.of(u) for u in units if u.id not in staffed and u.id not in replied]
    for ref in unstaffed:
        for row in compiled.rows:
            if ref.path.startswith(row.unit.path) and row.figures.expected > row.figures.reported:
                row.figures.expected -= 1
                compiled.total.expected -= 1
                break
    return Answers(compiled, unstaffed)


async def _compile(
    reads: ReadOnlyUnitOfWork,
    request: ReportRequest,
    form: Form,
    deadline: Deadline,
    unit: Unit,
    *,
    content_dir: Path,
    now: datetime,
) -> Compiled:
    return await compile_report(
        reads.session,
        unit=unit,
        period=request_period(request),
        schedules=Schedules(jobs={}, deadlines=(deadline,), form_period_kinds={}, any_time_forms=frozenset()),
        targets=load_targets(content_dir),
        sum_fields=number_fields(form),
        now=now,
        form_key=form.key,
        expected_kinds=deadline.expected,
    )


def _value(t: Translator, form: Form, key: str, figures: Figures) -> str:
    value = figures.value(key)
    return t.money(value) if form.field(key).type == "money" else t.number(value)


def unstaffed_line(t: Translator, unstaffed: Sequence[UnitRef]) -> str:
    """How many units a request has nobody to ask ("2 villages have no officer yet: …")."""
    names = ", ".join(u.name for u in unstaffed[:LIST_LIMIT]) + (" …" if len(unstaffed) > LIST_LIMIT else "")
    return t(
        "{count} {kinds} have no officer yet, so nobody there was asked: {units}.",
        count=t.number(len(unstaffed)),
        kinds=kind_plural(t, unstaffed[0].kind),
        units=names,
    )


def request_summary(answers: Answers, form: Form, t: Translator, *, files_attached: bool = True) -> str:
    """The chat summary: who has answered, the totals, who has not, and who had nobody to ask."""
    c = answers.compiled
    total = c.total
    where = c.unit.name if c.unit else ""
    lines = [
        f"📋 {form.title.get(t.locale)}",
        t("{unit} — due {date}", unit=where, date=t.date(c.due or c.period.end)),
    ]
    kinds = kind_plural(t, c.rows[0].unit.kind if c.leaf_rows and c.rows else "village")
    line = t(
        "Answered: {reported} of {expected} {kinds} ({share}).",
        reported=t.number(total.reported),
        expected=t.number(total.expected),
        kinds=kinds,
        share=t.percent(total.completeness or 0.0),
    )
    if c.due is not None:
        line += " " + t("On time: {on_time}.", on_time=t.number(total.on_time))
    lines.append(line)
    if total.reported:
        lines.append(t("Totals of the answers:"))
        lines += [
            f"• {form.field(k).label.get(t.locale)}: {_value(t, form, k, total)}" for k in number_fields(form)
        ]
    lines += missing_lines(c, t, ANSWERS)
    if answers.unstaffed:
        lines.append(unstaffed_line(t, answers.unstaffed))
    if files_attached:
        lines.append(t("The spreadsheet (.xlsx) with the figures of each unit is attached."))
    return "\n".join(lines)


def file_name(c: Compiled, request: ReportRequest) -> str:
    """'yeu-cau-12-phuong-thuc-phan.xlsx': ASCII, safe on every platform and in every chat."""
    name = re.sub(r"[^a-z0-9]+", "-", fold(c.unit.name if c.unit else "")).strip("-")
    return f"yeu-cau-{request.id}-{name}.xlsx"


def render_request(answers: Answers, form: Form, request: ReportRequest, t: Translator) -> list[Attachment]:
    """The .xlsx of the answers (CPU-bound: call it in a worker thread from async code)."""
    from bot.reports import xlsx

    c = answers.compiled
    return [
        Attachment(file_name(c, request), xlsx.CONTENT_TYPE, render_request_xlsx(answers, form, request, t))
    ]


def render_request_xlsx(answers: Answers, form: Form, request: ReportRequest, t: Translator) -> bytes:
    """The answers by unit as .xlsx bytes, laid out like the compiled report; under the table,
    who has not answered and who had nobody to ask."""
    c = answers.compiled
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from bot.domain.clock import VN_TZ
    from bot.reports.xlsx import CENTER, HEADER_FILL, MOTTO, MOTTO_STATE, TOTAL_FILL, _font, _line, _put

    keys = number_fields(form)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = t("Report")[:31]
    width = max(6, 3 + len(keys))
    half = max(3, width // 3)
    generated = c.generated_at.astimezone(VN_TZ)

    body = [formal_name(u).upper() for u in (c.ancestors[-1:] + ([c.unit] if c.unit else []))]
    upper = t("STUDY PROMOTION ASSOCIATION OF {unit}", unit=body[0]) if body else ""
    lower = t("STUDY PROMOTION ASSOCIATION OF {unit}", unit=body[1]) if len(body) > 1 else upper
    _line(ws, 1, 1, half, upper, _font(12))
    _line(ws, 2, 1, half, lower, _font(12, bold=True, underline=True))
    _line(ws, 1, width - half + 1, width, MOTTO_STATE, _font(12, bold=True))
    _line(ws, 2, width - half + 1, width, MOTTO, _font(13, bold=True, underline=True))
    dated = t(
        "{place}, day {day} month {month} year {year}",
        place=c.unit.name if c.unit else "",
        day=f"{generated.day:02d}",
        month=f"{generated.month:02d}",
        year=generated.year,
    )
    _line(ws, 4, width - half + 1, width, dated, _font(12, italic=True))
    heading = t("AD HOC REPORT: {title}", title=form.title.get(t.locale).upper())
    _line(ws, 6, 1, width, heading, _font(14, bold=True))
    where = ", ".join(formal_name(u) for u in ([c.unit, *reversed(c.ancestors)] if c.unit else []))
    due = t.date(request.due_date)
    _line(ws, 7, 1, width, t("Unit: {unit}. Due: {date}.", unit=where, date=due), _font(12, italic=True))
    total = c.total
    situation = t(
        "Answered: {reported} of {expected} {kinds} ({share}).",
        reported=t.number(total.reported),
        expected=t.number(total.expected),
        kinds=kind_plural(t, c.rows[0].unit.kind if c.leaf_rows and c.rows else "village"),
        share=t.percent(total.completeness or 0.0),
    )
    _line(ws, 8, 1, width, situation, _font(12), "left")

    row = 10
    header_row = row
    heads = [t("No."), t("Unit"), *(form.field(k).label.get(t.locale) for k in keys), t("Answered")]
    for i, text in enumerate(heads, start=1):
        _put(ws, row, i, text, font=_font(11, bold=True), align=CENTER, border=True, fill=HEADER_FILL)
    row += 1
    for i in range(1, len(heads) + 1):  # the numbered columns (1), (2), … of an official table
        _put(ws, row, i, f"({i})", font=_font(10, italic=True), align=CENTER, border=True)
    ws.row_dimensions[header_row].height = 48
    for n, r in enumerate(c.rows, start=1):
        row += 1
        _put(ws, row, 1, n, align=CENTER, border=True)
        _put(ws, row, 2, r.unit.name, border=True)
        answered = r.figures.reported > 0
        for i, key in enumerate(keys, start=3):
            _put(ws, row, i, r.figures.value(key) if answered else None, fmt="#,##0", border=True)
        asked = f"{r.figures.reported}/{r.figures.expected}" if r.figures.expected else t("no officer")
        _put(ws, row, 3 + len(keys), asked, align=CENTER, border=True)
    row += 1
    bold = _font(12, bold=True)
    _put(ws, row, 1, "", border=True, fill=TOTAL_FILL)
    _put(ws, row, 2, t("Total"), font=bold, border=True, fill=TOTAL_FILL)
    for i, key in enumerate(keys, start=3):
        _put(ws, row, i, total.value(key), font=bold, fmt="#,##0", border=True, fill=TOTAL_FILL)
    _put(
        ws,
        row,
        3 + len(keys),
        f"{total.reported}/{total.expected}",
        font=bold,
        align=CENTER,
        border=True,
        fill=TOTAL_FILL,
    )
    ws.freeze_panes = ws.cell(row=header_row + 2, column=3)
    row += 1
    notes = missing_lines(c, t, ANSWERS, limit=60)
    if answers.unstaffed:
        notes.append(unstaffed_line(t, answers.unstaffed))
    for note in notes:
        row += 1
        _line(ws, row, 1, width, note, _font(11), "left")
    row += 1
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
    ws.column_dimensions["A"].width = 5
    ws.column_dimensions["B"].width = 26
    for i in range(3, len(heads) + 1):
        ws.column_dimensions[get_column_letter(i)].width = 16
    ws.page_setup.orientation = "landscape"
    wb.properties.title = heading
    wb.properties.creator = "Khuyến học Bot"
    wb.properties.created = c.generated_at.astimezone(UTC).replace(tzinfo=None)
    wb.properties.modified = wb.properties.created
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
