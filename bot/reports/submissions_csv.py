"""The raw latest submissions of an area as CSV: one line per reporting unit, every form field.

The compiled report (csv_export.py) adds figures up; this file gives what each unit filed, for
staff who check or re-use the figures in a spreadsheet: where the unit sits (the names of its
province, commune…), its code, the period, which version is the latest, when and by whom it was
filed, whether the first version came before the deadline (on time as the compiled report and
DHIS2 count it), its review state, then every field of the form in the form's order.

UTF-8 with a byte-order mark so that Excel opens Vietnamese names correctly; numbers as they are
(no grouping), dates and times in ISO form (Vietnam time); text escaped against CSV injection.
Units that have not reported have no line: the compiled report lists them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.clock import VN_TZ
from bot.domain.forms.model import Form
from bot.domain.periods import Period
from bot.reports.csv_export import csv_text
from storage.models import COMMUNE, DISTRICT, PROVINCE, Contact, Submission, Unit
from storage.models_reviews import APPROVED, RETURNED, WAITING, Review

CONTENT_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"
LEVELS = (PROVINCE, DISTRICT, COMMUNE)  # the places above a reporting unit, one column each
HEAD = ("unit", "unit_code", "unit_kind", "period", "version", "filed_at", "filed_by", "on_time", "review")
_IN_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Line:
    """The latest version of one unit's record, with what the CSV says about it."""

    unit: Unit
    places: dict[str, str]  # kind → name of the unit's province, district, commune
    submission: Submission
    first_at: datetime  # when version 1 was filed: what "on time" is measured on
    filed_by: str  # the person's name; their role once they had their data deleted
    review: str  # WAITING, APPROVED or RETURNED


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def latest_lines(session: AsyncSession, area: Unit, period: Period, form: Form) -> list[Line]:
    """The latest version of each record of `form` for `period` filed by a unit inside `area`
    (the area itself included), by unit path. Three queries, whatever the size of the area."""
    newer = aliased(Submission)
    first = aliased(Submission)
    decision = (
        select(Review.decision)
        .where(Review.submission_id == Submission.id, Review.decision.in_((APPROVED, RETURNED)))
        .order_by(Review.id.desc())
        .limit(1)
        .correlate(Submission)
        .scalar_subquery()
    )
    q = (
        select(Submission, Unit, first.submitted_at, Contact.display_name, decision)
        .join(Unit, Unit.id == Submission.unit_id)
        .outerjoin(
            first,
            (first.form_key == Submission.form_key)
            & (first.record_key == Submission.record_key)
            & (first.version == 1),
        )
        .outerjoin(Contact, Contact.id == Submission.submitted_by_contact_id)
        .where(
            Submission.form_key == form.key,
            Submission.period == period.key,
            Unit.path.like(_like(area.path), escape="\\"),
            ~exists().where(
                newer.form_key == Submission.form_key,
                newer.record_key == Submission.record_key,
                newer.version > Submission.version,
            ),
        )
        .order_by(Unit.path, Submission.record_key)
    )
    rows = (await session.execute(q)).all()
    names = await _place_names(session, [u.path for _, u, *_ in rows])
    out = []
    for sub, unit, first_at, person, review in rows:
        places = dict(names[uid] for uid in _path_ids(unit.path)[:-1] if uid in names)
        out.append(
            Line(
                unit=unit,
                places=places,
                submission=sub,
                first_at=first_at or sub.submitted_at,
                filed_by=person or sub.submitted_by_role or "",
                review=review or WAITING,
            )
        )
    return out


def _path_ids(path: str) -> list[int]:
    return [int(p) for p in path.strip("/").split("/") if p]


async def _place_names(session: AsyncSession, paths: Sequence[str]) -> dict[int, tuple[str, str]]:
    """Kind and name of every unit above the units at `paths`, in one query per 5,000 ids."""
    ids = sorted({i for p in paths for i in _path_ids(p)[:-1]})
    out: dict[int, tuple[str, str]] = {}
    for i in range(0, len(ids), _IN_CHUNK):
        q = select(Unit.id, Unit.kind, Unit.name).where(Unit.id.in_(ids[i : i + _IN_CHUNK]))
        out.update({uid: (kind, name) for uid, kind, name in (await session.execute(q)).all()})
    return out


def _value(value: Any) -> str:
    """A field as written: numbers unformatted, text escaped, nothing for a blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    return csv_text(str(value))


def _when(at: datetime) -> str:
    return at.astimezone(VN_TZ).isoformat(timespec="seconds")


def render_submissions_csv(lines: Sequence[Line], form: Form, due_at: datetime | None) -> bytes:
    """The CSV file. `due_at` is the period's deadline (None: no deadline, "on time" is blank)."""
    levels = [k for k in LEVELS if any(k in line.places for line in lines)] or [COMMUNE]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([*levels, *HEAD, *(f.key for f in form.fields)])
    for line in lines:
        sub = line.submission
        on_time = "" if due_at is None else ("1" if line.first_at < due_at else "0")
        values = sub.values or {}
        writer.writerow(
            [
                *(csv_text(line.places.get(k, "")) for k in levels),
                csv_text(line.unit.name),
                csv_text(line.unit.code or ""),
                line.unit.kind,
                sub.period,
                sub.version,
                _when(sub.submitted_at),
                csv_text(line.filed_by),
                on_time,
                line.review,
                *(_value(values.get(f.key)) for f in form.fields),
            ]
        )
    return (BOM + buf.getvalue()).encode("utf-8")
