"""Read and validate content/forms/*.yaml.

A form file is checked thoroughly when it is loaded, so a typo in a label, a rule or a bound
stops the bot at start-up with the file and the culprit named, instead of surprising an
officer in the middle of a report. The schema is described at the top of
content/forms/village_report.yaml.
"""

from __future__ import annotations

import copy
import hashlib
import json
import keyword
import re
from pathlib import Path
from typing import Any, cast

import yaml

from bot.domain.forms.model import (
    FIELD_TYPES,
    OTHERWISE,
    RECORD_KINDS,
    SEVERITIES,
    Choice,
    Field,
    FieldType,
    Form,
    Otherwise,
    RecordKind,
    Rule,
    Section,
    Severity,
    Text,
)
from bot.domain.forms.rules import CONTEXT_NAMES, FUNCTIONS, Expression
from bot.domain.periods import PERIOD_KINDS

UNIT_KINDS = ("province", "district", "commune", "village", "residential_group")

_FORM_KEYS = {
    "key",
    "title",
    "description",
    "unit_kinds",
    "period_kinds",
    "record",
    "fields",
    "rules",
    "for_requests",
    "sections",
}
_FORM_REQUIRED = ("key", "title", "unit_kinds", "period_kinds", "record", "fields")
_FIELD_KEYS = {
    "key",
    "type",
    "label",
    "help",
    "optional",
    "carry_over",
    "min",
    "max",
    "max_length",
    "choices",
    "ask_if",
    "ask_in",
    "otherwise",
}
_CHOICE_KEYS = {"value", "label", "aliases", "ask_in"}
_RULE_KEYS = {"id", "severity", "check", "message"}
_SECTION_KEYS = {"key", "label", "fields"}
_TEXT_KEYS = ("vi", "en")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*\Z")
_BRACES = re.compile(r"\{([^{}]*)\}")


class FormError(ValueError):
    """A form definition is broken; the message names the file, the field or rule, and why."""


# libyaml's parser when PyYAML has it (nine times faster: every process and test loads the forms).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str):
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"the key {key!r} is given twice",
                key_node.start_mark,
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _digest(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _where(raw: object, key: str, what: str, fallback: str) -> str:
    """Name a field or rule by its key in errors, as soon as it has one."""
    if isinstance(raw, dict) and isinstance(raw.get(key), str):
        return f"{what} {raw[key]!r}"
    return fallback


class _Reader:
    """Validates one file's mapping; every error goes through `fail` so it names the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> FormError:
        return FormError(f"{self.path}: {where}: {what}")

    # -- small pieces ---------------------------------------------------------------------

    def mapping(self, value: object, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            known = ", ".join(sorted(allowed))
            raise self.fail(where, f"unknown key {unknown[0]!r} (allowed: {known})")
        return cast(dict[str, Any], value)

    def identifier(self, value: object, where: str, what: str, *, name: bool = True) -> str:
        """A lower_case identifier; `name` when expressions will use it as a name."""
        if not isinstance(value, str) or not _IDENTIFIER.match(value):
            raise self.fail(where, f"{what} must be lower_case letters, digits and '_', got {value!r}")
        if name and keyword.iskeyword(value):
            raise self.fail(where, f"{what} {value!r} is a reserved word")
        return value

    def text(self, value: object, where: str) -> Text:
        if isinstance(value, str):
            raise self.fail(where, "expected both languages, as {vi: ..., en: ...}")
        data = self.mapping(value, where, set(_TEXT_KEYS))
        parts: dict[str, str] = {}
        for language in _TEXT_KEYS:
            part = data.get(language)
            if part is None:
                raise self.fail(where, f"missing {language!r} text")
            if not isinstance(part, str) or not part.strip():
                raise self.fail(where, f"the {language!r} text must be a non-empty string")
            parts[language] = part.strip()
        return Text(vi=parts["vi"], en=parts["en"])

    def flag(self, data: dict[str, Any], key: str, where: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(where, f"{key!r} must be true or false, got {value!r}")
        return value

    def whole(self, data: dict[str, Any], key: str, where: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(where, f"{key!r} must be a whole number, got {value!r}")
        return value

    def kinds(self, data: dict[str, Any], key: str, known: tuple[str, ...]) -> tuple[str, ...]:
        value = data[key]
        if not isinstance(value, list) or not value:
            raise self.fail(key, "expected a non-empty list")
        for item in value:
            if item not in known:
                raise self.fail(key, f"unknown kind {item!r} (known: {', '.join(known)})")
        if len(set(value)) != len(value):
            raise self.fail(key, "a kind is listed twice")
        return tuple(value)

    def expression(self, source: object, where: str, allowed: set[str], what: str) -> Expression:
        if not isinstance(source, str):
            raise self.fail(where, f"{what} must be a string, got {source!r}")
        try:
            parsed = Expression.parse(source, allowed)
        except ValueError as exc:
            raise self.fail(where, f"{what}: {exc}") from None
        if not parsed.is_predicate:
            raise self.fail(
                where, f"{what} must be a condition (a comparison, and/or/not, given()): {source!r}"
            )
        return parsed

    # -- the parts of a form --------------------------------------------------------------

    def form(self, raw: object) -> Form:
        data = self.mapping(raw, "top level", _FORM_KEYS)
        for key in _FORM_REQUIRED:
            if key not in data:
                raise self.fail("top level", f"missing {key!r}")
        key = self.identifier(data["key"], "key", "the form key")
        title = self.text(data["title"], "title")
        description = None
        if data.get("description") is not None:
            description = self.text(data["description"], "description")
        unit_kinds = self.kinds(data, "unit_kinds", UNIT_KINDS)
        period_kinds = self.kinds(data, "period_kinds", PERIOD_KINDS)
        record = data["record"]
        if record not in RECORD_KINDS:
            raise self.fail("record", f"expected one of {', '.join(RECORD_KINDS)}, got {record!r}")
        fields = self.fields(data["fields"], period_kinds)
        if record != "per_period":
            for f in fields:
                if f.carried:
                    raise self.fail(
                        f"field {f.key!r}", "'otherwise: carried' needs a per_period form (a unit's report)"
                    )
        rules = self.rules(data.get("rules") or [], fields)
        sections = self.sections(data.get("sections"), fields)
        for_requests = self.flag(data, "for_requests", "top level")
        if for_requests and record != "per_period":
            # A request asks each unit once; its answers are corrected as versions of that record.
            raise self.fail("for_requests", "a form sent as a request must have record: per_period")
        definition = copy.deepcopy(cast(dict[str, Any], raw))
        return Form(
            key=key,
            title=title,
            description=description,
            unit_kinds=unit_kinds,
            period_kinds=period_kinds,
            record=cast(RecordKind, record),
            fields=fields,
            rules=rules,
            digest=_digest(definition),
            definition=definition,
            for_requests=for_requests,
            sections=sections,
        )

    def fields(self, raw: object, period_kinds: tuple[str, ...]) -> tuple[Field, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("fields", "expected a non-empty list of fields")
        fields: list[Field] = []
        for index, item in enumerate(raw):
            fields.append(self.field(item, index, [f.key for f in fields], period_kinds))
        return tuple(fields)

    def ask_in(self, value: object, where: str, period_kinds: tuple[str, ...]) -> tuple[str, ...]:
        """Some of the form's period kinds, not all of them (then `ask_in` says nothing)."""
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            raise self.fail(where, "'ask_in' must be a non-empty list of period kinds")
        for kind in value:
            if kind not in period_kinds:
                raise self.fail(
                    where,
                    f"'ask_in' names {kind!r}, which is not one of the form's period_kinds "
                    f"({', '.join(period_kinds)})",
                )
        if len(set(value)) != len(value):
            raise self.fail(where, "'ask_in' lists a kind twice")
        if set(value) == set(period_kinds):
            raise self.fail(where, "'ask_in' lists every period kind of the form: leave it out")
        return tuple(value)

    def field(self, raw: object, index: int, earlier: list[str], period_kinds: tuple[str, ...]) -> Field:
        where = _where(raw, "key", "field", f"fields[{index}]")
        data = self.mapping(raw, where, _FIELD_KEYS)
        if "key" not in data:
            raise self.fail(where, "missing 'key'")
        key = self.identifier(data["key"], where, "the field key")
        where = f"field {key!r}"
        if key in earlier:
            raise self.fail(where, "duplicate field key")
        if key in CONTEXT_NAMES or key in FUNCTIONS:
            raise self.fail(where, f"{key!r} is reserved for the rule language")
        kind = data.get("type")
        if kind not in FIELD_TYPES:
            raise self.fail(where, f"unknown type {kind!r} (known: {', '.join(FIELD_TYPES)})")
        if "label" not in data:
            raise self.fail(where, "missing 'label'")
        label = self.text(data["label"], f"{where} label")
        help_text = None
        if data.get("help") is not None:
            help_text = self.text(data["help"], f"{where} help")

        low, high = self.whole(data, "min", where), self.whole(data, "max", where)
        if (low is not None or high is not None) and kind not in ("integer", "money"):
            raise self.fail(where, "'min' and 'max' apply only to integer and money fields")
        if low is not None and high is not None and low > high:
            raise self.fail(where, f"'min' ({low}) is greater than 'max' ({high})")
        max_length = self.whole(data, "max_length", where)
        if max_length is not None and (kind != "text" or max_length < 1):
            raise self.fail(where, "'max_length' must be a positive number, on text fields only")

        choices: tuple[Choice, ...] = ()
        if kind == "choice":
            choices = self.choices(data.get("choices"), where, period_kinds)
        elif "choices" in data:
            raise self.fail(where, "'choices' apply only to choice fields")

        ask_in = self.ask_in(data.get("ask_in"), where, period_kinds)
        otherwise = data.get("otherwise", "blank")
        if "otherwise" in data and not ask_in:
            raise self.fail(where, "'otherwise' needs 'ask_in' (it says what other periods show)")
        if otherwise not in OTHERWISE:
            raise self.fail(where, f"'otherwise' must be one of {', '.join(OTHERWISE)}, got {otherwise!r}")

        ask_if = data.get("ask_if")
        if ask_if is not None:
            # Only earlier answers are known when deciding whether to ask.
            self.expression(ask_if, where, set(earlier), "ask_if")

        return Field(
            key=key,
            type=cast(FieldType, kind),
            label=label,
            help=help_text,
            optional=self.flag(data, "optional", where),
            carry_over=self.flag(data, "carry_over", where),
            min=low,
            max=high,
            max_length=max_length,
            choices=choices,
            ask_if=ask_if,
            ask_in=ask_in,
            otherwise=cast(Otherwise, otherwise),
        )

    def choices(self, raw: object, where: str, period_kinds: tuple[str, ...]) -> tuple[Choice, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(where, "a choice field needs a non-empty list of 'choices'")
        choices: list[Choice] = []
        owner: dict[str, str] = {}  # every word that picks a choice -> that choice's value
        for index, item in enumerate(raw):
            data = self.mapping(item, f"{where} choices[{index}]", _CHOICE_KEYS)
            value = self.identifier(data.get("value"), f"{where} choices[{index}]", "the value", name=False)
            here = f"{where} choice {value!r}"
            if "label" not in data:
                raise self.fail(here, "missing 'label'")
            label = self.text(data["label"], f"{here} label")
            aliases = data.get("aliases", [])
            if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
                raise self.fail(here, "'aliases' must be a list of non-empty strings")
            for word in (value, label.vi, label.en, *aliases):
                folded = word.strip().casefold()
                if owner.get(folded, value) != value:
                    raise self.fail(here, f"{word!r} also picks the choice {owner[folded]!r}")
                owner[folded] = value
            ask_in = self.ask_in(data.get("ask_in"), here, period_kinds)
            choices.append(Choice(value, label, tuple(a.strip() for a in aliases), ask_in))
        if len({c.value for c in choices}) != len(choices):
            raise self.fail(where, "a choice value is listed twice")
        for kind in period_kinds:
            if not any(c.offered_in(kind) for c in choices):
                raise self.fail(where, f"no choice is offered in a {kind} report (see the choices' 'ask_in')")
        return tuple(choices)

    def sections(self, raw: object, fields: tuple[Field, ...]) -> tuple[Section, ...]:
        """None, or sections that between them hold every field exactly once."""
        if raw is None:
            return ()
        if not isinstance(raw, list) or len(raw) < 2:
            raise self.fail("sections", "expected a list of at least two sections (or no 'sections')")
        keys = [f.key for f in fields]
        owner: dict[str, str] = {}
        sections: list[Section] = []
        for index, item in enumerate(raw):
            where = _where(item, "key", "section", f"sections[{index}]")
            data = self.mapping(item, where, _SECTION_KEYS)
            for required in ("key", "label", "fields"):
                if required not in data:
                    raise self.fail(where, f"missing {required!r}")
            key = self.identifier(data["key"], where, "the section key", name=False)
            where = f"section {key!r}"
            if any(s.key == key for s in sections):
                raise self.fail(where, "duplicate section key")
            label = self.text(data["label"], f"{where} label")
            listed = data["fields"]
            if not isinstance(listed, list) or not listed:
                raise self.fail(where, "'fields' must be a non-empty list of field keys")
            for name in listed:
                if name not in keys:
                    raise self.fail(where, f"{name!r} is not a field of the form")
                if name in owner:
                    raise self.fail(where, f"the field {name!r} is also in section {owner[name]!r}")
                owner[name] = key
            in_order = tuple(k for k in keys if k in listed)
            sections.append(Section(key=key, label=label, fields=in_order))
        left_out = [k for k in keys if k not in owner]
        if left_out:
            raise self.fail("sections", f"the field {left_out[0]!r} is in no section")
        return tuple(sections)

    def rules(self, raw: object, fields: tuple[Field, ...]) -> tuple[Rule, ...]:
        if not isinstance(raw, list):
            raise self.fail("rules", "expected a list of rules")
        keys = [f.key for f in fields]
        rules: list[Rule] = []
        for index, item in enumerate(raw):
            where = _where(item, "id", "rule", f"rules[{index}]")
            data = self.mapping(item, where, _RULE_KEYS)
            for required in ("id", "severity", "check", "message"):
                if required not in data:
                    raise self.fail(where, f"missing {required!r}")
            rule_id = self.identifier(data["id"], where, "the rule id")
            where = f"rule {rule_id!r}"
            if any(r.id == rule_id for r in rules):
                raise self.fail(where, "duplicate rule id")
            severity = data["severity"]
            if severity not in SEVERITIES:
                raise self.fail(where, f"severity must be hard or soft, got {severity!r}")
            parsed = self.expression(data["check"], where, set(keys), "check")
            reads = tuple(k for k in keys if k in parsed.names)
            if not reads:
                raise self.fail(where, "the check reads no field of the form")
            message = self.text(data["message"], f"{where} message")
            self.placeholders(message, where, keys)
            rules.append(
                Rule(
                    id=rule_id,
                    severity=cast(Severity, severity),
                    check=parsed.source,
                    message=message,
                    fields=reads,
                )
            )
        return tuple(rules)

    def placeholders(self, message: Text, where: str, keys: list[str]) -> None:
        for language, template in (("vi", message.vi), ("en", message.en)):
            for name in _BRACES.findall(template):
                if name not in keys:
                    raise self.fail(where, f"the {language!r} message names {{{name}}}, which is not a field")


def load_form(path: Path) -> Form:
    """Read one form file. Raises FormError naming the file and the culprit."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise FormError(f"{path}: not valid YAML: {exc}") from None
    return _Reader(path).form(raw)


def form_from_definition(raw: dict[str, Any], origin: str) -> Form:
    """A form given as a mapping rather than a file (the questions of an ad hoc request typed in
    the chat), checked exactly as a file is. `origin` names it in errors."""
    return _Reader(Path(origin)).form(raw)


def load_forms(directory: Path) -> dict[str, Form]:
    """Every *.yaml form in `directory`, by form key."""
    if not directory.is_dir():
        raise FormError(f"{directory}: not a directory of forms")
    forms: dict[str, Form] = {}
    origin: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        form = load_form(path)
        if form.key in forms:
            other = origin[form.key]
            raise FormError(f"{path}: key: the form key {form.key!r} is also used by {other}")
        forms[form.key] = form
        origin[form.key] = path
    return forms
