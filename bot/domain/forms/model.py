"""Forms as data: the parsed, validated shape of a content/forms/*.yaml file.

These are plain frozen values. The loader builds them; the dialogue engine walks `Form.fields`
and asks `bot.domain.forms.rules.check_rules` which rules an answer breaks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["integer", "money", "choice", "text", "date"]
FIELD_TYPES: tuple[FieldType, ...] = ("integer", "money", "choice", "text", "date")

Severity = Literal["hard", "soft"]
SEVERITIES: tuple[Severity, ...] = ("hard", "soft")

RecordKind = Literal["per_period", "per_entry"]
RECORD_KINDS: tuple[RecordKind, ...] = ("per_period", "per_entry")

# What a field shows in the periods it is not asked in (see Field.ask_in).
Otherwise = Literal["carried", "blank"]
OTHERWISE: tuple[Otherwise, ...] = ("carried", "blank")


@dataclass(frozen=True)
class Text:
    """A user-facing string in both languages the bot speaks."""

    vi: str
    en: str

    def get(self, locale: str) -> str:
        """The text for `locale` ("en", "en_US", "vi-VN" ...); Vietnamese for anything else."""
        language = locale.replace("-", "_").split("_", 1)[0].lower()
        if language == "en" and self.en:
            return self.en
        return self.vi


@dataclass(frozen=True)
class Choice:
    """One option of a choice field. `aliases` are further words people type for it."""

    value: str
    label: Text
    aliases: tuple[str, ...] = ()
    # The period kinds it may be chosen in; empty: every kind of the form. A village can be
    # registered for a title at the half-year, but is recognised only at year end.
    ask_in: tuple[str, ...] = ()

    def offered_in(self, period_kind: str) -> bool:
        return not self.ask_in or period_kind in self.ask_in


@dataclass(frozen=True)
class Field:
    """One question of a form."""

    key: str
    type: FieldType
    label: Text
    help: Text | None = None
    optional: bool = False
    # Offer the value of the unit's previous submission as the default (stock figures).
    carry_over: bool = False
    min: int | None = None
    max: int | None = None
    max_length: int | None = None
    choices: tuple[Choice, ...] = ()
    # An expression in the rule language: ask the question only when it is true; a field that
    # is not asked gets the value None.
    ask_if: str | None = None
    # The period kinds the question is asked in; empty: every kind of the form. In the form's
    # other periods it is not asked and is stored as null; with `otherwise == "carried"` the
    # unit's figure from the latest report of an `ask_in` period is shown instead (titles are
    # recognised once a year: the half-year report shows last year's recognised households).
    ask_in: tuple[str, ...] = ()
    otherwise: Otherwise = "blank"

    def asked_in(self, period_kind: str) -> bool:
        return not self.ask_in or period_kind in self.ask_in

    @property
    def carried(self) -> bool:
        """Shown, not asked, in the periods outside `ask_in`."""
        return bool(self.ask_in) and self.otherwise == "carried"

    def choices_in(self, period_kind: str) -> tuple[Choice, ...]:
        """The choices offered in a period of this kind."""
        return tuple(c for c in self.choices if c.offered_in(period_kind))

    def choice(self, value: str) -> Choice:
        for choice in self.choices:
            if choice.value == value:
                return choice
        raise KeyError(f"field {self.key!r} has no choice {value!r}")


@dataclass(frozen=True)
class Rule:
    """A check across fields. Hard rules refuse the answer; soft rules ask to confirm."""

    id: str
    severity: Severity
    check: str  # an expression that must hold; see bot.domain.forms.rules
    message: Text  # may contain {field_key} placeholders
    fields: tuple[str, ...] = ()  # the form fields `check` reads, prev(x) included


@dataclass(frozen=True)
class Section:
    """A part of a form, named for people: "changing an answer" lists the sections, then the
    fields of the one chosen, instead of every field at once."""

    key: str
    label: Text
    fields: tuple[str, ...]  # field keys, in the form's order


@dataclass(frozen=True)
class Form:
    """A whole form: what is asked, of whom, how often, and what must hold."""

    key: str
    title: Text
    description: Text | None
    unit_kinds: tuple[str, ...]
    period_kinds: tuple[str, ...]
    record: RecordKind
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...]
    digest: str  # sha256 of the canonical definition: tells which version a submission used
    # The raw YAML mapping, stored with each submission. Not compared: `digest` stands for it.
    definition: dict[str, Any] = dataclasses.field(compare=False, repr=False)
    # Staff may send it to the officers of their area as an ad hoc request (/yeucau).
    for_requests: bool = False
    # Every field in exactly one section, or no sections at all (the fields are listed alone).
    sections: tuple[Section, ...] = ()

    def field(self, key: str) -> Field:
        for candidate in self.fields:
            if candidate.key == key:
                return candidate
        raise KeyError(f"form {self.key!r} has no field {key!r}")

    @property
    def field_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    def section(self, key: str) -> Section:
        for candidate in self.sections:
            if candidate.key == key:
                return candidate
        raise KeyError(f"form {self.key!r} has no section {key!r}")

    @property
    def section_keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.sections)
