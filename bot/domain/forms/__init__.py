"""Forms as data (DESIGN.md, boundary 5): YAML definitions, their loader and the rule checker."""

from bot.domain.forms.loader import FormError, load_form, load_forms
from bot.domain.forms.model import Choice, Field, FieldType, Form, Rule, Text
from bot.domain.forms.rules import (
    CONTEXT_NAMES,
    Expression,
    Violation,
    check_rules,
    format_value,
    should_ask,
)

__all__ = [
    "CONTEXT_NAMES",
    "Choice",
    "Expression",
    "Field",
    "FieldType",
    "Form",
    "FormError",
    "Rule",
    "Text",
    "Violation",
    "check_rules",
    "format_value",
    "load_form",
    "load_forms",
    "should_ask",
]
