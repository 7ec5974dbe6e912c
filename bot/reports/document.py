"""The compiled report as an administrative document (Nghị định 30/2020/NĐ-CP), ready to render.

One model, two renderings (xlsx.py and docx.py): the header lines (parent body and issuing body
beside the Quốc hiệu and tiêu ngữ), *Số: …/BC-HKH*, place and date, the document type and a
title naming the period, the tables — one per topic, with numbered columns, the unit of measure,
a total row and a notes column —, *Nơi nhận* with its (b/c) and (p/h) markers and *Lưu: VT.*, and
the signature block *TM. BAN CHẤP HÀNH* with the signer's title and name (from the unit's
profile, `Profile`). The recipients' markers follow seed 004 lines 126-138; "TM. BCH" and the
signer's title under it follow seed 001 lines 156-157.

Villages that have not reported are blank, not 0: a sum over no report is no figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from bot.domain.clock import VN_TZ
from bot.domain.forms.model import Field
from bot.domain.i18n import N_, Translator
from bot.domain.periods import Period
from bot.reports.aggregate import RATES, REGISTRATIONS, Compiled, Figures, UnitRef, progress, target_for
from bot.reports.commune_figures import (
    ADDS_TO,
    LEARNING_UNITS,
    CommuneFigures,
    CommuneReports,
    choice_counts,
    learning_units_lines,
)
from bot.reports.compiled import review_line
from bot.reports.labels import ACTIVITY_COLUMNS, COLUMNS, Column, Kind, formal_name, kind_plural, rate_label
from storage.models import COMMUNE, PROVINCE

# The national motto is part of the form of every official document: never translated.
MOTTO_STATE = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
SYMBOL = "BC-HKH"  # báo cáo of a Hội Khuyến học (Nghị định 30/2020, appendix III)
NUMBER_FORMATS: dict[str, str] = {
    "count": "#,##0",
    "money": "#,##0",
    "per_person": "#,##0",
    "percent": "0.0%",
}
# Designations a place name is written without in the date line ("Thục Phán, ngày …"), unless the
# name is a number ("Phường 15").
DESIGNATIONS = ("thành phố", "thị trấn", "thị xã", "đặc khu", "tỉnh", "huyện", "quận", "phường", "xã")


@dataclass(frozen=True)
class Profile:
    """What the unit's own documents say that the figures cannot: the signer and the symbol."""

    signer_name: str = ""
    signer_title: str = ""  # "": CHỦ TỊCH
    symbol: str = SYMBOL


@dataclass(frozen=True)
class DocColumn:
    key: str
    header: str  # msgid
    kind: Kind
    measure: str  # msgid of the unit of measure
    value: Callable[[Figures], float | int | None]  # percentages as 0–100
    summed: bool  # the total line sums the lines (else recomputed from the totals)
    needs_report: bool = True  # blank on a line without any report


@dataclass(frozen=True)
class Topic:
    title: str  # msgid
    groups: tuple[tuple[str | None, tuple[str, ...]], ...]  # (group header msgid, column keys)


# ---- the topics and their columns -----------------------------------------------------------

MEASURES: dict[str, str] = {
    "expected": N_("units"),
    "reported": N_("reports"),
    "on_time": N_("reports"),
    "approved": N_("reports"),
    "not_approved": N_("reports"),
    "households_total": N_("households"),
    "lf_recognized": N_("households"),
    "clans_total": N_("clans"),
    "lc_recognized": N_("clans"),
    "villages_recognized": N_("villages"),
    "scholarship_count": N_("scholarships"),
    "award_count": N_("awards"),
    "clc_sessions": N_("sessions"),
    "clc_attendance": N_("attendances"),
}
KIND_MEASURES: dict[str, str] = {
    "count": N_("people"),
    "money": N_("đồng"),
    "per_person": N_("đồng per person"),
    "percent": "%",
}
ACTIVITY_MEASURES = {
    "activities": N_("activities"),
    "sessions": N_("sessions"),
    "participants": N_("attendances"),
    "participants_female": N_("attendances"),
    "lifelong_learning_week": N_("activities"),
}


def _of_column(col: Column) -> DocColumn:
    needs = col.key not in ("expected", "reported", "on_time", "completeness_pct")
    measure = MEASURES.get(col.key, KIND_MEASURES[col.kind])
    return DocColumn(col.key, col.header, col.kind, measure, col.value, col.summed, needs)


DOC_COLUMNS: dict[str, DocColumn] = {col.key: _of_column(col) for col in COLUMNS}
for _acol in ACTIVITY_COLUMNS:
    DOC_COLUMNS[_acol.key] = DocColumn(
        _acol.key,
        _acol.header,
        "count",
        ACTIVITY_MEASURES.get(_acol.key, N_("activities")),
        (lambda v: lambda f: v(f.activities))(_acol.value),
        True,
        needs_report=False,
    )

TOPICS: tuple[Topic, ...] = (
    Topic(
        N_("Reporting and review"),
        (
            (None, ("expected", "reported", "on_time", "completeness_pct")),
            (N_("Review of the reports"), ("approved", "not_approved")),
        ),
    ),
    Topic(
        N_("Association organisation and members"),
        (
            (None, ("population_total",)),
            (N_("Membership"), ("members_total", "membership_pct", "members_new")),
        ),
    ),
    Topic(
        N_("Learning titles"),
        (
            (N_("Learning families"), ("households_total", "lf_recognized", "learning_families_pct")),
            (N_("Learning clans"), ("clans_total", "lc_recognized", "learning_clans_pct")),
            (N_("Learning communities"), ("villages_recognized", "learning_communities_pct")),
            (
                N_("Learning citizens"),
                ("adults_total", "adults_learning_total", "lcit_recognized", "learning_citizens_pct"),
            ),
        ),
    ),
    Topic(
        N_("Study promotion fund"),
        (
            (
                N_("Fund raised and spent"),
                ("fund_raised_vnd", "fund_per_person_vnd", "fund_disbursed_vnd", "fund_balance_vnd"),
            ),
            (N_("Scholarships granted"), ("scholarship_count", "scholarship_amount_vnd")),
            (N_("Awards granted"), ("award_count", "award_amount_vnd")),
        ),
    ),
    Topic(
        N_("Learning activities"),
        (
            (N_("Learning in the villages"), ("clc_sessions", "clc_attendance")),
            (N_("Activities reported"), tuple(a.key for a in ACTIVITY_COLUMNS)),
        ),
    ),
)


# ---- the document ---------------------------------------------------------------------------


@dataclass
class Line:
    """One line of a table: its number (None on total lines), its label, values, a note."""

    number: int | None
    label: str
    values: list[object]  # as a spreadsheet holds them: percentages as fractions
    note: str | None = None
    total: bool = False
    italic: bool = False
    formats: list[str | None] | None = None  # this line's own number formats (else the table's)


@dataclass
class Table:
    title: str
    groups: list[tuple[str | None, list[str]]]  # translated group header (None: none), headers
    formats: list[str | None]  # one per value column
    measures: list[str] | None  # one per value column; None: the table has no unit row
    lines: list[Line]
    label_header: str = ""
    number_header: str = ""  # "No."
    notes_header: str = ""  # "Notes"
    measure_label: str = ""  # the label of the unit-of-measure row
    notes: bool = True  # a notes column at the end
    after: list[str] = field(default_factory=list)  # italic lines below the table

    @property
    def headers(self) -> list[str]:
        return [h for _, hs in self.groups for h in hs]


@dataclass
class Section:
    title: str  # translated, sentence case; renderers number it
    paragraphs: list[str]
    tables: list[Table]
    after: list[str] = field(default_factory=list)


@dataclass
class Document:
    parent_body: str | None
    issuing_body: str
    number: str
    place_date: str
    kind: str  # BÁO CÁO
    title: str
    sections: list[Section]
    recipients: list[str]
    on_behalf: str
    signer_title: str
    signer_name: str
    sign_hint: str
    footer: str
    period: Period


def date_line(t: Translator, place: str, day: date) -> str:
    """'Thục Phán, ngày 05 tháng 3 năm 2026': a leading zero for days under 10 and for months 1
    and 2 only (Nghị định 30/2020/NĐ-CP, appendix I)."""
    return t(
        "{place}, day {day} month {month} year {year}",
        place=place,
        day=f"{day.day:02d}",
        month=f"{day.month:02d}" if day.month <= 2 else str(day.month),
        year=day.year,
    )


def place_name(unit: UnitRef | None) -> str:
    """The place of the date line: the unit's proper name without its designation."""
    if unit is None:
        return "Hà Nội"
    name = unit.name.strip()
    folded = name.casefold()
    for designation in (unit.division_type or "").casefold(), *DESIGNATIONS:
        if designation and folded.startswith(designation + " "):
            rest = name[len(designation) + 1 :].strip()
            return rest if rest and not rest.isdigit() else name
    return name


def period_phrase(t: Translator, period: Period) -> str:
    """How a title names the period: '6 tháng đầu năm 2026', 'năm 2026'."""
    if period.kind == "year":
        return t("in {year}", year=period.year)
    return period.label(t)


def association(t: Translator, unit: UnitRef | None) -> str:
    if unit is None:
        return t("VIETNAM STUDY PROMOTION ASSOCIATION")
    return t("STUDY PROMOTION ASSOCIATION OF {unit}", unit=formal_name(unit).upper())


def bodies(t: Translator, c: Compiled) -> tuple[str | None, str]:
    """The parent body (None for the national association) and the issuing body: never the same
    line twice (a province's parent is the national association)."""
    if c.unit is None:
        return None, association(t, None)
    parent = c.ancestors[-1] if c.ancestors else None
    return association(t, parent), association(t, c.unit)


def recipients(t: Translator, c: Compiled) -> list[str]:
    """Nơi nhận: the parent association and the local leadership (b/c: for information), the
    sub-units (p/h: to coordinate), and the file copy (seed 004 lines 126-138)."""
    out: list[str] = []
    if c.unit is None:
        out.append(t("- The National Steering Committee for Building a Learning Society (b/c);"))
    else:
        parent = c.ancestors[-1] if c.ancestors else None
        if parent is None:
            out.append(t("- The Central Committee of the Vietnam Study Promotion Association (b/c);"))
        else:
            out.append(t("- Study Promotion Association of {unit} (b/c);", unit=formal_name(parent)))
        out.append(
            t("- The Party committee and People's Committee of {unit} (b/c);", unit=formal_name(c.unit))
        )
    below = c.rows[0].unit.kind if c.rows else None
    if below in (COMMUNE, PROVINCE):
        out.append(t("- Study Promotion Associations of the {kinds} (p/h);", kinds=kind_plural(t, below)))
    elif c.rows:
        out.append(t("- Study promotion branches of the villages and residential groups (p/h);"))
    out.append(t("- Filed: VT."))
    return out


def _line_value(col: DocColumn, figures: Figures) -> float | int | None:
    """What a cell holds: blank on a line without a report, percentages as fractions."""
    if col.needs_report and not figures.reported:
        return None
    value = col.value(figures)
    if value is None:
        return None
    return value / 100.0 if col.kind == "percent" else value


def _note(t: Translator, figures: Figures, leaf: bool) -> str | None:
    if not figures.reported:
        return t("Not reported")
    if figures.reported < figures.expected:
        return t("{missing} not reported", missing=figures.expected - figures.reported)
    if figures.reported > figures.approved:
        return t("Not yet approved") if leaf else None
    return None


def column_header(c: Compiled, t: Translator, col: DocColumn) -> str:
    """A column's header; a figure carried from another period says which (at H1: the
    recognised titles of last year's year reports)."""
    header = t(col.header)
    rate = col.key.removesuffix("_pct")
    if col.key in c.carried_figures or (col.key != rate and rate in c.carried_from):
        source = c.carried_from.get(rate) or next(iter(c.carried_from.values()))
        return f"{header} — {source.label(t)}"
    return header


def topic_table(c: Compiled, t: Translator, topic: Topic, number: int) -> Table:
    cols = [DOC_COLUMNS[k] for _, keys in topic.groups for k in keys]
    groups = [
        (None if g is None else t(g), [column_header(c, t, DOC_COLUMNS[k]) for k in keys])
        for g, keys in topic.groups
    ]
    lines = [
        Line(n, r.unit.name, [_line_value(col, r.figures) for col in cols], _note(t, r.figures, c.leaf_rows))
        for n, r in enumerate(c.rows, start=1)
    ]
    keys = [col.key for col in cols]
    if any(a.key in keys for a in ACTIVITY_COLUMNS) and not c.own_activities.empty and c.unit is not None:
        own = Figures(activities=c.own_activities)
        lines.append(
            Line(
                len(lines) + 1,
                t("{unit} (its own activities)", unit=c.unit.name),
                [_line_value(col, own) if not col.needs_report else None for col in cols],
            )
        )
    total_values: list[object] = [_line_value(col, c.total) for col in cols]
    lines.append(Line(None, t("Total"), total_values, total=True))
    lines += _commune_lines(c, t, cols)
    return Table(
        f"{number}. {t(topic.title)}",
        groups,
        [NUMBER_FORMATS[col.kind] for col in cols],
        [t(col.measure) for col in cols],
        lines,
        label_header=t("Unit"),
        number_header=t("No."),
        notes_header=t("Notes"),
        measure_label=t("Unit of measure"),
    )


def _commune_lines(c: Compiled, t: Translator, cols: Sequence[DocColumn]) -> list[Line]:
    """Below the villages' total of a table with figures the communes' own reports add to
    (commune_figures.ADDS_TO): their figures, then the total with them."""
    cr = c.commune
    if cr is None or not any(col.key in ADDS_TO.values() for col in cols):
        return []
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
    own: list[object] = []
    both: list[object] = []
    for col in cols:
        adds = [k for k, to in ADDS_TO.items() if to == col.key]
        own.append(sum(cr.total.value(k) or 0 for k in adds) if adds and cr.total.reported else None)
        if col.key in ADDS_TO.values():
            both.append(cr.combined(c.total, col.key))
        elif col.summed:
            both.append(_line_value(col, c.total))
        else:
            both.append(None)
    return [Line(None, label, own, italic=True), Line(None, with_label, both, total=True)]


def progress_table(c: Compiled, t: Translator) -> Table:
    """Progress against the targets and the same period before, one line per indicator."""
    year = c.targets.year
    total = c.total
    lines: list[Line] = []
    registrations = [r for r in REGISTRATIONS if r.registers in c.carried_from]
    for n, rate in enumerate((*RATES, *registrations), start=1):
        source, before = c.rate_period(rate.key), c.previous_rate_period(rate.key)
        now_v, prev_v = total.rate(rate.key), c.previous_total.rate(rate.key)
        if source == before:  # a carried rate against the report it was carried from
            prev_v = None
        target = target_for(rate, c.targets, c.period)
        share = progress(total, rate, c.targets, c.period)
        scale = 1.0 if rate.per_person else 100.0
        change = None if now_v is None or prev_v is None else (now_v - prev_v) / scale
        lines.append(
            Line(
                n,
                rate_label(t, rate.key, source, c.period),
                [
                    t("đồng per person") if rate.per_person else "%",
                    None if now_v is None else now_v / scale,
                    None if prev_v is None else prev_v / scale,
                    change,
                    None if target is None else target / scale,
                    None if share is None else share / 100.0,
                ],
                formats=PER_PERSON_FORMATS if rate.per_person else None,
            )
        )
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
    after = [note]
    for rate in RATES:
        definition = c.targets.definition(rate.key, t.locale)
        if definition:
            after.append(definition + ".")
    return Table(
        "",
        [
            (
                None,
                [
                    t("Unit of measure"),
                    c.period.label(t),
                    c.previous_period.label(t),
                    t("Change"),
                    t("Target for {year}", year=year) if year is not None else t("Target"),
                    t("Share of target"),
                ],
            )
        ],
        # A per-person rate's line is written in đồng: the renderers pick its format by line.
        [None, "0.0%", "0.0%", "+0.0%;-0.0%;0.0%", "0.0%", "0%"],
        None,
        lines,
        label_header=t("Indicator"),
        number_header=t("No."),
        notes=False,
        after=after,
    )


PER_PERSON_FORMATS: list[str | None] = [None, "#,##0", "#,##0", "+#,##0;-#,##0;0", "#,##0", "0%"]


def _commune_cell(t: Translator, f: Field, figures: CommuneFigures) -> object:
    """A figure of a line: blank where no report gave it."""
    if f.type == "choice":
        one = figures.choice(f.key)
        if one is not None:
            return next((ch.label.get(t.locale) for ch in f.choices if ch.value == one), one)
        return choice_counts(t, f, figures.choices.get(f.key, {})) or None
    return figures.value(f.key)


def _field_value(t: Translator, f: Field) -> Callable[[CommuneFigures], object]:
    return lambda figures: _commune_cell(t, f, figures)


def _commune_header(t: Translator, cr: CommuneReports, text: str, key: str) -> str:
    source = cr.source(key)
    return text if source == cr.period else f"{text} — {source.label(t)}"


def commune_table(c: Compiled, t: Translator) -> Table | None:
    """The communes' own reports: one line per commune (per sub-unit above communes), blank
    where a commune has not reported, a total line, learning units against their target."""
    cr = c.commune
    if cr is None:
        return None
    shown = [f for f in cr.form.fields if f.type in ("integer", "money", "choice")]
    columns: list[tuple[str, str | None, str, Callable[[CommuneFigures], object]]] = [
        (t("Communes to report"), "#,##0", t("units"), lambda x: x.expected),
        (t("Reported"), "#,##0", t("reports"), lambda x: x.reported),
        (t("Approved"), "#,##0", t("reports"), lambda x: x.approved if x.reported else None),
        (
            t("Not yet approved"),
            "#,##0",
            t("reports"),
            lambda x: x.reported - x.approved if x.reported else None,
        ),
    ]
    for f in shown:
        fmt = "#,##0" if f.type in ("integer", "money") else None
        measure = t("đồng") if f.type == "money" else ""
        columns.append(
            (
                _commune_header(t, cr, f.label.get(t.locale), f.key),
                fmt,
                measure,
                _field_value(t, f),
            )
        )
        if f.key == LEARNING_UNITS.numerator:
            header = t("Learning units") + " (%)"

            def rate(x: CommuneFigures) -> float | None:
                value = x.rate(LEARNING_UNITS.key)
                return None if value is None else value / 100.0

            columns.append((_commune_header(t, cr, header, LEARNING_UNITS.key), "0.0%", "%", rate))
    lines: list[Line] = []
    for n, line in enumerate(cr.lines, start=1):
        figures = line.figures
        if not figures.reported:
            note: str | None = t("Not reported")
        elif figures.reported < figures.expected:
            note = t("{missing} not reported", missing=figures.expected - figures.reported)
        else:
            note = None
        if note is None and figures.reported == 1 and figures.texts:
            note = "; ".join(figures.texts)
        lines.append(Line(n, line.unit.name, [value(figures) for _, _, _, value in columns], note))
    lines.append(Line(None, t("Total"), [value(cr.total) for _, _, _, value in columns], total=True))
    return Table(
        "",
        [(None, [h for h, _, _, _ in columns])],
        [fmt for _, fmt, _, _ in columns],
        [m for _, _, m, _ in columns],
        lines,
        label_header=t("Unit"),
        number_header=t("No."),
        notes_header=t("Notes"),
        measure_label=t("Unit of measure"),
        after=learning_units_lines(t, cr, c.period),
    )


def reporting_lines(c: Compiled, t: Translator) -> list[str]:
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
    lines = ["; ".join(parts) + "."]
    review = review_line(c, t, limit=60)
    if review:
        lines.append(review)
    missing = c.missing
    if missing:
        names = ", ".join(u.name for u in missing[:60]) + (" …" if len(missing) > 60 else "")
        lines.append(t("Not reported: {names}.", names=names))
    return lines


def build(c: Compiled, t: Translator, profile: Profile | None = None) -> Document:
    """The document of a compiled report."""
    profile = profile or Profile()
    generated = c.generated_at.astimezone(VN_TZ)
    parent, issuing = bodies(t, c)
    (first, *topics) = TOPICS
    sections = [
        Section(t("Reporting and review"), reporting_lines(c, t), [topic_table(c, t, first, 1)]),
        Section(
            t("Results by unit"), [], [topic_table(c, t, topic, n) for n, topic in enumerate(topics, start=1)]
        ),
        Section(t("Progress against the targets"), [], [progress_table(c, t)]),
    ]
    own = commune_table(c, t)
    if own is not None and c.commune is not None:
        title = t("The commune's own report") if c.commune.single else t("The communes' own reports")
        sections.append(Section(title, [], [own]))
    return Document(
        parent_body=parent,
        issuing_body=issuing,
        number=t("No.: …/{symbol}", symbol=profile.symbol or SYMBOL),
        place_date=date_line(t, place_name(c.unit), generated.date()),
        kind=t("REPORT"),
        title=t(
            "Results of study promotion, talent promotion and building a learning society {period}",
            period=period_phrase(t, c.period),
        ),
        sections=sections,
        recipients=[t("Recipients:"), *recipients(t, c)],
        on_behalf=t("ON BEHALF OF THE EXECUTIVE COMMITTEE"),
        signer_title=(profile.signer_title or t("CHAIR")).upper(),
        signer_name=profile.signer_name,
        sign_hint=t("(Signature, full name and seal)"),
        footer=t(
            "Compiled by Khuyến học Bot at {time} on {date} from the latest version of each report.",
            time=f"{generated:%H:%M}",
            date=t.date(generated.date()),
        ),
        period=c.period,
    )
