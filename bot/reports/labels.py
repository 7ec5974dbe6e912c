"""The columns and indicator names every rendering shares (.xlsx, CSV, chart, chat text).

One table of columns keeps the spreadsheet, the CSV and the tests in step: each column says
how its totals line is made (a sum of the lines above, or a rate recomputed from the totals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.domain.i18n import N_, Translator
from bot.domain.periods import Period
from bot.reports.aggregate import VILLAGES_RECOGNIZED, Activities, Figures, UnitRef
from storage.models import COMMUNE, DISTRICT, PROVINCE, RESIDENTIAL_GROUP, VILLAGE

Kind = Literal["count", "money", "percent", "per_person"]

INDICATOR_LABELS = {
    "learning_families": N_("Learning families"),
    "learning_clans": N_("Learning clans"),
    "learning_communities": N_("Learning communities"),
    "learning_citizens": N_("Learning citizens"),
    "learning_units": N_("Learning units"),  # the commune's own report (commune_figures.py)
    "membership": N_("Members per population"),
    "fund_per_person_vnd": N_("Study promotion fund per person"),
    # This year's registrations (shown at H1, beside last year's recognitions).
    "lf_registration": N_("Households registered for Learning Family"),
    "lc_registration": N_("Clans registered for Learning Clan"),
    "lcom_registration": N_("Villages registered for Learning Community"),
    "lcit_registration": N_("People of working age registered for Learning Citizen"),
    "lu_registration": N_("Units registered for Learning Unit"),
}

UNIT_KIND_PLURALS = {
    PROVINCE: N_("provinces"),
    DISTRICT: N_("districts"),
    COMMUNE: N_("communes"),
    VILLAGE: N_("villages and residential groups"),
    RESIDENTIAL_GROUP: N_("villages and residential groups"),
}


@dataclass(frozen=True)
class Column:
    key: str  # machine name: the CSV header
    header: str  # msgid of the spreadsheet header
    kind: Kind
    summed: bool  # the totals line is the sum of the lines (else recomputed from the totals)
    value: Callable[[Figures], float | int | None]


def _sum(key: str) -> Callable[[Figures], int]:
    return lambda f: f.value(key)


def _rate(key: str) -> Callable[[Figures], float | None]:
    return lambda f: f.rate(key)


COLUMNS: tuple[Column, ...] = (
    Column("expected", N_("Units to report"), "count", True, lambda f: f.expected),
    Column("reported", N_("Reported"), "count", True, lambda f: f.reported),
    Column("on_time", N_("On time"), "count", True, lambda f: f.on_time),
    Column("completeness_pct", N_("Reported (%)"), "percent", False, lambda f: f.completeness),
    # Review (DOMAIN.md "Review and approval"): the figures of reports not approved yet are marked.
    Column("approved", N_("Approved"), "count", True, lambda f: f.approved),
    Column("not_approved", N_("Not yet approved"), "count", True, lambda f: f.reported - f.approved),
    Column("households_total", N_("Households"), "count", True, _sum("households_total")),
    Column("lf_recognized", N_("Recognised learning families"), "count", True, _sum("lf_recognized")),
    Column(
        "learning_families_pct", N_("Learning families (%)"), "percent", False, _rate("learning_families")
    ),
    Column("clans_total", N_("Clans"), "count", True, _sum("clans_total")),
    Column("lc_recognized", N_("Recognised learning clans"), "count", True, _sum("lc_recognized")),
    Column("learning_clans_pct", N_("Learning clans (%)"), "percent", False, _rate("learning_clans")),
    Column(
        VILLAGES_RECOGNIZED,
        N_("Villages recognised as learning communities"),
        "count",
        True,
        _sum(VILLAGES_RECOGNIZED),
    ),
    Column(
        "learning_communities_pct",
        N_("Learning communities (%)"),
        "percent",
        False,
        _rate("learning_communities"),
    ),
    Column("adults_total", N_("People of working age"), "count", True, _sum("adults_total")),
    Column(
        "adults_learning_total",
        N_("Of working age, in learning families, clans, communities and units"),
        "count",
        True,
        _sum("adults_learning_total"),
    ),
    Column("lcit_recognized", N_("Recognised learning citizens"), "count", True, _sum("lcit_recognized")),
    Column(
        "learning_citizens_pct", N_("Learning citizens (%)"), "percent", False, _rate("learning_citizens")
    ),
    Column("population_total", N_("Population"), "count", True, _sum("population_total")),
    Column("members_total", N_("Association members"), "count", True, _sum("members_total")),
    Column("membership_pct", N_("Members per population (%)"), "percent", False, _rate("membership")),
    Column("members_new", N_("New members"), "count", True, _sum("members_new")),
    Column("fund_raised_vnd", N_("Fund raised (đ)"), "money", True, _sum("fund_raised_vnd")),
    Column(
        "fund_per_person_vnd", N_("Fund per person (đ)"), "per_person", False, _rate("fund_per_person_vnd")
    ),
    Column("fund_disbursed_vnd", N_("Fund spent (đ)"), "money", True, _sum("fund_disbursed_vnd")),
    Column("fund_balance_vnd", N_("Fund balance (đ)"), "money", True, _sum("fund_balance_vnd")),
    Column("scholarship_count", N_("Scholarships"), "count", True, _sum("scholarship_count")),
    Column("scholarship_amount_vnd", N_("Scholarships (đ)"), "money", True, _sum("scholarship_amount_vnd")),
    Column("award_count", N_("Awards"), "count", True, _sum("award_count")),
    Column("award_amount_vnd", N_("Awards (đ)"), "money", True, _sum("award_amount_vnd")),
    Column("clc_sessions", N_("Learning sessions in villages"), "count", True, _sum("clc_sessions")),
    Column("clc_attendance", N_("Attendances at sessions"), "count", True, _sum("clc_attendance")),
)


@dataclass(frozen=True)
class ActivityColumn:
    key: str
    header: str
    value: Callable[[Activities], int]


ACTIVITY_COLUMNS: tuple[ActivityColumn, ...] = (
    ActivityColumn("activities", N_("Activities"), lambda a: a.count),
    ActivityColumn("sessions", N_("Sessions"), lambda a: a.sessions),
    ActivityColumn("participants", N_("Attendances"), lambda a: a.participants),
    ActivityColumn("participants_female", N_("Of which women"), lambda a: a.participants_female),
    ActivityColumn(
        "lifelong_learning_week", N_("During the Lifelong Learning Week"), lambda a: a.lifelong_learning_week
    ),
)


def formal_name(unit: UnitRef) -> str:
    """'Tỉnh Cao Bằng' for a province stored as 'Cao Bằng' with its designation 'Tỉnh'."""
    kind = (unit.division_type or "").strip()
    if kind and not unit.name.casefold().startswith(kind.casefold()):
        return f"{kind} {unit.name}"
    return unit.name


def indicator_label(t: Translator, key: str) -> str:
    return t(INDICATOR_LABELS.get(key, key))


def rate_label(t: Translator, key: str, source: Period, period: Period) -> str:
    """The indicator's name, saying where its figures come from when that is not `period`:
    "Learning families — recognised, Year 2025" in a half-year report."""
    label = indicator_label(t, key)
    if source == period:
        return label
    return t("{indicator} — recognised, {period}", indicator=label, period=source.label(t))


def kind_plural(t: Translator, kind: str) -> str:
    return t(UNIT_KIND_PLURALS.get(kind, N_("units")))


def format_rate(t: Translator, key: str, value: float | None, *, per: bool = True) -> str:
    """'65,2%' or '25.000 ₫/người' ('25.000 ₫' with `per=False`, under a heading that says per
    person); '—' when there is nothing to compute it from."""
    if value is None:
        return "—"
    if key == "fund_per_person_vnd":
        amount = t.money(round(value))
        return t("{amount} per person", amount=amount) if per else amount
    return t.percent(value)
