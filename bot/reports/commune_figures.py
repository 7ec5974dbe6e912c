"""The commune's own report (content/forms/commune_report.yaml) in the compiled reports.

A commune files figures that belong to no village: learning units (Đơn vị học tập), association
branches in schools, agencies and firms, its own fund, its Cộng đồng học tập rating, the community
learning centre, training, awards. A compiled commune or province report shows them beside the
villages' sums and adds them where they count the same thing (`ADDS_TO`: the branches' members to
the members, the commune's fund to the villages' funds), and measures learning units against
their target (`LEARNING_UNITS`, content/targets.yaml, with its definition there).

One line per sub-unit, as the villages' table: the commune itself in a commune's report, each
commune in a province's, each province in the national one. A commune that has not filed has no
figures (None: shown blank, not 0). The latest version of each report counts, as everywhere, and
its review state (approved, returned, else waiting) is counted per line.

Recognition is once a year (DOMAIN "Recognition cycle"): fields asked only in the year report
(`ask_in`, `otherwise: carried`) are taken, in a half-year report, from the period they are
carried from (last year's year reports), with the rates built on them, as aggregate does for the
villages (`CommuneReports.carried_from` says which period each came from).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.forms.history import carried_source
from bot.domain.forms.model import Field, Form
from bot.domain.i18n import Translator
from bot.domain.periods import Period
from bot.domain.schedules import Deadline, Schedules
from bot.reports.aggregate import (
    REVIEWS,
    SUBMISSIONS,
    UNITS,
    Compiled,
    Figures,
    Rate,
    UnitRef,
    carried_fields,
    in_subtree,
    subtree_ids,
    target_for,
    unit_refs,
    valid_in,
)
from bot.reports.labels import format_rate, indicator_label, rate_label
from bot.reports.targets import TargetSet
from storage.models import COMMUNE, VILLAGE_KINDS
from storage.models_reviews import APPROVED, RETURNED

COMMUNE_FORM = "commune_report"
RATING_FIELD = "commune_lc_rating"

# Đơn vị học tập: units recognised / the agencies, schools and firms the commune manages
# (seed 001 line 62). Measured against `learning_units` in content/targets.yaml, whose
# `definitions:` say how it is computed.
LEARNING_UNITS = Rate("learning_units", "units_recognized", "units_total")
# This year's registrations, shown beside last year's recognitions where those are carried (H1).
UNITS_REGISTRATION = Rate("lu_registration", "units_registered", "units_total", registers="learning_units")
COMMUNE_RATES = (LEARNING_UNITS, UNITS_REGISTRATION)

# A figure of the commune's report → the figure of the villages' reports it adds to: the two
# count the same thing in different places (members of branches outside the villages; the
# commune's own fund beside the villages' funds).
ADDS_TO = {
    "branch_members": "members_total",
    "fund_raised_vnd": "fund_raised_vnd",
    "fund_disbursed_vnd": "fund_disbursed_vnd",
    "fund_balance_vnd": "fund_balance_vnd",
}


@dataclass
class CommuneFigures:
    """The commune reports of one line (a commune, or the communes inside a unit)."""

    expected: int = 0
    reported: int = 0
    approved: int = 0  # reports whose latest version was approved (the rest: waiting, returned)
    returned: int = 0
    sums: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, tuple[int, int]] = field(default_factory=dict)
    choices: dict[str, dict[str, int]] = field(default_factory=dict)  # field → value → reports
    texts: list[str] = field(default_factory=list)  # the text answers (notes), in field order

    def add(self, other: CommuneFigures) -> None:
        self.expected += other.expected
        self.reported += other.reported
        self.approved += other.approved
        self.returned += other.returned
        for key, value in other.sums.items():
            self.sums[key] = self.sums.get(key, 0) + value
        for key, (num, den) in other.pairs.items():
            n0, d0 = self.pairs.get(key, (0, 0))
            self.pairs[key] = (n0 + num, d0 + den)
        self.texts += other.texts
        for key, counts in other.choices.items():
            mine = self.choices.setdefault(key, {})
            for answer, n in counts.items():
                mine[answer] = mine.get(answer, 0) + n

    def take(self, form: Form, values: Mapping[str, Any], review: str | None = None) -> None:
        """Add one report's answers, with the review decision on its version (None: waiting)."""
        self.reported += 1
        self.approved += review == APPROVED
        self.returned += review == RETURNED
        for f in form.fields:
            value = values.get(f.key)
            if value is None:
                continue
            if f.type in ("integer", "money"):
                self.sums[f.key] = self.sums.get(f.key, 0) + int(value)
            elif f.type == "choice":
                counts = self.choices.setdefault(f.key, {})
                counts[str(value)] = counts.get(str(value), 0) + 1
            elif f.type == "text" and str(value).strip():
                self.texts.append(str(value).strip())
        for rate in COMMUNE_RATES:
            num, den = values.get(rate.numerator), values.get(rate.denominator)
            if num is not None and den is not None:
                n0, d0 = self.pairs.get(rate.key, (0, 0))
                self.pairs[rate.key] = (n0 + int(num), d0 + int(den))

    def carry(self, source: CommuneFigures, keys: set[str], rates: set[str]) -> None:
        """Take the figures `keys` and the rates `rates` from `source` (the same line in the
        period they are carried from); what `source` lacks is blank here too."""
        for key in keys:
            self.sums.pop(key, None)
            self.choices.pop(key, None)
            if key in source.sums:
                self.sums[key] = source.sums[key]
            if key in source.choices:
                self.choices[key] = dict(source.choices[key])
        for key in rates:
            if key in source.pairs:
                self.pairs[key] = source.pairs[key]
            else:
                self.pairs.pop(key, None)

    @property
    def waiting(self) -> int:
        """Reports waiting for review: neither approved nor returned."""
        return self.reported - self.approved - self.returned

    def value(self, key: str) -> int | None:
        """The sum of a figure; None when no report gave it (blank, not 0)."""
        return self.sums.get(key)

    def rate(self, key: str) -> float | None:
        """Percent; None when nothing was reported to compute it from."""
        num, den = self.pairs.get(key, (0, 0))
        return 100.0 * num / den if den > 0 else None

    def choice(self, key: str) -> str | None:
        """The answer of a choice field when the line holds one report's answer."""
        counts = self.choices.get(key) or {}
        return next(iter(counts)) if list(counts.values()) == [1] else None


@dataclass
class CommuneLine:
    unit: UnitRef
    figures: CommuneFigures
    targets: TargetSet


@dataclass
class CommuneReports:
    """The communes' own reports inside a compiled report."""

    form: Form
    period: Period
    deadline: Deadline | None
    lines: list[CommuneLine]
    total: CommuneFigures
    targets: TargetSet
    missing: list[UnitRef]  # communes expected that have not filed, by name
    single: bool  # the report of one commune: its one line is the commune itself
    # Figures and rates (by key) taken from another period's reports: at H1, last year's.
    carried_from: dict[str, Period] = field(default_factory=dict)

    @property
    def number_fields(self) -> list[Field]:
        return [f for f in self.form.fields if f.type in ("integer", "money")]

    def source(self, key: str) -> Period:
        """The period a figure or rate of these reports comes from."""
        return self.carried_from.get(key, self.period)

    def combined(self, villages: Figures, key: str) -> int:
        """A villages' figure with what the communes' reports add to it (ADDS_TO)."""
        extra = sum(self.total.value(k) or 0 for k, to in ADDS_TO.items() if to == key)
        return villages.value(key) + extra

    def progress(self, rate: Rate, period: Period) -> float | None:
        """How far the rate of the total is towards its target, in percent."""
        value = self.total.rate(rate.key)
        target = target_for(rate, self.targets, period)
        if value is None or not target:
            return None
        return 100.0 * value / target

    def not_approved(self, t: Translator) -> list[str]:
        """The lines whose figures count without being approved yet (waiting or returned)."""
        out = []
        for line in self.lines:
            f = line.figures
            if f.reported <= f.approved:
                continue
            if line.unit.kind == COMMUNE:
                out.append(line.unit.name)
            else:
                out.append(
                    t(
                        "{unit} ({approved} of {reported} approved)",
                        unit=line.unit.name,
                        approved=t.number(f.approved),
                        reported=t.number(f.reported),
                    )
                )
        return out


def carried_sources(form: Form, period: Period) -> dict[str, Period]:
    """The figures and rates of `form` that `period` takes from another period, with that period
    (at H1: units_recognized, the rating and the learning-units rate from last year's year)."""
    out = {k: src for k, kinds in carried_fields(form).items() if (src := carried_source(period, kinds))}
    for rate in COMMUNE_RATES:
        src = out.get(rate.numerator) or out.get(rate.denominator)
        if src is not None:
            out[rate.key] = src
    return out


async def compile_commune_reports(
    session: AsyncSession, c: Compiled, form: Form, schedules: Schedules
) -> CommuneReports:
    """The commune reports of `c`'s unit and period, one line per row of `c`. Three queries."""
    period = c.period
    deadline = schedules.deadline_for(form.key, period)
    kinds = deadline.expected if deadline else (COMMUNE,)
    prefix = c.unit.path if c.unit else "/"
    depth = len(c.unit.path_ids) if c.unit else 0
    single = c.unit is not None and c.unit.kind in kinds
    carried = carried_sources(form, period)
    periods = {period.key, *(p.key for p in carried.values())}

    def line_of(path: str) -> int | None:
        """The sub-unit a commune counts under: the commune itself, or the child of the unit."""
        ids = [int(p) for p in path.strip("/").split("/") if p]
        if single:
            return ids[-1]
        return ids[depth] if len(ids) > depth else None

    by_period: dict[str, dict[int, CommuneFigures]] = {key: {} for key in periods}
    figures = by_period[period.key]
    communes: dict[int, UnitRef] = {}
    q_expected = select(UNITS).where(
        UNITS.c.kind.in_(kinds), valid_in(period), in_subtree(UNITS.c.path, prefix)
    )
    for u in (await session.execute(q_expected)).mappings():
        ref = UnitRef(u["id"], u["name"], u["kind"], u["code"], u["path"], u["parent_id"], u["division_type"])
        communes[ref.id] = ref
        k = line_of(ref.path)
        if k is not None:
            figures.setdefault(k, CommuneFigures()).expected += 1

    # Every version of the periods' reports, the latest kept here rather than by an anti-join in
    # SQL: a commune report is a few thousand rows among millions, and on PostgreSQL a statistics
    # estimate taken before they arrived turned the anti-join into a 1 s nested loop.
    s = SUBMISSIONS.alias("s")
    q_reports = (
        select(s.c.record_key, s.c.version, s.c.id, s.c.period, UNITS.c.id, UNITS.c.path, s.c["values"])
        .select_from(s)
        .join(UNITS, UNITS.c.id == s.c.unit_id)
        .where(s.c.form_key == form.key, s.c.period.in_(sorted(periods)))
    )
    if c.unit is not None:
        q_reports = q_reports.where(s.c.unit_id.in_(subtree_ids(prefix)))
    latest: dict[str, tuple[int, int, str, int, str, Any]] = {}
    for record, version, sid, pkey, unit_id, path, values in await session.execute(q_reports):
        if record not in latest or version > latest[record][0]:
            latest[record] = (int(version), int(sid), str(pkey), int(unit_id), str(path), values)
    reviews = await _decisions(session, [sid for _, sid, pkey, *_ in latest.values() if pkey == period.key])
    filed: set[int] = set()
    for _, sid, pkey, unit_id, path, values in latest.values():
        k = line_of(path)
        if k is None or not isinstance(values, dict):
            continue
        if pkey == period.key:
            filed.add(unit_id)
        by_period[pkey].setdefault(k, CommuneFigures()).take(form, values, reviews.get(sid))

    # Carried figures and the rates built on them come from the period they are carried from.
    for src in set(carried.values()):
        keys = {k for k, p in carried.items() if p == src}
        rates = {r.key for r in COMMUNE_RATES if r.key in keys}
        for k in set(figures) | set(by_period[src.key]):
            figures.setdefault(k, CommuneFigures()).carry(
                by_period[src.key].get(k, CommuneFigures()), keys - rates, rates
            )

    # Lines: the rows of the compiled report (its sub-units), or the commune itself.
    refs = {c.unit.id: c.unit} if single and c.unit else {r.unit.id: r.unit for r in c.rows}
    targets = {r.unit.id: r.targets for r in c.rows}
    extra = set(figures) - set(refs)
    if extra:
        refs.update(await unit_refs(session, extra))
    lines = [
        CommuneLine(ref, figures.get(ref.id, CommuneFigures()), targets.get(ref.id, c.targets))
        for ref in sorted(refs.values(), key=lambda u: (u.name.casefold(), u.id))
        if ref.kind not in VILLAGE_KINDS
    ]
    total = CommuneFigures()
    for line in lines:
        total.add(line.figures)
    missing = sorted(
        (u for u in communes.values() if u.id not in filed), key=lambda u: (u.name.casefold(), u.id)
    )
    return CommuneReports(form, period, deadline, lines, total, c.targets, missing, single, carried)


async def _decisions(session: AsyncSession, submission_ids: list[int]) -> dict[int, str]:
    """The latest approval or return of each submission (none: waiting)."""
    out: dict[int, str] = {}
    for i in range(0, len(submission_ids), 500):
        chunk = submission_ids[i : i + 500]
        q = (
            select(REVIEWS.c.submission_id, REVIEWS.c.decision)
            .where(REVIEWS.c.submission_id.in_(chunk), REVIEWS.c.decision.in_([APPROVED, RETURNED]))
            .order_by(REVIEWS.c.id)
        )
        for sid, decision in await session.execute(q):
            out[int(sid)] = str(decision)
    return out


# ---- the chat summary ------------------------------------------------------------------------


def choice_counts(t: Translator, f: Field, counts: dict[str, int]) -> str:
    """'Tốt: 2; Khá: 1' in the order of the choices."""
    return "; ".join(
        f"{ch.label.get(t.locale)}: {t.number(counts[ch.value])}" for ch in f.choices if counts.get(ch.value)
    )


def _rating(t: Translator, cr: CommuneReports, figures: CommuneFigures) -> str | None:
    try:
        f = cr.form.field(RATING_FIELD)
    except KeyError:
        return None
    one = figures.choice(RATING_FIELD)
    if cr.single and one is not None:
        try:
            return f.choice(one).label.get(t.locale)
        except KeyError:
            return one
    return choice_counts(t, f, figures.choices.get(RATING_FIELD, {})) or None


def learning_units_lines(t: Translator, cr: CommuneReports, period: Period) -> list[str]:
    """'Learning units — recognised, Year 2025: 6 of 8 recognised, 75% (target 80%, 93.8% of
    it)', the rate's definition (content/targets.yaml), and, where the recognitions are carried
    from another period, this period's registrations. Empty when there is nothing to show."""
    total = cr.total
    lines: list[str] = []
    value = total.rate(LEARNING_UNITS.key)
    source = cr.source(LEARNING_UNITS.key)
    if value is not None:
        recognized, units = total.pairs[LEARNING_UNITS.key]  # the figures of the rate's period
        line = t(
            "{indicator}: {recognized} of {units} recognised, {rate}",
            indicator=rate_label(t, LEARNING_UNITS.key, source, period),
            recognized=t.number(recognized),
            units=t.number(units),
            rate=format_rate(t, LEARNING_UNITS.key, value),
        )
        target = target_for(LEARNING_UNITS, cr.targets, period)
        share = cr.progress(LEARNING_UNITS, period)
        if target is not None and share is not None:
            details = t(
                "target {target}, {share} of it",
                target=format_rate(t, LEARNING_UNITS.key, target),
                share=t.percent(share),
            )
            line += f" ({details})"
        lines.append(line + ".")
        definition = cr.targets.definition(LEARNING_UNITS.key, t.locale)
        if definition:
            lines.append(f"({definition})")
    registered = total.rate(UNITS_REGISTRATION.key)
    if source != period and registered is not None:
        count, units = total.pairs[UNITS_REGISTRATION.key]
        lines.append(
            t(
                "{indicator} — {period}: {registered} of {units}, {rate}.",
                indicator=indicator_label(t, UNITS_REGISTRATION.key),
                period=period.label(t),
                registered=t.number(count),
                units=t.number(units),
                rate=format_rate(t, UNITS_REGISTRATION.key, registered),
            )
        )
    return lines


def review_status(t: Translator, cr: CommuneReports, limit: int = 15) -> str | None:
    """Where the communes' reports stand in review (DOMAIN "Review and approval"): the line of
    one commune's report, or the counts with the lines not yet approved. None when nothing was
    reported."""
    total = cr.total
    if not total.reported:
        return None
    if cr.single:
        title = cr.deadline.title.get(t.locale) if cr.deadline else cr.form.title.get(t.locale)
        if total.approved:
            return t("• {title}: received, approved.", title=title)
        if total.returned:
            return t("• {title}: received, returned for correction (figures not yet approved).", title=title)
        return t("• {title}: received, waiting for review (figures not yet approved).", title=title)
    line = t(
        "Review: {approved} approved, {waiting} waiting, {returned} returned.",
        approved=t.number(total.approved),
        waiting=t.number(total.waiting),
        returned=t.number(total.returned),
    )
    pending = cr.not_approved(t)
    if pending:
        shown = ", ".join(pending[:limit]) + (" …" if len(pending) > limit else "")
        line += " " + t("Figures not yet approved: {units}.", units=shown)
    return line


def summary_lines(c: Compiled, t: Translator, limit: int = 15) -> list[str]:
    """The lines the chat summary adds for the communes' own reports (none without them)."""
    cr = c.commune
    if cr is None:
        return []
    total, villages = cr.total, c.total
    title = cr.deadline.title.get(t.locale) if cr.deadline else cr.form.title.get(t.locale)
    review = review_status(t, cr, limit)
    if cr.single:  # the review line of one commune's report says it was received
        lines = [review or t("• {title}: not received yet.", title=title)]
    else:
        lines = [
            t(
                "• {title}: {reported} of {expected} communes.",
                title=title,
                reported=t.number(total.reported),
                expected=t.number(total.expected),
            )
        ]
        if cr.missing:
            shown = ", ".join(u.name for u in cr.missing[:limit]) + (" …" if len(cr.missing) > limit else "")
            lines.append(t("  Not received from: {units}.", units=shown))
        if review:
            lines.append("  " + review)
    units = learning_units_lines(t, cr, c.period)
    if units:
        lines.append("• " + units[0])
        lines += ["  " + more for more in units[1:]]
    rating = _rating(t, cr, total)
    if rating:
        source = cr.source(RATING_FIELD)
        if source != c.period and cr.single:
            lines.append(
                t(
                    "• Learning Community rating of the commune, {period}: {rating}.",
                    period=source.label(t),
                    rating=rating,
                )
            )
        elif source != c.period:
            lines.append(
                t(
                    "• Learning Community ratings of the communes, {period}: {ratings}.",
                    period=source.label(t),
                    ratings=rating,
                )
            )
        elif cr.single:
            lines.append(t("• Learning Community rating of the commune: {rating}.", rating=rating))
        else:
            lines.append(t("• Learning Community ratings of the communes: {ratings}.", ratings=rating))
    if not total.reported:  # nothing of this period: only what is carried from the last year
        return lines
    if total.value("branch_members") is not None:
        lines.append(
            t(
                "• Association members: {all} ({villages} in villages, {branch_members} in {branches} branches of schools, agencies and firms).",
                all=t.number(cr.combined(villages, "members_total")),
                villages=t.number(villages.value("members_total")),
                branch_members=t.number(total.value("branch_members") or 0),
                branches=t.number(total.value("branches_total") or 0),
            )
        )
    if total.value("fund_raised_vnd") is not None:
        lines.append(
            t(
                "• Study promotion fund raised: {all} ({villages} by the villages, {commune} by the commune); spent {spent}; balance {balance}.",
                all=t.money(cr.combined(villages, "fund_raised_vnd")),
                villages=t.money(villages.value("fund_raised_vnd")),
                commune=t.money(total.value("fund_raised_vnd") or 0),
                spent=t.money(cr.combined(villages, "fund_disbursed_vnd")),
                balance=t.money(cr.combined(villages, "fund_balance_vnd")),
            )
        )
    if total.value("clc_classes") is not None:
        lines.append(
            t(
                "• Community learning centre: {classes} classes and sessions, {learners} learners.",
                classes=t.number(total.value("clc_classes") or 0),
                learners=t.number(total.value("clc_learners") or 0),
            )
        )
    if total.value("trained_officers") is not None:
        lines.append(
            t(
                "• Trained: {officers} officers, {members} members.",
                officers=t.number(total.value("trained_officers") or 0),
                members=t.number(total.value("trained_members") or 0),
            )
        )
    if total.value("awards_collective") is not None:
        lines.append(
            t(
                "• Awards and honours: {collective} collectives, {individual} individuals.",
                collective=t.number(total.value("awards_collective") or 0),
                individual=t.number(total.value("awards_individual") or 0),
            )
        )
    return lines
