"""The read side: compiled figures village → commune → province, straight from SQL.

Nothing here writes. The queries sum the latest version of each record inside the database
(json_extract on SQLite, ->> on PostgreSQL) and GROUP BY the sub-unit a village belongs to,
taken from the materialised path, so that a province of 3,000 villages comes back as one row per
commune and the national report as one row per province, whatever the depth of the tree.

Rates are computed from paired sums: a rate's numerator and denominator are summed over the same
reports (those that gave both), so an optional figure left blank by some villages does not
skew the rate of the others.

Titles are recognised once a year (DOMAIN "Recognition cycle"): a figure the form asks only in
some period kinds (`ask_in`, `otherwise: carried`) is taken, in the other periods, from the
reports of the period it is carried from (at H1: last year's year reports), and so are the rates
built on it. `Compiled.carried_from` says which rates that is, so every rendering labels them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    case,
    cast,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.forms.history import carried_source
from bot.domain.forms.model import Form
from bot.domain.periods import Period
from bot.domain.schedules import Deadline, Schedules
from bot.reports.targets import TargetBook, TargetSet
from storage.models import COMMUNE, PROVINCE, VILLAGE_KINDS, Submission, Unit
from storage.models_reviews import APPROVED, RETURNED, Review
from storage.readonly import ReadOnlyUnitOfWork

if TYPE_CHECKING:
    from bot.reports.commune_figures import CommuneReports

VILLAGE_FORM = "village_report"
ACTIVITY_FORM = "activity_report"
STATUS_FIELD = "village_lc_status"
RECOGNIZED = "recognized"
REGISTERED = "registered"
# Pseudo-fields computed from the status choice of each village report.
VILLAGES_RECOGNIZED = "villages_recognized"
VILLAGES_REGISTERED = "villages_registered"  # registered or recognised this year
VILLAGES_REPORTING = "villages_reporting"


@dataclass(frozen=True, slots=True)
class Rate:
    """A computed indicator: numerator / denominator over the same reports."""

    key: str  # the indicator's id, as in content/targets.yaml
    numerator: str
    denominator: str
    per_person: bool = False  # đồng per person instead of a percentage
    flow: bool = False  # raised during the period: the yearly target scales with its length
    registers: str | None = None  # a registration rate: the recognition rate it leads to


RATES = (
    Rate("learning_families", "lf_recognized", "households_total"),
    Rate("learning_clans", "lc_recognized", "clans_total"),
    Rate("learning_communities", VILLAGES_RECOGNIZED, VILLAGES_REPORTING),
    # The Công dân học tập target counts the working-age people of learning families, clans,
    # communities and units (seed 001 line 54; content/targets.yaml "definitions").
    Rate("learning_citizens", "lcit_recognized", "adults_learning_total"),
    Rate("membership", "members_total", "population_total"),
    Rate("fund_per_person_vnd", "fund_raised_vnd", "population_total", per_person=True, flow=True),
)
# This year's registrations: shown beside last year's recognitions where those are carried (H1).
REGISTRATIONS = (
    Rate("lf_registration", "lf_registered", "households_total", registers="learning_families"),
    Rate("lc_registration", "lc_registered", "clans_total", registers="learning_clans"),
    Rate("lcom_registration", VILLAGES_REGISTERED, VILLAGES_REPORTING, registers="learning_communities"),
    Rate("lcit_registration", "lcit_registered", "adults_total", registers="learning_citizens"),
)
RATE_BY_KEY = {r.key: r for r in RATES + REGISTRATIONS}
REGISTRATION_OF = {r.registers: r for r in REGISTRATIONS if r.registers}


def carried_fields(form: Form | None) -> dict[str, tuple[str, ...]]:
    """The figures of `form` asked only in some period kinds and carried elsewhere, with those
    kinds; the recognised-village count follows the status choice "recognized"."""
    if form is None:
        return {}
    out = {f.key: f.ask_in for f in form.fields if f.carried}
    if STATUS_FIELD in form.field_keys:
        for choice in form.field(STATUS_FIELD).choices:
            if choice.value == RECOGNIZED and choice.ask_in:
                out[VILLAGES_RECOGNIZED] = choice.ask_in
    return out


@dataclass(frozen=True, slots=True)
class UnitRef:
    id: int
    name: str
    kind: str
    code: str | None
    path: str
    parent_id: int | None
    division_type: str | None = None

    @classmethod
    def of(cls, unit: Unit) -> UnitRef:
        return cls(unit.id, unit.name, unit.kind, unit.code, unit.path, unit.parent_id, unit.division_type)

    @property
    def path_ids(self) -> list[int]:
        return [int(p) for p in self.path.strip("/").split("/") if p]


@dataclass
class Activities:
    """Activity reports held in a period: how many, sessions and attendances."""

    count: int = 0
    sessions: int = 0
    participants: int = 0
    participants_female: int = 0
    lifelong_learning_week: int = 0

    def add(self, other: Activities) -> None:
        self.count += other.count
        self.sessions += other.sessions
        self.participants += other.participants
        self.participants_female += other.participants_female
        self.lifelong_learning_week += other.lifelong_learning_week

    @property
    def empty(self) -> bool:
        return self.count == 0


@dataclass
class Figures:
    """The compiled figures of one unit (or sub-unit) for one period."""

    expected: int = 0
    reported: int = 0
    on_time: int = 0
    approved: int = 0  # reports whose latest version the reviewer approved (the rest: waiting, returned)
    returned: int = 0
    sums: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, tuple[int, int]] = field(default_factory=dict)
    activities: Activities = field(default_factory=Activities)

    def add(self, other: Figures) -> None:
        self.expected += other.expected
        self.reported += other.reported
        self.on_time += other.on_time
        self.approved += other.approved
        self.returned += other.returned
        for key, value in other.sums.items():
            self.sums[key] = self.sums.get(key, 0) + value
        for key, (num, den) in other.pairs.items():
            n0, d0 = self.pairs.get(key, (0, 0))
            self.pairs[key] = (n0 + num, d0 + den)
        self.activities.add(other.activities)

    def value(self, key: str) -> int:
        return self.sums.get(key, 0)

    @property
    def waiting(self) -> int:
        """Reports waiting for review: neither approved nor returned."""
        return self.reported - self.approved - self.returned

    def rate(self, key: str) -> float | None:
        """Percent (or đồng per person); None when nothing was reported to compute it from."""
        spec = RATE_BY_KEY[key]
        num, den = self.pairs.get(key, (0, 0))
        if den <= 0:
            return None
        return num / den if spec.per_person else 100.0 * num / den

    @property
    def completeness(self) -> float | None:
        return 100.0 * self.reported / self.expected if self.expected else None

    @property
    def timeliness(self) -> float | None:
        return 100.0 * self.on_time / self.expected if self.expected else None


def target_for(rate: Rate, targets: TargetSet, period: Period) -> float | None:
    """The target the period is measured against: yearly money targets scale with its length."""
    target = targets.get(rate.key)
    if target is None:
        return None
    return target * period.fraction_of_year if rate.flow else target


def progress(figures: Figures, rate: Rate, targets: TargetSet, period: Period) -> float | None:
    """How far the rate is towards its target, in percent (100 = target reached)."""
    value = figures.rate(rate.key)
    target = target_for(rate, targets, period)
    if value is None or not target:
        return None
    return 100.0 * value / target


def score(figures: Figures, targets: TargetSet, period: Period) -> float | None:
    """One number to rank units by (thi đua): mean progress over the rates, each capped at 100."""
    values = [p for r in RATES if (p := progress(figures, r, targets, period)) is not None]
    return sum(min(p, 100.0) for p in values) / len(values) if values else None


@dataclass
class Row:
    """One line of a compiled report: a sub-unit (a village of a commune, a commune of a province)."""

    unit: UnitRef
    figures: Figures
    previous: Figures
    targets: TargetSet


@dataclass
class Compiled:
    """A compiled report of one unit (None: the whole country) for one period."""

    form_key: str
    unit: UnitRef | None
    ancestors: list[UnitRef]  # root first
    period: Period
    deadline: Deadline | None
    rows: list[Row]
    total: Figures
    previous_total: Figures
    targets: TargetSet
    own_activities: Activities  # filed at the unit itself (commune-level activities)
    leaf_rows: bool  # the rows are the reporting units themselves (villages)
    generated_at: datetime
    sum_fields: tuple[str, ...]
    previous_period: Period  # compared with: the form's period before (Schedules.previous_period)
    # Rates (and the figures under them) taken from the reports of another period, by key:
    # at H1 the recognised rates are last year's. Likewise for the previous period's figures.
    carried_from: dict[str, Period] = field(default_factory=dict)
    previous_carried_from: dict[str, Period] = field(default_factory=dict)
    carried_figures: frozenset[str] = frozenset()  # the field keys carried into this period
    # The communes' own reports (bot/reports/commune_figures.py), set by compiled.compile_unit.
    commune: CommuneReports | None = None

    def rate_period(self, key: str) -> Period:
        """The period a rate of this report was computed from."""
        return self.carried_from.get(key, self.period)

    def previous_rate_period(self, key: str) -> Period:
        return self.previous_carried_from.get(key, self.previous_period)

    @property
    def due(self) -> date | None:
        return self.deadline.due_date(self.period) if self.deadline else None

    @property
    def missing(self) -> list[UnitRef]:
        """Reporting units without a report (leaf rows only; else see each row's completeness)."""
        return (
            [r.unit for r in self.rows if r.figures.reported < r.figures.expected] if self.leaf_rows else []
        )


# ---- SQL helpers ---------------------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


def _sql_string(text: str) -> ColumnElement[str]:
    """A constant written into the SQL rather than bound: PostgreSQL matches GROUP BY expressions
    to SELECT expressions textually, and two bound parameters never match."""
    return literal_column("'" + text.replace("'", "''") + "'")


def _key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"not a field key: {key!r}")
    return key


def json_text(col: Any, key: str, dialect: str) -> ColumnElement[str]:
    """A field of a JSON column as SQL text or number (NULL when missing or null)."""
    if dialect == "postgresql":
        result: ColumnElement[str] = col.op("->>")(_sql_string(_key(key)))
        return result
    return func.json_extract(col, _sql_string("$." + _key(key)))


def json_int(col: Any, key: str, dialect: str) -> ColumnElement[int]:
    """An integer field of a JSON column. SQLite's json_extract already returns an integer."""
    if dialect == "postgresql":
        return cast(json_text(col, key, dialect), BigInteger)
    return func.json_extract(col, _sql_string("$." + _key(key)), type_=BigInteger)


def json_equals(col: Any, key: str, value: object, dialect: str) -> ColumnElement[bool]:
    """field == value for a JSON scalar (booleans are 1/0 in SQLite, 'true' in PostgreSQL text)."""
    if isinstance(value, bool):
        if dialect == "postgresql":
            return json_text(col, key, dialect) == _sql_string("true" if value else "false")
        return json_text(col, key, dialect) == literal_column("1" if value else "0")
    if isinstance(value, int):
        return json_int(col, key, dialect) == literal_column(str(int(value)))
    return json_text(col, key, dialect) == _sql_string(str(value))


def child_segment(path: Any, prefix: str, dialect: str) -> ColumnElement[str]:
    """The id (as text) of the child of `prefix` that a path runs through; '' for prefix itself."""
    start: ColumnElement[int] = literal_column(str(len(prefix) + 1))
    rest = func.substr(path, start)
    if dialect == "postgresql":
        result: ColumnElement[str] = func.split_part(rest, _sql_string("/"), literal_column("1"))
        return result
    length = func.max(func.instr(rest, _sql_string("/")) - literal_column("1"), literal_column("0"))
    return func.substr(path, start, length)


# Core tables: building statements from ORM aliases costs more Python than running them.
UNITS = Unit.__table__
SUBMISSIONS = Submission.__table__
REVIEWS = Review.__table__


def valid_in(period: Period, units: Any = UNITS) -> ColumnElement[bool]:
    """The units (of `units`) that exist at some time during `period`."""
    return and_(
        or_(units.c.valid_to.is_(None), units.c.valid_to >= period.start),
        or_(units.c.valid_from.is_(None), units.c.valid_from <= period.end),
    )


def in_subtree(path: Any, prefix: str) -> ColumnElement[bool]:
    """`path` is `prefix` or under it (LIKE with the prefix's wildcards escaped)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return path.like(escaped + "%", escape="\\")  # type: ignore[no-any-return]


def subtree_ids(prefix: str) -> Any:
    """Ids of the units under `prefix`, as an uncorrelated subquery: `unit_id IN (...)` lets both
    databases probe the (form_key, unit_id, period) index once per unit instead of scanning."""
    sub = UNITS.alias("sub")
    return select(sub.c.id).where(in_subtree(sub.c.path, prefix)).correlate(None).scalar_subquery()


def _latest(s: Any) -> ColumnElement[bool]:
    """Only the latest version of each record counts (a correction replaces what it corrects)."""
    newer = SUBMISSIONS.alias("newer")
    return ~exists().where(
        newer.c.form_key == s.c.form_key, newer.c.record_key == s.c.record_key, newer.c.version > s.c.version
    )


# ---- compiled report -----------------------------------------------------------------------------


async def unit_refs(session: AsyncSession, ids: Iterable[int]) -> dict[int, UnitRef]:
    """The units with these ids, by id."""
    wanted = sorted(set(ids))
    out: dict[int, UnitRef] = {}
    for i in range(0, len(wanted), 500):
        rows = await session.execute(select(Unit).where(Unit.id.in_(wanted[i : i + 500])))
        out.update({u.id: UnitRef.of(u) for u in rows.scalars()})
    return out


async def compile_report(
    session: AsyncSession,
    *,
    unit: Unit | UnitRef | None,
    period: Period,
    schedules: Schedules,
    targets: TargetBook,
    sum_fields: Sequence[str],
    now: datetime,
    form_key: str = VILLAGE_FORM,
    expected_kinds: Sequence[str] = VILLAGE_KINDS,
    carried: Mapping[str, Sequence[str]] | None = None,
) -> Compiled:
    """Everything a half-year or annual report of `unit` shows, in four queries.

    `sum_fields` are the form's number fields (integer and money), summed as they are.
    `carried` (from `carried_fields`): figures asked only in some period kinds, taken elsewhere
    from the period they are carried from, with the rates built on them.
    """
    dialect = _dialect(session)
    ref = unit if isinstance(unit, UnitRef) or unit is None else UnitRef.of(unit)
    prefix = ref.path if ref else "/"
    deadline = schedules.deadline_for(form_key, period)
    expected_kinds = deadline.expected if deadline else tuple(expected_kinds)
    previous = schedules.previous_period(form_key, period)
    leaf = ref is not None and ref.kind in expected_kinds
    carries = {
        p.key: {k: src for k, kinds in (carried or {}).items() if (src := carried_source(p, kinds))}
        for p in (period, previous)
    }
    read_periods = {period.key, previous.key} | {
        src.key for sources in carries.values() for src in sources.values()
    }

    # Sub-units: the unit's children valid in the period (or the unit itself when it reports).
    if ref is None:
        kids_q = select(Unit).where(Unit.parent_id.is_(None))
    else:
        kids_q = select(Unit).where(Unit.parent_id == ref.id)
    kids = {u.id: UnitRef.of(u) for u in (await session.execute(kids_q.where(valid_in(period)))).scalars()}
    if leaf and ref is not None:
        kids = {ref.id: ref}

    def key_of(seg: str | None) -> int | None:
        if seg:
            return int(seg)
        return ref.id if leaf and ref is not None else None  # '' is the unit itself

    seg_units = child_segment(UNITS.c.path, prefix, dialect)
    by_period: dict[str, dict[int, Figures]] = {key: {} for key in read_periods}
    figures = by_period[period.key]
    prev_figures = by_period[previous.key]

    # 1. Expected reporting units per sub-unit.
    q_expected = (
        select(seg_units, func.count())
        .where(UNITS.c.kind.in_(expected_kinds), valid_in(period))
        .group_by(seg_units)
    )
    if ref is not None:
        q_expected = q_expected.where(in_subtree(UNITS.c.path, prefix))
    for seg, n in await session.execute(q_expected):
        k = key_of(seg)
        if k is not None:
            figures.setdefault(k, Figures()).expected += int(n)
    q_prev_expected = (
        select(seg_units, func.count())
        .where(UNITS.c.kind.in_(expected_kinds), valid_in(previous))
        .group_by(seg_units)
    )
    if ref is not None:
        q_prev_expected = q_prev_expected.where(in_subtree(UNITS.c.path, prefix))
    for seg, n in await session.execute(q_prev_expected):
        k = key_of(seg)
        if k is not None:
            prev_figures.setdefault(k, Figures()).expected += int(n)

    # 2. Sums of the latest reports, this period and the previous one, per sub-unit. Each JSON
    # field is extracted once per report in a materialised CTE; the outer query only adds up.
    s = SUBMISSIONS.alias("s")
    first = SUBMISSIONS.alias("first")
    v = s.c["values"]
    first_at = func.coalesce(first.c.submitted_at, s.c.submitted_at)
    fields = {f"f{i}": f for i, f in enumerate(sum_fields)}
    source: Any = s
    if dialect == "postgresql":
        # The column is `json` (text): every ->> parses the whole document again, so parse it once
        # per report into typed columns.
        record = (
            func.json_to_record(v)
            .table_valued(
                *(column(_key(f), BigInteger) for f in sum_fields), column(_key(STATUS_FIELD), String)
            )
            .render_derived(name="x", with_types=True)
        )
        source = s.join(record, true())
        status_col: ColumnElement[Any] = record.c[STATUS_FIELD]
        field_cols: dict[str, ColumnElement[Any]] = {alias: record.c[f] for alias, f in fields.items()}
    else:
        status_col = json_text(v, STATUS_FIELD, dialect)
        field_cols = {alias: json_int(v, f, dialect) for alias, f in fields.items()}
    rv = REVIEWS.alias("rv")
    review_col = (  # the latest approval or return of the version (NULL: waiting)
        select(rv.c.decision)
        .where(rv.c.submission_id == s.c.id, rv.c.decision.in_([APPROVED, RETURNED]))
        .order_by(rv.c.id.desc())
        .limit(1)
        .correlate(s)
        .scalar_subquery()
    )
    inner = (
        select(
            s.c.period.label("period"),
            child_segment(UNITS.c.path, prefix, dialect).label("seg"),
            first_at.label("first_at"),
            review_col.label("review"),
            status_col.label("status"),
            *(col.label(alias) for alias, col in field_cols.items()),
        )
        .select_from(source)
        .join(UNITS, UNITS.c.id == s.c.unit_id)
        .outerjoin(
            first,
            and_(
                first.c.form_key == s.c.form_key, first.c.record_key == s.c.record_key, first.c.version == 1
            ),
        )
        .where(s.c.form_key == form_key, s.c.period.in_(sorted(read_periods)), _latest(s))
    )
    if ref is not None:
        inner = inner.where(s.c.unit_id.in_(subtree_ids(prefix)))
    r = inner.cte("r").prefix_with("MATERIALIZED")
    one: ColumnElement[int] = literal_column("1")
    zero: ColumnElement[int] = literal_column("0")
    values: dict[str, ColumnElement[Any]] = {f: r.c[alias] for alias, f in fields.items()}
    values[VILLAGES_RECOGNIZED] = case((r.c.status == _sql_string(RECOGNIZED), one), else_=zero)
    values[VILLAGES_REGISTERED] = case(
        (r.c.status.in_([_sql_string(REGISTERED), _sql_string(RECOGNIZED)]), one), else_=zero
    )
    values[VILLAGES_REPORTING] = case((r.c.status.is_not(None), one), else_=zero)
    sum_keys = list(values)
    due_now = deadline.due_at(period) if deadline else None
    due_prev = deadline.due_at(previous) if deadline and deadline.applies(previous) else None
    on_time_cases = []
    if due_now is not None:
        on_time_cases.append((and_(r.c.period == period.key, r.c.first_at < due_now), one))
    if due_prev is not None:
        on_time_cases.append((and_(r.c.period == previous.key, r.c.first_at < due_prev), one))
    columns: list[ColumnElement[Any]] = [
        r.c.period,
        r.c.seg,
        func.count(),
        func.sum(case(*on_time_cases, else_=zero)) if on_time_cases else func.sum(zero),
    ]
    columns += [func.coalesce(func.sum(values[f]), zero) for f in sum_keys]
    rate_keys = [x.key for x in RATE_BY_KEY.values() if x.numerator in values and x.denominator in values]
    for key in rate_keys:
        rate = RATE_BY_KEY[key]
        num, den = values[rate.numerator], values[rate.denominator]
        both = and_(num.is_not(None), den.is_not(None))
        columns.append(func.coalesce(func.sum(case((both, num), else_=zero)), zero))
        columns.append(func.coalesce(func.sum(case((both, den), else_=zero)), zero))
    columns += [
        func.sum(case((r.c.review == _sql_string(decision), one), else_=zero))
        for decision in (APPROVED, RETURNED)
    ]
    q_reports = select(*columns).group_by(r.c.period, r.c.seg)
    for row in await session.execute(q_reports):
        k = key_of(row[1])
        if k is None:
            continue
        target = by_period[row[0]].setdefault(k, Figures())
        target.reported += int(row[2])
        target.on_time += int(row[3] or 0)
        for i, f in enumerate(sum_keys):
            target.sums[f] = target.sums.get(f, 0) + int(row[4 + i])
        base = 4 + len(sum_keys)
        for i, key in enumerate(rate_keys):
            n0, d0 = target.pairs.get(key, (0, 0))
            target.pairs[key] = (n0 + int(row[base + 2 * i]), d0 + int(row[base + 2 * i + 1]))
        target.approved += int(row[-2] or 0)
        target.returned += int(row[-1] or 0)

    # Carried figures and the rates built on them come from the period they are carried from.
    carried_from: dict[str, dict[str, Period]] = {}
    for p in (period, previous):
        carried_from[p.key] = _overlay(by_period, p, carries[p.key])

    # 3. Activities held in the period and the previous one (by their date), per sub-unit.
    own = Activities()
    act = SUBMISSIONS.alias("a")
    av = act.c["values"]
    held = json_text(av, "activity_date", dialect)
    which = case(
        (held >= _sql_string(period.start.isoformat()), literal_column("1")), else_=literal_column("0")
    ).label("is_current")
    aseg = child_segment(UNITS.c.path, prefix, dialect).label("seg")
    q_act = (
        select(
            aseg,
            which,
            func.count(),
            func.coalesce(func.sum(json_int(av, "sessions", dialect)), 0),
            func.coalesce(func.sum(json_int(av, "participants", dialect)), 0),
            func.coalesce(func.sum(json_int(av, "participants_female", dialect)), 0),
            func.sum(case((json_equals(av, "is_lifelong_learning_week", True, dialect), 1), else_=0)),
        )
        .select_from(act)
        .join(UNITS, UNITS.c.id == act.c.unit_id)
        .where(
            act.c.form_key == ACTIVITY_FORM,
            held >= previous.start.isoformat(),
            held <= period.end.isoformat(),
            _latest(act),
        )
        .group_by(aseg, which)
    )
    if ref is not None:
        q_act = q_act.where(act.c.unit_id.in_(subtree_ids(prefix)))
    for seg_value, current, n, sessions, participants, female, llw in await session.execute(q_act):
        a = Activities(int(n), int(sessions), int(participants), int(female), int(llw or 0))
        k = key_of(seg_value)
        if k is None:
            if current:
                own.add(a)
            continue
        (figures if current else prev_figures).setdefault(k, Figures()).activities.add(a)

    # Sub-units that are no longer valid but still hold data keep their line.
    extra = (set(figures) | set(prev_figures)) - set(kids)
    if extra:
        kids.update(await unit_refs(session, extra))

    ancestors = list((await unit_refs(session, ref.path_ids[:-1])).values()) if ref else []
    ancestors.sort(key=lambda u: len(u.path))
    chain = [*ancestors, *([ref] if ref else [])]
    province_code = next((u.code for u in chain if u.kind == PROVINCE), None)
    commune_code = next((u.code for u in chain if u.kind == COMMUNE), None)
    year = period.end.year if period.kind == "school_year" else period.year
    unit_targets = targets.for_unit(year, province_code, commune_code)

    rows: list[Row] = []
    for kid in sorted(kids.values(), key=lambda u: (u.name.casefold(), u.id)):
        if kid.kind == PROVINCE:
            row_targets = targets.for_unit(year, kid.code)
        elif kid.kind == COMMUNE:
            row_targets = targets.for_unit(year, province_code, kid.code)
        else:
            row_targets = unit_targets
        rows.append(
            Row(kid, figures.get(kid.id, Figures()), prev_figures.get(kid.id, Figures()), row_targets)
        )

    total, previous_total = Figures(), Figures()
    for line in rows:
        total.add(line.figures)
        previous_total.add(line.previous)
    total.activities.add(own)
    return Compiled(
        form_key=form_key,
        unit=ref,
        ancestors=ancestors,
        period=period,
        deadline=deadline,
        rows=rows,
        total=total,
        previous_total=previous_total,
        targets=unit_targets,
        own_activities=own,
        leaf_rows=all(r.unit.kind in expected_kinds for r in rows) and bool(rows),
        generated_at=now,
        sum_fields=tuple(sum_fields),
        previous_period=previous,
        carried_from=carried_from[period.key],
        previous_carried_from=carried_from[previous.key],
        carried_figures=frozenset(carries[period.key]),
    )


def _overlay(
    by_period: dict[str, dict[int, Figures]], period: Period, sources: Mapping[str, Period]
) -> dict[str, Period]:
    """Put the carried figures of `period`, and the rates that read them, in its Figures from
    the periods they are carried from; the rates so taken, with their period."""
    into = by_period[period.key]
    rates: dict[str, Period] = {}
    for rate in RATE_BY_KEY.values():
        source = sources.get(rate.numerator) or sources.get(rate.denominator)
        if source is not None:
            rates[rate.key] = source
    for source in {*sources.values(), *rates.values()}:
        for unit_id, found in by_period[source.key].items():
            target = into.setdefault(unit_id, Figures())
            for key, src in sources.items():
                if src == source:
                    target.sums[key] = found.sums.get(key, 0)
            for key, src in rates.items():
                if src == source:
                    target.pairs[key] = found.pairs.get(key, (0, 0))
    for unit_id, target in into.items():  # sub-units with nothing in the source period
        for key, src in sources.items():
            if unit_id not in by_period[src.key]:
                target.sums[key] = 0
        for key, src in rates.items():
            if unit_id not in by_period[src.key]:
                target.pairs[key] = (0, 0)
    return rates


# ---- who has not reported ------------------------------------------------------------------------


def _matching_records(deadline: Deadline, period: Period, dialect: str, within: str | None = None) -> Any:
    """Paths of the units of the latest records that count for `period` (inside `within`)."""
    s = SUBMISSIONS.alias("s")
    q = (
        select(UNITS.c.path)
        .select_from(s)
        .join(UNITS, UNITS.c.id == s.c.unit_id)
        .where(s.c.form_key == deadline.form, _latest(s))
    )
    if within is not None:
        q = q.where(s.c.unit_id.in_(subtree_ids(within)))
    if deadline.date_field:
        held = json_text(s.c["values"], deadline.date_field, dialect)
        q = q.where(held >= period.start.isoformat(), held <= period.end.isoformat())
    else:
        q = q.where(s.c.period == period.key)
    for key, value in deadline.where.items():
        q = q.where(json_equals(s.c["values"], key, value, dialect))
    return q


async def missing_units(
    reads: ReadOnlyUnitOfWork, deadline: Deadline, period: Period, within: UnitRef | None = None
) -> list[UnitRef]:
    """Units expected to report for `period` that have not (a report inside a unit counts for it),
    inside `within`, or else inside the deadline's own area (a request's)."""
    session = reads.session
    dialect = _dialect(session)
    scope = within.path if within is not None else deadline.area
    expected_q = select(Unit).where(Unit.kind.in_(deadline.expected), valid_in(period))
    records_q = _matching_records(deadline, period, dialect, scope)
    if scope is not None:
        expected_q = expected_q.where(in_subtree(Unit.path, scope))
    covered: set[int] = set()
    for (path,) in await session.execute(records_q.distinct()):
        covered.update(int(p) for p in path.strip("/").split("/") if p)
    expected = (await session.execute(expected_q.order_by(Unit.path))).scalars()
    return [UnitRef.of(u) for u in expected if u.id not in covered]


async def reported_unit_ids(
    session: AsyncSession, deadline: Deadline, period: Period, unit_ids: Sequence[int]
) -> set[int]:
    """Which of `unit_ids` have reported for `period` (themselves or a unit inside them)."""
    if not unit_ids:
        return set()
    dialect = _dialect(session)
    covered: set[int] = set()
    for (path,) in await session.execute(_matching_records(deadline, period, dialect).distinct()):
        covered.update(int(p) for p in path.strip("/").split("/") if p)
    return covered & set(unit_ids)


async def expected_by_child(
    reads: ReadOnlyUnitOfWork, kinds: Sequence[str], period: Period, within: UnitRef
) -> dict[int, int]:
    """How many units of `kinds` each child of `within` holds (valid in the period)."""
    session = reads.session
    dialect = _dialect(session)
    seg = child_segment(UNITS.c.path, within.path, dialect)
    q = (
        select(seg, func.count())
        .where(UNITS.c.kind.in_(kinds), valid_in(period), in_subtree(UNITS.c.path, within.path))
        .group_by(seg)
    )
    return {int(k): int(n) for k, n in await session.execute(q) if k}


# ---- what happened in a week ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    unit: UnitRef
    period: str
    version: int
    submitted_at: datetime


async def received_between(
    reads: ReadOnlyUnitOfWork, within: UnitRef, start: datetime, end: datetime, form_key: str = VILLAGE_FORM
) -> list[Received]:
    """Reports (and corrections: version > 1) sent in [start, end) from inside `within`."""
    q = (
        select(Unit, Submission.period, Submission.version, Submission.submitted_at)
        .join(Unit, Unit.id == Submission.unit_id)
        .where(
            Submission.form_key == form_key,
            Submission.submitted_at >= start,
            Submission.submitted_at < end,
            in_subtree(Unit.path, within.path),
        )
        .order_by(Submission.submitted_at)
    )
    return [Received(UnitRef.of(u), p, ver, at) for u, p, ver, at in await reads.session.execute(q)]


async def activities_between(
    reads: ReadOnlyUnitOfWork, within: UnitRef, first_day: date, last_day: date
) -> Activities:
    """Activities held from `first_day` to `last_day` (by their date) inside `within`."""
    session = reads.session
    dialect = _dialect(session)
    s = SUBMISSIONS
    v = s.c["values"]
    held = json_text(v, "activity_date", dialect)
    llw = case((json_equals(v, "is_lifelong_learning_week", True, dialect), 1), else_=0)
    q = select(
        func.count(),
        func.coalesce(func.sum(json_int(v, "sessions", dialect)), 0),
        func.coalesce(func.sum(json_int(v, "participants", dialect)), 0),
        func.coalesce(func.sum(json_int(v, "participants_female", dialect)), 0),
        func.coalesce(func.sum(llw), 0),
    ).where(
        s.c.form_key == ACTIVITY_FORM,
        held >= first_day.isoformat(),
        held <= last_day.isoformat(),
        _latest(s),
        s.c.unit_id.in_(subtree_ids(within.path)),
    )
    n, sessions, participants, female, llw = (await session.execute(q)).one()
    return Activities(int(n), int(sessions), int(participants), int(female), int(llw))
