"""The shipped forms, their rules on crafted answers, and the loader's refusals."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain.forms import (
    Form,
    FormError,
    Text,
    check_rules,
    format_value,
    load_form,
    load_forms,
    should_ask,
)
from bot.domain.forms.rules import format_message
from bot.domain.i18n import translator

FORMS_DIR = Path(__file__).resolve().parents[1] / "content" / "forms"

# DOMAIN.md "Village report", in the order of its table.
VILLAGE_FIELDS = [
    "households_total",
    "population_total",
    "lf_registered",
    "lf_recognized",
    "clans_total",
    "lc_registered",
    "lc_recognized",
    "clan_boards",
    "village_lc_status",
    "members_total",
    "members_new",
    "adults_total",
    "lcit_registered",
    "adults_learning_total",
    "lcit_recognized",
    "fund_raised_vnd",
    "fund_disbursed_vnd",
    "fund_balance_vnd",
    "scholarship_count",
    "scholarship_amount_vnd",
    "award_count",
    "award_amount_vnd",
    "clc_sessions",
    "clc_attendance",
    "notes",
]
VILLAGE_OPTIONAL = {"population_total", "adults_total", "adults_learning_total", "notes"}
VILLAGE_CARRY_OVER = {
    "households_total",
    "population_total",
    "clans_total",
    "clan_boards",
    "members_total",
    "adults_total",
    "adults_learning_total",
    "village_lc_status",
}
# Recognised once a year (DOMAIN "Recognition cycle"): asked in the year report, carried at H1.
VILLAGE_YEAR_ONLY = {"lf_recognized", "lc_recognized", "adults_learning_total", "lcit_recognized"}

# DOMAIN.md "Activity report" (village and photo are asked by the engine, not the form).
ACTIVITY_FIELDS = [
    "activity_date",
    "end_date",
    "activity_type",
    "topic_area",
    "organizer",
    "sessions",
    "participants",
    "participants_female",
    "participants_ethnic_minority",
    "cost_vnd",
    "funding_source",
    "notes",
]
ACTIVITY_OPTIONAL = {
    "end_date",
    "participants_ethnic_minority",
    "cost_vnd",
    "funding_source",
    "notes",
}


@pytest.fixture(scope="module")
def forms() -> dict[str, Form]:
    return load_forms(FORMS_DIR)


@pytest.fixture(scope="module")
def village(forms: dict[str, Form]) -> Form:
    return forms["village_report"]


@pytest.fixture(scope="module")
def activity(forms: dict[str, Form]) -> Form:
    return forms["activity_report"]


def violated(
    form: Form,
    values: dict[str, object],
    prev: dict[str, object] | None = None,
    context: dict[str, object] | None = None,
) -> set[str]:
    """The rules broken, with `prev` as every earlier report (prev, opening and last year alike:
    which report each reads is tested in tests/test_rules_history.py)."""
    found = check_rules(
        form,
        values,
        prev or {},
        context or {},
        answered=form.field_keys,
        focus=None,
        locale="vi",
        opening=prev or {},
        last_year=prev or {},
    )
    return {v.rule.id for v in found}


# --- the shipped forms --------------------------------------------------------------------------


def test_the_forms_load(forms: dict[str, Form]) -> None:
    assert set(forms) == {"village_report", "activity_report", "commune_report", "pupils_in_hardship"}
    assert [k for k, f in forms.items() if f.for_requests] == ["pupils_in_hardship"]


def test_village_report_shape(village: Form) -> None:
    assert list(village.field_keys) == VILLAGE_FIELDS
    assert village.unit_kinds == ("village", "residential_group")
    assert village.period_kinds == ("half_year", "year")
    assert village.record == "per_period"
    assert {f.key for f in village.fields if f.optional} == VILLAGE_OPTIONAL
    assert {f.key for f in village.fields if f.carry_over} == VILLAGE_CARRY_OVER
    assert {f.key for f in village.fields if f.type == "money"} == {
        k for k in VILLAGE_FIELDS if k.endswith("_vnd")
    }
    assert village.field("village_lc_status").type == "choice"
    assert village.field("notes").type == "text"
    assert village.field("notes").max_length == 1000
    for field in village.fields:
        if field.type in ("integer", "money"):
            assert field.min == 0, field.key
            assert field.max is not None and field.max > 0, field.key
    # every question is asked: the amount/count rules rely on it
    assert all(f.ask_if is None for f in village.fields)
    # ... except that recognitions are asked only at year end, and shown (carried) at H1
    assert {f.key for f in village.fields if f.ask_in} == VILLAGE_YEAR_ONLY
    assert all(f.ask_in == ("year",) and f.carried for f in village.fields if f.ask_in)
    status = village.field("village_lc_status")
    assert [c.value for c in status.choices_in("half_year")] == ["not_registered", "registered"]
    assert [c.value for c in status.choices_in("year")] == ["not_registered", "registered", "recognized"]


def test_activity_report_shape(activity: Form) -> None:
    assert list(activity.field_keys) == ACTIVITY_FIELDS
    assert activity.unit_kinds == ("commune", "village", "residential_group")
    assert activity.period_kinds == ("year",)
    assert activity.record == "per_entry"
    assert {f.key for f in activity.fields if f.optional} == ACTIVITY_OPTIONAL
    assert activity.field("activity_date").type == "date"
    assert activity.field("end_date").type == "date"
    assert activity.field("sessions").min == 1
    assert activity.field("cost_vnd").type == "money"
    assert len(activity.field("activity_type").choices) == 11
    assert len(activity.field("topic_area").choices) == 9
    assert len(activity.field("organizer").choices) == 7


@pytest.mark.parametrize("key", ["village_report", "activity_report"])
def test_every_text_is_bilingual_and_every_field_has_help(forms: dict[str, Form], key: str) -> None:
    form = forms[key]
    assert form.title.vi and form.title.en
    assert form.description is not None
    for field in form.fields:
        assert field.label.vi and field.label.en, field.key
        assert field.help is not None and field.help.vi and field.help.en, field.key
        for choice in field.choices:
            assert choice.label.vi and choice.label.en
    for rule in form.rules:
        assert rule.message.vi and rule.message.en, rule.id
        if rule.severity == "soft":
            assert rule.message.vi.endswith("Anh/chị có chắc không?"), rule.id
            assert rule.message.en.endswith("Are you sure?"), rule.id


def test_village_status_choices_accept_words_without_diacritics(village: Form) -> None:
    field = village.field("village_lc_status")
    assert [c.value for c in field.choices] == ["not_registered", "registered", "recognized"]
    words = {c.value: {a.casefold() for a in c.aliases} for c in field.choices}
    assert "chua dang ky" in words["not_registered"]
    assert "da dang ky" in words["registered"]
    assert {"dat", "duoc cong nhan"} <= words["recognized"]


def test_digest_and_definition(village: Form) -> None:
    again = load_form(FORMS_DIR / "village_report.yaml")
    assert again.digest == village.digest
    assert len(village.digest) == 64
    assert village.definition == yaml.safe_load(
        (FORMS_DIR / "village_report.yaml").read_text(encoding="utf-8")
    )
    assert again == village
    assert hash(again) == hash(village)


# --- every rule fires on a violating input, none on a valid one --------------------------------

VILLAGE_VALID: dict[str, object] = {
    "households_total": 200,
    "population_total": 800,
    "lf_registered": 150,
    "lf_recognized": 140,
    "clans_total": 10,
    "lc_registered": 8,
    "lc_recognized": 7,
    "clan_boards": 6,
    "village_lc_status": "registered",
    "members_total": 200,
    "members_new": 10,
    "adults_total": 500,
    "lcit_registered": 100,
    "adults_learning_total": 400,
    "lcit_recognized": 80,
    "fund_raised_vnd": 10_000_000,
    "fund_disbursed_vnd": 9_000_000,  # scholarships 5,000,000 + awards 4,000,000
    "fund_balance_vnd": 6_000_000,
    "scholarship_count": 10,
    "scholarship_amount_vnd": 5_000_000,
    "award_count": 20,
    "award_amount_vnd": 4_000_000,
    "clc_sessions": 12,
    "clc_attendance": 600,
    "notes": "Gia đình ông A có 3 con đỗ đại học.",
}
VILLAGE_PREV: dict[str, object] = {
    "households_total": 195,
    "population_total": 790,
    "lf_recognized": 130,
    "clans_total": 10,
    "lc_recognized": 6,
    "members_total": 190,
    "adults_total": 490,
    "fund_balance_vnd": 5_000_000,
}

# (rule, changed answers, changed previous answers, every rule expected to fire)
VILLAGE_CASES: list[tuple[str, dict[str, object], dict[str, object], set[str]]] = [
    ("members_new_within_members", {"members_new": 201}, {}, set()),
    ("adults_within_population", {"adults_total": 801}, {"adults_total": 800}, set()),
    ("clan_boards_within_clans", {"clan_boards": 11}, {}, set()),
    ("adults_learning_within_adults", {"adults_learning_total": 501}, {}, set()),
    ("lf_registered_within_households", {"lf_registered": 201}, {}, set()),
    (
        "lf_recognized_within_households",
        {"lf_recognized": 201},
        {},
        {"lf_recognized_above_registered", "lf_rate_change"},
    ),
    ("lc_registered_within_clans", {"lc_registered": 11}, {}, set()),
    (
        "lc_recognized_within_clans",
        {"lc_recognized": 11},
        {},
        {"lc_rate_change", "lc_recognized_above_registered"},
    ),
    ("lcit_registered_within_adults", {"lcit_registered": 501}, {}, set()),
    ("lcit_recognized_within_adults", {"lcit_recognized": 501}, {}, {"lcit_recognized_above_registered"}),
    (
        "members_within_population",
        {"members_total": 801},
        {"members_total": 790},
        {"membership_above_60_percent"},
    ),
    ("scholarship_amount_needs_count", {"scholarship_count": 0}, {}, set()),
    (
        "scholarship_count_needs_amount",
        {"scholarship_amount_vnd": 0},
        {},
        {"scholarship_average_range"},
    ),
    ("award_amount_needs_count", {"award_count": 0}, {}, set()),
    ("award_count_needs_amount", {"award_amount_vnd": 0}, {}, {"award_average_range"}),
    ("clc_attendance_needs_sessions", {"clc_sessions": 0}, {}, set()),
    ("lf_recognized_above_registered", {"lf_registered": 130}, {}, set()),
    ("lc_recognized_above_registered", {"lc_registered": 6}, {}, set()),
    ("lcit_recognized_above_registered", {"lcit_registered": 79}, {}, set()),
    # 1,000 đ short: the fund still reconciles within its ±1,000 đ
    ("fund_spent_covers_scholarships_and_awards", {"fund_disbursed_vnd": 8_999_000}, {}, set()),
    ("fund_reconciles", {"fund_balance_vnd": 6_001_001}, {}, set()),
    ("fund_reconciles", {"fund_balance_vnd": 5_998_999}, {}, set()),
    ("scholarship_average_range", {"scholarship_amount_vnd": 400_000}, {}, set()),
    (
        "scholarship_average_range",
        {"scholarship_count": 1, "scholarship_amount_vnd": 20_000_001},
        {},
        {"fund_spent_covers_scholarships_and_awards"},
    ),
    ("award_average_range", {"award_amount_vnd": 200_000}, {}, set()),
    (
        "award_average_range",
        {"award_count": 1, "award_amount_vnd": 25_000_000},
        {},
        {"fund_spent_covers_scholarships_and_awards"},
    ),
    ("membership_above_60_percent", {"members_total": 481}, {"members_total": 480}, set()),
    ("membership_below_5_percent", {"members_total": 39}, {"members_total": 39}, set()),
    ("households_total_change", {"households_total": 220}, {}, set()),
    ("population_total_change", {"population_total": 900}, {}, set()),
    ("clans_total_change", {"clans_total": 12}, {}, set()),
    ("members_total_change", {"members_total": 250}, {}, set()),
    ("adults_total_change", {"adults_total": 600}, {}, set()),
    ("lf_rate_change", {"lf_recognized": 90}, {}, set()),
    ("lc_rate_change", {"lc_recognized": 3}, {}, set()),
    ("clc_attendance_per_session", {"clc_attendance": 3601}, {}, set()),
]

# Answers right on a boundary, which must pass.
VILLAGE_BOUNDARIES: list[tuple[dict[str, object], dict[str, object]]] = [
    ({"lf_registered": 200, "lf_recognized": 140}, {}),
    ({"fund_balance_vnd": 6_001_000}, {}),
    ({"fund_balance_vnd": 5_999_000}, {}),
    ({"lc_registered": 7, "lcit_registered": 80}, {}),  # recognised = registered
    ({"adults_total": 800, "adults_learning_total": 500}, {"adults_total": 800}),  # = the whole
    ({"scholarship_amount_vnd": 500_000}, {}),  # 50,000 a scholarship
    (
        {
            "scholarship_count": 1,
            "scholarship_amount_vnd": 20_000_000,
            "fund_raised_vnd": 25_000_000,
            "fund_disbursed_vnd": 24_000_000,
        },
        {},
    ),
    ({"members_total": 480}, {"members_total": 480}),  # exactly 60%
    ({"members_total": 40}, {"members_total": 40}),  # exactly 5%
    ({"households_total": 214}, {"households_total": 195}),  # 9.7%
    ({"clans_total": 11}, {}),  # exactly 10%
    ({"lc_recognized": 4}, {}),  # 40% after 60%: exactly 20 points
    ({"clc_attendance": 3600}, {}),  # exactly 300 a session
    ({"scholarship_count": 0, "scholarship_amount_vnd": 0}, {}),
    ({"award_count": 0, "award_amount_vnd": 0}, {}),
    ({"clc_sessions": 0, "clc_attendance": 0}, {}),
]


def test_valid_village_report_breaks_no_rule(village: Form) -> None:
    assert violated(village, VILLAGE_VALID, VILLAGE_PREV) == set()


@pytest.mark.parametrize(("changes", "prev_changes"), VILLAGE_BOUNDARIES)
def test_village_boundaries_pass(
    village: Form, changes: dict[str, object], prev_changes: dict[str, object]
) -> None:
    values = VILLAGE_VALID | changes
    assert violated(village, values, VILLAGE_PREV | prev_changes) == set()


@pytest.mark.parametrize(("rule_id", "changes", "prev_changes", "also"), VILLAGE_CASES)
def test_village_rule_fires(
    village: Form,
    rule_id: str,
    changes: dict[str, object],
    prev_changes: dict[str, object],
    also: set[str],
) -> None:
    values = VILLAGE_VALID | changes
    assert violated(village, values, VILLAGE_PREV | prev_changes) == {rule_id} | also


def test_every_village_rule_has_a_case(village: Form) -> None:
    assert {case[0] for case in VILLAGE_CASES} == {r.id for r in village.rules}


def test_village_hard_and_soft_rules_match_domain(village: Form) -> None:
    hard = {r.id for r in village.rules if r.severity == "hard"}
    assert hard == {case[0] for case in VILLAGE_CASES[:16]}


PERIOD: dict[str, object] = {"period_start": date(2025, 7, 1), "period_end": date(2025, 12, 31)}
ACTIVITY_VALID: dict[str, object] = {
    "activity_date": date(2025, 10, 1),
    "end_date": date(2025, 10, 7),
    "activity_type": "reading_festival",
    "topic_area": "reading_culture",
    "organizer": "study_promotion_association",
    "sessions": 3,
    "participants": 450,
    "participants_female": 250,
    "participants_ethnic_minority": 40,
    "cost_vnd": 2_000_000,
    "funding_source": "Quỹ khuyến học xã",
    "notes": None,
}
ACTIVITY_CASES: list[tuple[str, dict[str, object]]] = [
    ("activity_date_in_period", {"activity_date": date(2025, 6, 30)}),
    ("activity_date_in_period", {"activity_date": date(2026, 1, 1), "end_date": None}),
    ("end_date_not_before_start", {"end_date": date(2025, 9, 30)}),
    ("end_date_in_period", {"end_date": date(2026, 1, 2)}),
    ("female_within_participants", {"participants_female": 451}),
    ("ethnic_minority_within_participants", {"participants_ethnic_minority": 451}),
    ("participants_per_session", {"participants": 901, "participants_female": 300}),
]


def test_valid_activity_breaks_no_rule(activity: Form) -> None:
    assert violated(activity, ACTIVITY_VALID, {}, PERIOD) == set()
    boundary = ACTIVITY_VALID | {
        "activity_date": date(2025, 7, 1),
        "end_date": date(2025, 12, 31),
        "participants": 900,
        "participants_female": 900,
        "participants_ethnic_minority": 900,
    }
    assert violated(activity, boundary, {}, PERIOD) == set()
    skipped = ACTIVITY_VALID | {k: None for k in ACTIVITY_OPTIONAL}
    assert violated(activity, skipped, {}, PERIOD) == set()


@pytest.mark.parametrize(("rule_id", "changes"), ACTIVITY_CASES)
def test_activity_rule_fires(activity: Form, rule_id: str, changes: dict[str, object]) -> None:
    assert violated(activity, ACTIVITY_VALID | changes, {}, PERIOD) == {rule_id}


def test_every_activity_rule_has_a_case(activity: Form) -> None:
    assert {case[0] for case in ACTIVITY_CASES} == {r.id for r in activity.rules}


def test_dates_outside_period_cannot_be_told_without_the_period(activity: Form) -> None:
    values = ACTIVITY_VALID | {"activity_date": date(2020, 1, 1), "end_date": None}
    assert violated(activity, values, {}, {}) == set()


# --- check_rules: what is checked when, and the messages ---------------------------------------


def test_hard_message_names_the_figures_in_both_languages(village: Form) -> None:
    values = VILLAGE_VALID | {"lf_recognized": 201}
    vi, en = (
        check_rules(
            village,
            values,
            VILLAGE_PREV,
            {},
            answered=village.field_keys,
            focus="lf_recognized",
            locale=locale,
        )
        for locale in ("vi", "en")
    )
    assert vi[0].rule.id == "lf_recognized_within_households"
    assert vi[0].message == (
        "Số hộ được công nhận Gia đình học tập (201) không thể lớn hơn tổng số hộ (200)."
    )
    assert en[0].message == (
        "Households recognised as Learning Family (201) cannot exceed the total number of households (200)."
    )


def test_money_in_messages_is_written_as_in_questions_and_summaries(village: Form) -> None:
    """One format: rule messages write money the way Translator.money (Babel) does everywhere."""
    values = VILLAGE_VALID | {"scholarship_count": 0, "scholarship_amount_vnd": 1_250_000}
    [vi] = check_rules(
        village, values, {}, {}, answered=village.field_keys, focus="scholarship_count", locale="vi"
    )
    assert "(1.250.000\u00a0₫)" in vi.message
    assert translator("vi").money(1_250_000) in vi.message
    [en] = check_rules(
        village, values, {}, {}, answered=village.field_keys, focus="scholarship_count", locale="en"
    )
    assert "(₫1,250,000)" in en.message
    assert translator("en").money(1_250_000) in en.message


def test_rule_messages_write_amounts_as_babel_does(forms: dict[str, Form]) -> None:
    """Amounts typed into a rule's message by hand use the ₫ of the formatted values, not đ or VND."""
    hand_written = re.compile(r"[0-9] ?(?:đ|VND)\b|VND")
    wrong = [
        f"{form.key}.{rule.id} ({locale}): {text}"
        for form in forms.values()
        for rule in form.rules
        for locale, text in (("vi", rule.message.vi), ("en", rule.message.en))
        if hand_written.search(text)
    ]
    assert not wrong, "\n".join(wrong)


def test_values_are_formatted_for_the_locale(village: Form, activity: Form) -> None:
    status = village.field("village_lc_status")
    assert format_value(status, "recognized", "vi") == "Đạt Cộng đồng học tập"
    assert format_value(status, "recognized", "en") == "Recognised as Learning Community"
    day = activity.field("activity_date")
    assert format_value(day, date(2025, 10, 2), "vi") == "02/10/2025"
    assert format_value(day, "2025-10-02", "vi") == "02/10/2025"  # as a dialogue stores it
    assert format_value(day, date(2025, 10, 2), "en") == "Oct 2, 2025"
    assert format_value(village.field("households_total"), 12345, "vi") == "12.345"
    assert format_value(village.field("households_total"), 12345, "en") == "12,345"
    assert format_value(village.field("households_total"), None, "en") == "—"
    assert format_value(village.field("fund_raised_vnd"), 3_000_000, "vi") == "3.000.000\u00a0₫"


def test_missing_value_in_a_message_is_a_dash(activity: Form) -> None:
    values = ACTIVITY_VALID | {"participants_female": 451}
    found = check_rules(
        activity,
        values | {"participants": 450},
        {},
        PERIOD,
        answered=activity.field_keys,
        focus=None,
        locale="vi",
    )
    assert "(451)" in found[0].message
    template = "{participants}/{cost_vnd}"
    assert format_message(activity, template, {"participants": 3}, "vi") == "3/—"


def test_hard_violations_come_first(village: Form) -> None:
    values = VILLAGE_VALID | {"lf_recognized": 201}
    found = check_rules(
        village,
        values,
        VILLAGE_PREV,
        {},
        answered=village.field_keys,
        focus=None,
        locale="vi",
        last_year=VILLAGE_PREV,
    )
    severities = [v.rule.severity for v in found]
    assert severities == ["hard", "soft", "soft"]


def test_only_rules_about_the_focus_are_checked(village: Form) -> None:
    values = VILLAGE_VALID | {"lf_registered": 201, "clc_sessions": 0}
    by_focus = {
        focus: {
            v.rule.id
            for v in check_rules(
                village,
                values,
                VILLAGE_PREV,
                {},
                answered=village.field_keys,
                focus=focus,
                locale="vi",
            )
        }
        for focus in ("lf_registered", "clc_attendance", "notes")
    }
    assert by_focus == {
        "lf_registered": {"lf_registered_within_households"},
        "clc_attendance": {"clc_attendance_needs_sessions"},
        "notes": set(),
    }


def test_rules_wait_until_all_their_fields_are_answered(village: Form) -> None:
    values = {"households_total": 10, "lf_registered": 20, "lf_recognized": 25}
    early = check_rules(
        village,
        values,
        {},
        {},
        answered=["households_total", "lf_registered"],
        focus="lf_registered",
        locale="vi",
    )
    assert [v.rule.id for v in early] == ["lf_registered_within_households"]
    later = check_rules(
        village,
        values,
        {},
        {},
        answered=["households_total", "lf_registered", "lf_recognized"],
        focus="lf_recognized",
        locale="vi",
    )
    assert [v.rule.id for v in later] == [
        "lf_recognized_within_households",
        "lf_recognized_above_registered",
    ]


def test_skipped_optional_fields_do_not_break_rules(village: Form) -> None:
    values = VILLAGE_VALID | {"population_total": None, "adults_total": None, "notes": None}
    values |= {"members_total": 100_000, "lcit_registered": 100_000}
    prev = VILLAGE_PREV | {"members_total": 100_000}
    assert violated(village, values, prev) == set()


def test_first_report_has_nothing_to_compare_with(village: Form) -> None:
    values = VILLAGE_VALID | {"fund_balance_vnd": 1, "households_total": 300}
    assert violated(village, values, {}) == set()
    assert "fund_reconciles" in violated(village, values, VILLAGE_PREV)


# --- a form editors extend ----------------------------------------------------------------------


def _village_definition() -> dict[str, Any]:
    loaded = yaml.safe_load((FORMS_DIR / "village_report.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _write(path: Path, definition: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_new_field_and_rule_need_no_code(tmp_path: Path, village: Form) -> None:
    definition = _village_definition()
    definition["fields"].append(
        {
            "key": "reading_corners",
            "type": "integer",
            "label": {"vi": "Số tủ sách cộng đồng", "en": "Community bookshelves"},
            "help": {
                "vi": "Tủ sách, góc đọc sách trong thôn.",
                "en": "Bookshelves in the village.",
            },
            "min": 0,
            "max": 1000,
            "ask_if": "clc_sessions > 0",
        }
    )
    next(s for s in definition["sections"] if s["key"] == "activities")["fields"].append("reading_corners")
    definition["rules"].append(
        {
            "id": "reading_corners_within_households",
            "severity": "hard",
            "check": "reading_corners <= households_total",
            "message": {
                "vi": "Số tủ sách ({reading_corners}) nhiều hơn số hộ ({households_total}).",
                "en": "More bookshelves ({reading_corners}) than households ({households_total}).",
            },
        }
    )
    form = load_form(_write(tmp_path / "village_report.yaml", definition))
    assert form.digest != village.digest
    assert form.field_keys[-1] == "reading_corners"
    rule = form.rules[-1]
    assert rule.fields == ("households_total", "reading_corners")

    values = VILLAGE_VALID | {"reading_corners": 201}
    found = check_rules(form, values, {}, {}, answered=form.field_keys, focus="reading_corners", locale="vi")
    assert [(v.rule.id, v.message) for v in found] == [
        ("reading_corners_within_households", "Số tủ sách (201) nhiều hơn số hộ (200).")
    ]
    field = form.field("reading_corners")
    assert should_ask(form, field, {"clc_sessions": 2}, {}, {}) is True
    assert should_ask(form, field, {"clc_sessions": 0}, {}, {}) is False
    assert should_ask(form, field, {}, {}, {}) is False  # unknown: only a true condition asks
    assert should_ask(form, form.field("notes"), {}, {}, {}) is True


def test_load_forms_refuses_two_files_with_one_key(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", _village_definition())
    _write(tmp_path / "b.yaml", _village_definition())
    with pytest.raises(FormError, match=r"b\.yaml.*'village_report'.*a\.yaml"):
        load_forms(tmp_path)


def test_load_forms_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FormError, match="not a directory"):
        load_forms(tmp_path / "missing")


# --- broken forms -------------------------------------------------------------------------------


def _text(name: str) -> dict[str, str]:
    return {"vi": f"{name} (vi)", "en": f"{name} (en)"}


MINIMAL: dict[str, Any] = {
    "key": "mini",
    "title": _text("Mini"),
    "unit_kinds": ["village"],
    "period_kinds": ["year"],
    "record": "per_period",
    "fields": [
        {"key": "total", "type": "integer", "label": _text("Total"), "min": 0},
        {"key": "part", "type": "integer", "label": _text("Part"), "min": 0},
        {
            "key": "status",
            "type": "choice",
            "label": _text("Status"),
            "choices": [
                {"value": "yes", "label": {"vi": "Có", "en": "Yes"}, "aliases": ["co"]},
                {"value": "no", "label": {"vi": "Không", "en": "No"}, "aliases": ["khong"]},
            ],
        },
    ],
    "rules": [
        {
            "id": "part_within_total",
            "severity": "hard",
            "check": "part <= total",
            "message": {"vi": "{part} > {total}", "en": "{part} > {total}"},
        }
    ],
}

Mutation = Callable[[dict[str, Any]], None]


def _section(key: str, *fields: str) -> dict[str, Any]:
    return {"key": key, "label": _text(key), "fields": list(fields)}


def _set(path: str, value: object) -> Mutation:
    """A mutation setting MINIMAL[...path...] = value; path like 'fields.0.type'."""

    def mutate(definition: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = definition
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(definition: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = definition
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


def _append_field(field: dict[str, Any]) -> Mutation:
    return lambda definition: definition["fields"].append(field)


def _append_rule(rule: dict[str, Any]) -> Mutation:
    return lambda definition: definition["rules"].append(rule)


def _two_kinds(*mutations: Mutation) -> Mutation:
    """The mutations, on the form reported for half-years and years."""

    def mutate(definition: dict[str, Any]) -> None:
        definition["period_kinds"] = ["half_year", "year"]
        for mutation in mutations:
            mutation(definition)

    return mutate


BROKEN: list[tuple[str, Mutation, list[str]]] = [
    ("unknown top-level key", _set("colour", "red"), ["top level", "unknown key 'colour'"]),
    ("missing fields", _delete("fields"), ["missing 'fields'"]),
    ("bad form key", _set("key", "Mini Form"), ["key", "lower_case"]),
    ("unknown unit kind", _set("unit_kinds", ["hamlet"]), ["unit_kinds", "'hamlet'"]),
    ("unknown period kind", _set("period_kinds", ["fortnight"]), ["period_kinds", "'fortnight'"]),
    ("empty period kinds", _set("period_kinds", []), ["period_kinds", "non-empty"]),
    ("bad record", _set("record", "per_month"), ["record", "'per_month'"]),
    ("missing en title", _set("title", {"vi": "Mini"}), ["title", "missing 'en' text"]),
    (
        "missing vi label",
        _set("fields.0.label", {"en": "Total"}),
        ["field 'total'", "missing 'vi'"],
    ),
    (
        "empty en label",
        _set("fields.0.label", {"vi": "Tổng", "en": " "}),
        ["field 'total'", "'en'"],
    ),
    ("one-language label", _set("fields.0.label", "Tổng"), ["field 'total'", "both languages"]),
    ("third language", _set("fields.0.help", {"vi": "a", "en": "b", "fr": "c"}), ["'fr'"]),
    ("unknown field key", _set("fields.1.minimum", 0), ["field 'part'", "unknown key 'minimum'"]),
    (
        "duplicate field",
        _append_field({"key": "part", "type": "integer", "label": _text("P")}),
        ["field 'part'", "duplicate"],
    ),
    ("unknown type", _set("fields.0.type", "number"), ["field 'total'", "unknown type 'number'"]),
    ("missing type", _delete("fields.0.type"), ["field 'total'", "unknown type None"]),
    ("missing label", _delete("fields.0.label"), ["field 'total'", "missing 'label'"]),
    ("choice without choices", _delete("fields.2.choices"), ["field 'status'", "'choices'"]),
    ("empty choices", _set("fields.2.choices", []), ["field 'status'", "'choices'"]),
    ("choices on an integer", _set("fields.0.choices", []), ["field 'total'", "only to choice"]),
    (
        "alias of another choice",
        _set("fields.2.choices.1.aliases", ["co"]),
        ["choice 'no'", "'co'"],
    ),
    ("duplicate choice", _set("fields.2.choices.1.value", "yes"), ["field 'status'", "twice"]),
    (
        "min above max",
        _set("fields.0.max", -1),
        ["field 'total'", "'min' (0) is greater than 'max' (-1)"],
    ),
    ("fractional bound", _set("fields.0.max", 1.5), ["field 'total'", "whole number"]),
    ("bound on a choice", _set("fields.2.min", 0), ["field 'status'", "integer and money"]),
    ("max_length on an integer", _set("fields.0.max_length", 10), ["field 'total'", "max_length"]),
    ("optional not a flag", _set("fields.0.optional", "maybe"), ["field 'total'", "true or false"]),
    ("reserved field key", _set("fields.0.key", "prev"), ["'prev'", "reserved"]),
    ("keyword field key", _set("fields.0.key", "not"), ["'not'", "reserved word"]),
    ("uppercase field key", _set("fields.0.key", "Total"), ["field 'Total'", "lower_case"]),
    (
        "ask_if on a later field",
        _set("fields.0.ask_if", "part > 0"),
        ["field 'total'", "unknown name 'part'"],
    ),
    ("ask_if not a condition", _set("fields.1.ask_if", "total"), ["field 'part'", "condition"]),
    (
        "rule syntax error",
        _set("rules.0.check", "part <="),
        ["rule 'part_within_total'", "syntax error"],
    ),
    (
        "rule unknown name",
        _set("rules.0.check", "part <= totl"),
        ["rule 'part_within_total'", "unknown name 'totl'"],
    ),
    (
        "rule unknown function",
        _set("rules.0.check", "sqrt(part) <= total"),
        ["rule 'part_within_total'", "unknown function sqrt()"],
    ),
    (
        "rule attribute access",
        _set("rules.0.check", "part.__class__ == total"),
        ["rule 'part_within_total'", "attribute"],
    ),
    (
        "rule not a condition",
        _set("rules.0.check", "part - total"),
        ["rule 'part_within_total'", "condition"],
    ),
    ("rule check not text", _set("rules.0.check", True), ["rule 'part_within_total'", "string"]),
    (
        "rule reads no field",
        _set("rules.0.check", "period_start <= period_end"),
        ["reads no field"],
    ),
    (
        "rule bad severity",
        _set("rules.0.severity", "medium"),
        ["rule 'part_within_total'", "'medium'"],
    ),
    (
        "rule missing message",
        _delete("rules.0.message"),
        ["rule 'part_within_total'", "missing 'message'"],
    ),
    (
        "rule unknown key",
        _set("rules.0.when", "x"),
        ["rule 'part_within_total'", "unknown key 'when'"],
    ),
    (
        "message names no field",
        _set("rules.0.message.en", "{totl} is wrong"),
        ["rule 'part_within_total'", "{totl}"],
    ),
    (
        "duplicate rule id",
        lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])),
        ["rule 'part_within_total'", "duplicate rule id"],
    ),
    (
        "ask_in a kind the form lacks",
        _set("fields.1.ask_in", ["half_year"]),
        ["field 'part'", "'ask_in' names 'half_year'", "period_kinds"],
    ),
    (
        "ask_in every kind",
        _set("fields.1.ask_in", ["year"]),
        ["field 'part'", "every period kind"],
    ),
    ("ask_in not a list", _set("fields.1.ask_in", "year"), ["field 'part'", "non-empty list"]),
    ("otherwise without ask_in", _set("fields.1.otherwise", "carried"), ["field 'part'", "needs 'ask_in'"]),
    (
        "otherwise unknown",
        _two_kinds(_set("fields.1.ask_in", ["year"]), _set("fields.1.otherwise", "zero")),
        ["field 'part'", "'otherwise'", "'zero'"],
    ),
    (
        "carried in a per_entry form",
        _two_kinds(
            _set("record", "per_entry"),
            _set("fields.1.ask_in", ["year"]),
            _set("fields.1.otherwise", "carried"),
        ),
        ["field 'part'", "per_period"],
    ),
    (
        "choice ask_in a kind the form lacks",
        _set("fields.2.choices.0.ask_in", ["week"]),
        ["choice 'yes'", "'week'"],
    ),
    (
        "no choice left in a period",
        _two_kinds(_set("fields.2.choices.0.ask_in", ["year"]), _set("fields.2.choices.1.ask_in", ["year"])),
        ["field 'status'", "no choice is offered in a half_year report"],
    ),
    # Sections (what "change an answer" lists first): every field in exactly one.
    ("one section only", _set("sections", [_section("all", "total", "part", "status")]), ["at least two"]),
    (
        "a field in no section",
        _set("sections", [_section("counts", "total"), _section("state", "status")]),
        ["sections", "the field 'part' is in no section"],
    ),
    (
        "a field in two sections",
        _set("sections", [_section("counts", "total", "part"), _section("state", "part", "status")]),
        ["section 'state'", "'part' is also in section 'counts'"],
    ),
    (
        "a section naming no field of the form",
        _set("sections", [_section("counts", "total", "part", "parts"), _section("state", "status")]),
        ["section 'counts'", "'parts' is not a field"],
    ),
    (
        "a section key twice",
        _set("sections", [_section("counts", "total", "part"), _section("counts", "status")]),
        ["section 'counts'", "duplicate section key"],
    ),
    (
        "a section without a label",
        _set("sections", [{"key": "counts", "fields": ["total", "part"]}, _section("state", "status")]),
        ["section 'counts'", "missing 'label'"],
    ),
    (
        "an empty section",
        _set("sections", [_section("counts"), _section("state", "total", "part", "status")]),
        ["section 'counts'", "non-empty list"],
    ),
]


def test_minimal_form_is_valid(tmp_path: Path) -> None:
    form = load_form(_write(tmp_path / "mini.yaml", copy.deepcopy(MINIMAL)))
    assert form.field("status").choices[1].aliases == ("khong",)
    assert form.rules[0].fields == ("total", "part")
    assert form.sections == ()  # no sections: "change an answer" lists the fields


def test_sections_keep_the_form_order(tmp_path: Path) -> None:
    definition = copy.deepcopy(MINIMAL)
    definition["sections"] = [_section("state", "status", "total"), _section("rest", "part")]
    form = load_form(_write(tmp_path / "mini.yaml", definition))
    assert form.section_keys == ("state", "rest")
    assert form.section("state").fields == ("total", "status")  # as the form asks them
    assert form.section("state").label.get("en") == "state (en)"


def test_the_village_report_is_in_four_sections(village: Form) -> None:
    assert [(s.key, len(s.fields)) for s in village.sections] == [
        ("households_and_titles", 13),
        ("members", 2),
        ("fund", 7),
        ("activities", 3),
    ]


@pytest.mark.parametrize(
    ("mutation", "fragments"), [(m, f) for _, m, f in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_forms_are_refused_naming_the_culprit(
    tmp_path: Path, mutation: Mutation, fragments: list[str]
) -> None:
    definition = copy.deepcopy(MINIMAL)
    mutation(definition)
    path = _write(tmp_path / "broken.yaml", definition)
    with pytest.raises(FormError) as info:
        load_form(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("key: [unclosed\n", "not valid YAML"),
        ("key: mini\nkey: other\n", "the key 'key' is given twice"),
        ("- key: mini\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_unreadable_yaml_is_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FormError, match=r"broken\.yaml") as info:
        load_form(path)
    assert fragment in str(info.value)


# --- small pieces -------------------------------------------------------------------------------


def test_text_falls_back_to_vietnamese() -> None:
    text = Text(vi="Xin chào", en="Hello")
    assert text.get("vi") == "Xin chào"
    assert text.get("en") == "Hello"
    assert text.get("en_US") == "Hello"
    assert text.get("en-GB") == "Hello"
    assert text.get("fr") == "Xin chào"


def test_unknown_field_is_a_key_error(village: Form) -> None:
    with pytest.raises(KeyError):
        village.field("nope")
