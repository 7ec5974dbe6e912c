"""The commune's own report (content/forms/commune_report.yaml) in the compiled reports.

A commune files figures that belong to no village: learning units (Đơn vị học tập), association
branches in schools, agencies and firms, its own fund, its Cộng đồng học tập rating, the community
learning centre, training, awards. A compiled commune or province report shows them beside the
villages' sums and adds them where they count the same thing (`ADDS_TO`: the branches' members to
the members, the commune's fund to the villages' funds), and measures learning units against
their target (`LEARNING_UNITS`, content/targets.yaml).

One line per sub-unit, as the villages' table: the commune itself in a commune's report, each
commune in a province's, each province in the national one. A commune that has not filed has no
figures (None: shown blank, not 0). The latest version of each report counts, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.forms.model import Field, Form
from bot.domain.i18n import N_, Translator
from bot.domain.periods import Period
from bot.domain.schedules import Deadline, Schedules
from bot.reports.aggregate import (
    SUBMISSIONS,
    UNITS,
    Compiled,
    Figures,
    Rate,
    UnitRef,
    _in_subtree,
    _subtree_ids,
    _valid_in,
    target_for,
    unit_refs,
)
from bot.reports.labels import format_rate
from bot.reports.targets import TargetSet
from storage.models import COMMUNE, VILLAGE_KINDS

COMMUNE_FORM = "commune_report"
RATING_FIELD = "commune_lc_rating"

# Đơn vị học tập: units recognised / the agencies, schools and firms the commune manages
# (seed 001 line 62). Measured against `learning_units` in content/targets.yaml.
LEARNING_UNITS = Rate("learning_units", "units_recognized", "units_total")
COMMUNE_RATES = (LEARNING_UNITS,)
RATE_LABELS = {"learning_units": N_("Learning units")}
RATE_DEFINITIONS = {
    "learning_units": N_(
        "units recognised as Learning Unit / agencies, schools and firms the commune manages"
    ),
}

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
    sums: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, tuple[int, int]] = field(default_factory=dict)
    choices: dict[str, dict[str, int]] = field(default_factory=dict)  # field → value → reports
    texts: list[str] = field(default_factory=list)  # the text answers (notes), in field order

    def add(self, other: CommuneFigures) -> None:
        self.expected += other.expected
        self.reported += other.reported
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

    def take(self, form: Form, values: dict[str, Any]) -> None:
        """Add one report's answers."""
        self.reported += 1
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

    def value(self, key: str) -> int | None:
        """The sum of a figure; None when no report gave it (blank, not 0)."""
        return self.sums.get(key) if self.reported else None

    def rate(self, key: str) -> float | None:
        """Percent; None when nothing was reported to compute it from."""
        num, den = self.pairs.get(key, (0, 0))
        return 100.0 * num / den if den > 0 else None

    def choice(self, key: str) -> str | None:
        """The answer of a choice field when the line is one commune's report."""
        counts = self.choices.get(key) or {}
        return next(iter(counts)) if self.reported == 1 and len(counts) == 1 else None


@dataclass
class CommuneLine:
    unit: UnitRef
    figures: CommuneFigures
    targets: TargetSet


@dataclass
class CommuneReports:
    """The communes' own reports inside a compiled report."""

    form: Form
    deadline: Deadline | None
    lines: list[CommuneLine]
    total: CommuneFigures
    targets: TargetSet
    missing: list[UnitRef]  # communes expected that have not filed, by name
    single: bool  # the report of one commune: its one line is the commune itself

    @property
    def number_fields(self) -> list[Field]:
        return [f for f in self.form.fields if f.type in ("integer", "money")]

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


async def compile_commune_reports(
    session: AsyncSession, c: Compiled, form: Form, schedules: Schedules
) -> CommuneReports:
    """The commune reports of `c`'s unit and period, one line per row of `c`. Two queries."""
    period = c.period
    deadline = schedules.deadline_for(form.key, period)
    kinds = deadline.expected if deadline else (COMMUNE,)
    prefix = c.unit.path if c.unit else "/"
    depth = len(c.unit.path_ids) if c.unit else 0
    single = c.unit is not None and c.unit.kind in kinds

    def line_of(path: str) -> int | None:
        """The sub-unit a commune counts under: the commune itself, or the child of the unit."""
        ids = [int(p) for p in path.strip("/").split("/") if p]
        if single:
            return ids[-1]
        return ids[depth] if len(ids) > depth else None

    figures: dict[int, CommuneFigures] = {}
    communes: dict[int, UnitRef] = {}
    q_expected = select(UNITS).where(
        UNITS.c.kind.in_(kinds), _valid_in(period), _in_subtree(UNITS.c.path, prefix)
    )
    for u in (await session.execute(q_expected)).mappings():
        ref = UnitRef(u["id"], u["name"], u["kind"], u["code"], u["path"], u["parent_id"], u["division_type"])
        communes[ref.id] = ref
        k = line_of(ref.path)
        if k is not None:
            figures.setdefault(k, CommuneFigures()).expected += 1

    # Every version of the period's reports, the latest kept here rather than by an anti-join in
    # SQL: a commune report is a few thousand rows among millions, and on PostgreSQL a statistics
    # estimate taken before they arrived turned the anti-join into a 1 s nested loop.
    s = SUBMISSIONS.alias("s")
    q_reports = (
        select(s.c.record_key, s.c.version, UNITS.c.id, UNITS.c.path, s.c["values"])
        .select_from(s)
        .join(UNITS, UNITS.c.id == s.c.unit_id)
        .where(s.c.form_key == form.key, s.c.period == period.key)
    )
    if c.unit is not None:
        q_reports = q_reports.where(s.c.unit_id.in_(_subtree_ids(prefix)))
    latest: dict[str, tuple[int, int, str, Any]] = {}
    for record, version, unit_id, path, values in await session.execute(q_reports):
        if record not in latest or version > latest[record][0]:
            latest[record] = (int(version), int(unit_id), str(path), values)
    filed: set[int] = set()
    for _, unit_id, path, values in latest.values():
        k = line_of(path)
        if k is None or not isinstance(values, dict):
            continue
        filed.add(unit_id)
        figures.setdefault(k, CommuneFigures()).take(form, values)

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
    return CommuneReports(form, deadline, lines, total, c.targets, missing, single)


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


def learning_units_line(t: Translator, cr: CommuneReports, period: Period) -> str | None:
    """'Learning units: 6 of 8 recognised (75%; target 80%, 93.8% of it) — definition'."""
    total = cr.total
    value = total.rate(LEARNING_UNITS.key)
    if value is None:
        return None
    line = t(
        "Learning units: {recognized} of {units} recognised, {rate}",
        recognized=t.number(total.value(LEARNING_UNITS.numerator) or 0),
        units=t.number(total.value(LEARNING_UNITS.denominator) or 0),
        rate=format_rate(t, LEARNING_UNITS.key, value),
    )
    target = target_for(LEARNING_UNITS, cr.targets, period)
    share = cr.progress(LEARNING_UNITS, period)
    if target is not None and share is not None:
        line += (
            " ("
            + t(
                "target {target}, {share} of it",
                target=format_rate(t, LEARNING_UNITS.key, target),
                share=t.percent(share),
            )
            + ")"
        )
    return line + ". " + t("Rate: {definition}.", definition=t(RATE_DEFINITIONS[LEARNING_UNITS.key]))


def summary_lines(c: Compiled, t: Translator, limit: int = 15) -> list[str]:
    """The lines the chat summary adds for the communes' own reports (none without them)."""
    cr = c.commune
    if cr is None:
        return []
    total, villages = cr.total, c.total
    title = cr.deadline.title.get(t.locale) if cr.deadline else cr.form.title.get(t.locale)
    if cr.single:
        if not total.reported:
            return [t("• {title}: not received yet.", title=title)]
        lines = [t("• {title}: received.", title=title)]
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
        if not total.reported:
            return lines
    units = learning_units_line(t, cr, c.period)
    if units:
        lines.append("• " + units)
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
    rating = _rating(t, cr, total)
    if rating and cr.single:
        lines.append(t("• Learning Community rating of the commune: {rating}.", rating=rating))
    elif rating:
        lines.append(t("• Learning Community ratings of the communes: {ratings}.", ratings=rating))
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
