"""Compiled reports as a service: who may have which report, and the report in every form.

Authorisation lives here, not in the dialogue: an officer gets the report of a unit only inside
the subtree of a unit where they hold a commune, province or admin role (DESIGN.md boundary 7).
The dialogue (/baocaotonghop), the CLI and the jobs all compile through `compile_unit`, reading
through a read-only unit of work (storage.readonly): outside the write transaction and off the
event loop, so that a national report never stalls other people's dialogues (boundary 12).
Rendering (`render`) is CPU work for a worker thread.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.domain.i18n import N_, Translator
from bot.domain.messages import Attachment
from bot.domain.parsing import fold
from bot.domain.periods import Period
from bot.domain.schedules import Schedules, load_schedules
from bot.reports.aggregate import (
    RATES,
    REGISTRATIONS,
    VILLAGE_FORM,
    Compiled,
    UnitRef,
    carried_fields,
    compile_report,
    progress,
    target_for,
)
from bot.reports.commune_figures import COMMUNE_FORM, compile_commune_reports
from bot.reports.commune_figures import summary_lines as commune_summary_lines
from bot.reports.labels import format_rate, indicator_label, kind_plural, rate_label
from bot.reports.targets import load_targets
from storage.models import VILLAGE_KINDS, Unit
from storage.readonly import ReadOnlyUnitOfWork

if TYPE_CHECKING:
    from bot.reports.document import Profile

FORMATS = ("xlsx", "docx", "png", "csv")
# What a compiled report is sent as: the document to file (.xlsx and .docx) and the chart.
SENT_FORMATS = ("xlsx", "docx", "png")
LIST_LIMIT = 15


def sum_fields(forms: dict[str, Any], form_key: str = VILLAGE_FORM) -> tuple[str, ...]:
    """The number fields of a form (integer and money): what a compiled report adds up."""
    form = forms.get(form_key)
    if form is None:
        return ()
    return tuple(f.key for f in form.fields if f.type in ("integer", "money"))


async def compile_unit(
    reads: ReadOnlyUnitOfWork,
    unit: Unit | UnitRef | None,
    period: Period,
    *,
    content_dir: Path,
    forms: dict[str, Any],
    now: datetime,
) -> Compiled:
    """The compiled village-report figures of `unit` (None: the whole country) for `period`,
    with the communes' own reports (`Compiled.commune`)."""
    schedules = load_schedules(content_dir)
    c = await compile_report(
        reads.session,
        unit=unit,
        period=period,
        schedules=schedules,
        targets=load_targets(content_dir),
        sum_fields=sum_fields(forms),
        now=now,
        carried=carried_fields(forms.get(VILLAGE_FORM)),
    )
    await add_commune_reports(reads, c, forms, schedules)
    return c


async def add_commune_reports(
    reads: ReadOnlyUnitOfWork, c: Compiled, forms: dict[str, Any], schedules: Schedules
) -> None:
    """Set `c.commune` from the communes' own reports, when the form exists and `c` is a
    compilation (a commune, a province, the country) rather than one village's figures."""
    form = forms.get(COMMUNE_FORM)
    if form is None or (c.unit is not None and c.unit.kind in VILLAGE_KINDS):
        return
    c.commune = await compile_commune_reports(reads.session, c, form, schedules)


def file_stem(c: Compiled) -> str:
    """'bao-cao-phuong-thuc-phan-2026-H1': ASCII, safe on every platform and in every chat."""
    name = fold(c.unit.name) if c.unit else "toan-quoc"
    return "bao-cao-" + re.sub(r"[^a-z0-9]+", "-", name).strip("-") + "-" + c.period.key


def render(
    c: Compiled, t: Translator, formats: Sequence[str] = SENT_FORMATS, profile: Profile | None = None
) -> list[Attachment]:
    """The report files (CPU-bound: call it in a worker thread from async code); `profile`: the
    signer and the number symbol of the unit's documents."""
    # openpyxl and matplotlib load here, not with the dialogue modules: ~0.4 s that the first
    # message after a start would otherwise wait for.
    from bot.reports import chart, csv_export, docx, xlsx

    out: list[Attachment] = []
    stem = file_stem(c)
    for fmt in formats:
        if fmt == "xlsx":
            out.append(Attachment(f"{stem}.xlsx", xlsx.CONTENT_TYPE, xlsx.render_xlsx(c, t, profile)))
        elif fmt == "docx":
            out.append(Attachment(f"{stem}.docx", docx.CONTENT_TYPE, docx.render_docx(c, t, profile)))
        elif fmt == "png":
            # One picture per indicator, each readable on a phone (bot/reports/chart.py).
            out += [
                Attachment(f"{stem}-{drawn.slug}.png", chart.CONTENT_TYPE, drawn.png)
                for drawn in chart.render_charts(c, t)
            ]
        elif fmt == "csv":
            out.append(Attachment(f"{stem}.csv", csv_export.CONTENT_TYPE, csv_export.render_csv(c)))
        else:
            raise ValueError(f"unknown format {fmt!r}")
    return out


def format_change(t: Translator, key: str, now: float | None, before: float | None) -> str | None:
    if now is None or before is None:
        return None
    delta = now - before
    sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
    if key == "fund_per_person_vnd":
        return f"{sign}{t.money(round(abs(delta)))}"
    return t("{sign}{value} points", sign=sign, value=t.number(round(abs(delta), 1)))


def not_approved(c: Compiled, t: Translator) -> list[str]:
    """The sub-units whose figures count without being approved yet (waiting or returned)."""
    if c.leaf_rows:
        return [r.unit.name for r in c.rows if r.figures.reported > r.figures.approved]
    return [
        t(
            "{unit} ({approved} of {reported} approved)",
            unit=r.unit.name,
            approved=t.number(r.figures.approved),
            reported=t.number(r.figures.reported),
        )
        for r in c.rows
        if r.figures.reported > r.figures.approved
    ]


def review_line(c: Compiled, t: Translator, limit: int = LIST_LIMIT) -> str | None:
    """'Review: 3 approved, 1 waiting, 1 returned. Not yet approved: …' (None: nothing reported)."""
    total = c.total
    if not total.reported:
        return None
    line = t(
        "Review: {approved} approved, {waiting} waiting, {returned} returned.",
        approved=t.number(total.approved),
        waiting=t.number(total.waiting),
        returned=t.number(total.returned),
    )
    pending = not_approved(c, t)
    if pending:
        shown = ", ".join(pending[:limit]) + (" …" if len(pending) > limit else "")
        line += " " + t("Figures not yet approved: {units}.", units=shown)
    return line


@dataclass(frozen=True, slots=True)
class MissingWords:
    """How the units that have not reported are named: by name when the rows are the reporting
    units (`leaf`: {units}), else per row (`row`: {unit}, {reported}, {expected}) under `rows`
    ({count}, {units})."""

    leaf: str
    row: str
    rows: str


REPORTS = MissingWords(
    N_("Not reported: {units}."),
    N_("{unit}: {reported} of {expected} reported"),
    N_("Units with reports missing ({count}): {units}."),
)


def missing_lines(
    c: Compiled, t: Translator, words: MissingWords = REPORTS, limit: int = LIST_LIMIT
) -> list[str]:
    """Who has not reported yet: the units by name, or the rows behind with their counts."""
    if c.leaf_rows:
        missing = c.missing
        if not missing:
            return []
        shown = ", ".join(u.name for u in missing[:limit]) + (" …" if len(missing) > limit else "")
        return [t(words.leaf, units=shown)]
    behind = [r for r in c.rows if r.figures.reported < r.figures.expected]
    if not behind:
        return []
    shown = "; ".join(
        t(
            words.row,
            unit=r.unit.name,
            reported=t.number(r.figures.reported),
            expected=t.number(r.figures.expected),
        )
        for r in behind[:limit]
    )
    return [t(words.rows, count=t.number(len(behind)), units=shown + (" …" if len(behind) > limit else ""))]


def summary_text(c: Compiled, t: Translator, *, files_attached: bool = True) -> str:
    """The chat summary of a compiled report."""
    title = c.deadline.title.get(t.locale) if c.deadline else t("Compiled report")
    where = c.unit.name if c.unit else t("Whole country")
    lines = [f"📑 {title}", f"{where} — {c.period.label(t)}"]
    total = c.total
    kinds = kind_plural(t, c.rows[0].unit.kind if c.leaf_rows and c.rows else "village")
    line = t(
        "Reported: {reported} of {expected} {kinds} ({share}).",
        reported=t.number(total.reported),
        expected=t.number(total.expected),
        kinds=kinds,
        share=t.percent(total.completeness or 0.0),
    )
    if c.due is not None:
        line += " " + t(
            "On time (by {date}): {on_time} ({share}).",
            date=t.date(c.due),
            on_time=t.number(total.on_time),
            share=t.percent(total.timeliness or 0.0),
        )
    lines.append(line)
    review = review_line(c, t)
    if review:
        lines.append(review)
    for rate in RATES:
        value = total.rate(rate.key)
        if value is None:
            continue
        source = c.rate_period(rate.key)
        parts = [f"• {rate_label(t, rate.key, source, c.period)}: {format_rate(t, rate.key, value)}"]
        details = []
        target = target_for(rate, c.targets, c.period)
        share = progress(total, rate, c.targets, c.period)
        if target is not None and share is not None:
            details.append(
                t(
                    "target {target}, {share} of it",
                    target=format_rate(t, rate.key, target),
                    share=t.percent(share),
                )
            )
        before = c.previous_rate_period(rate.key)
        # A carried rate compared with the report it was carried from would show no change.
        change = (
            None if before == source else format_change(t, rate.key, value, c.previous_total.rate(rate.key))
        )
        if change is not None:
            details.append(t("{change} on {period}", change=change, period=before.label(t)))
        if details:
            parts.append(f" ({'; '.join(details)})")
        lines.append("".join(parts))
        definition = c.targets.definition(rate.key, t.locale)
        if definition:
            lines.append(f"  ({definition})")
    registrations = [r for r in REGISTRATIONS if r.registers in c.carried_from]
    registered = [(r, v) for r in registrations if (v := total.rate(r.key)) is not None]
    if registered:
        lines.append(t("Registered for the titles — {period}:", period=c.period.label(t)))
        lines += [f"• {indicator_label(t, r.key)}: {format_rate(t, r.key, v)}" for r, v in registered]
    acts = total.activities
    if acts.lifelong_learning_week:
        lines.append(
            t(
                "• Learning activities: {count}, {participants} attendances ({llw} in the Lifelong Learning Week).",
                count=t.number(acts.count),
                participants=t.number(acts.participants),
                llw=t.number(acts.lifelong_learning_week),
            )
        )
    elif acts.count:
        lines.append(
            t(
                "• Learning activities: {count}, {participants} attendances.",
                count=t.number(acts.count),
                participants=t.number(acts.participants),
            )
        )
    lines += commune_summary_lines(c, t)
    lines += missing_lines(c, t)
    if files_attached:
        lines.append(t("The report (.xlsx and .docx) and a chart for each indicator are attached."))
    return "\n".join(lines)
