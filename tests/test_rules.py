"""The rule language: semantics of the evaluator, and what it refuses to parse."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest

from bot.domain.forms.rules import Expression

NAMES = {"a", "b", "c", "s", "d", "flag"}


def ev(
    source: str, env: Mapping[str, object] | None = None, prev: Mapping[str, object] | None = None
) -> object:
    return Expression.parse(source, NAMES).evaluate(env or {}, prev or {})


# --- arithmetic and comparisons -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("a + b * 2", {"a": 1, "b": 3}, 7),
        ("(a + b) * 2", {"a": 1, "b": 3}, 8),
        ("a - b - c", {"a": 10, "b": 3, "c": 2}, 5),
        ("-a + 1", {"a": 4}, -3),
        ("a / b", {"a": 7, "b": 2}, 3.5),
        ("a / b", {"a": 6, "b": 3}, 2),
        ("a * 1.5", {"a": 2}, 3.0),
        ("a == 3", {"a": 3}, True),
        ("a != 3", {"a": 3}, False),
        ("a < b", {"a": 1, "b": 2}, True),
        ("a >= b", {"a": 1, "b": 2}, False),
        ("s == 'recognized'", {"s": "recognized"}, True),
        ('s != "recognized"', {"s": "registered"}, True),
        ("b if a > 0 else c", {"a": 1, "b": "yes", "c": "no"}, "yes"),
        ("b if a > 0 else c", {"a": 0, "b": "yes", "c": "no"}, "no"),
        ("True", {}, True),
        ("not a", {"a": 0}, True),
    ],
)
def test_arithmetic_and_comparison(source: str, env: dict[str, object], expected: object) -> None:
    assert ev(source, env) == expected


def test_division_of_whole_numbers_is_exact() -> None:
    # 0.9 - 0.7 is 0.20000000000000007 in floating point: a 20-point boundary must not fire.
    assert ev("abs(a / 100 - b / 100) * 100 <= 20", {"a": 90, "b": 70}) is True
    assert ev("a / b", {"a": 1, "b": 3}) == pytest.approx(1 / 3)
    assert isinstance(ev("a / b", {"a": 1, "b": 3}), float)
    assert isinstance(ev("a / b", {"a": 4, "b": 2}), int)


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("1 <= a <= 3", {"a": 2}, True),
        ("1 <= a <= 3", {"a": 4}, False),
        ("1 <= a <= 3", {"a": 0}, False),
        ("1 <= a <= 3", {}, None),
        ("a < b < c", {"a": 1, "b": 2, "c": 3}, True),
        ("a < b < c", {"a": 1, "b": 5, "c": 3}, False),
        # one false link decides, even when another is unknown
        ("a < b < c", {"a": 5, "b": 2}, False),
        ("a < b < c", {"a": 1, "b": 2}, None),
    ],
)
def test_chained_comparisons(source: str, env: dict[str, object], expected: object) -> None:
    assert ev(source, env) is expected


@pytest.mark.parametrize(
    "source",
    [
        "a + 1",
        "1 - a",
        "a * 2",
        "a / 2",
        "-a",
        "a < 1",
        "a == 1",
        "a != 1",
        "abs(a)",
        "min(a, 1)",
        "max(1, a)",
        "b if a else c",
        "not a",
    ],
)
def test_unknown_values_propagate(source: str) -> None:
    assert ev(source, {"b": 1, "c": 2}) is None


@pytest.mark.parametrize("source", ["a / b", "a / 0", "a / (b - b)", "a / 0.0"])
def test_division_by_zero_is_unknown(source: str) -> None:
    assert ev(source, {"a": 5, "b": 0}) is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("s + 1", None),  # text is not a number
        ("s * 1000000000", None),  # and is never repeated
        ("d + 1", None),
        ("d < 5", None),  # a date against a number: cannot tell
        ("flag + 1", None),  # booleans are not numbers either
        ("s == 1", False),
    ],
)
def test_type_mismatch_is_unknown(source: str, expected: object) -> None:
    assert ev(source, {"s": "x", "d": date(2025, 1, 1), "flag": True}) is expected


# Three-valued logic: F = False, T = True, N = None.
T, F, N = True, False, None


@pytest.mark.parametrize(
    ("left", "right", "conj", "disj"),
    [
        (T, T, T, T),
        (T, F, F, T),
        (F, T, F, T),
        (F, F, F, F),
        (T, N, N, T),
        (N, T, N, T),
        (F, N, F, N),
        (N, F, F, N),
        (N, N, N, N),
    ],
)
def test_three_valued_logic(left: object, right: object, conj: object, disj: object) -> None:
    env = {"a": left, "b": right}
    assert ev("a and b", env) is conj
    assert ev("a or b", env) is disj


def test_not_of_unknown_is_unknown() -> None:
    assert ev("not a", {}) is None
    assert ev("not a", {"a": True}) is False


def test_logic_on_numbers_uses_truthiness_but_returns_booleans() -> None:
    assert ev("a and b", {"a": 3, "b": 4}) is True
    assert ev("a or b", {"a": 0, "b": 0}) is False


def test_conditional_with_unknown_test_is_unknown() -> None:
    assert ev("b if a > 0 else c", {"b": 1, "c": 2}) is None


# --- functions ----------------------------------------------------------------------------------


def test_abs_min_max() -> None:
    assert ev("abs(a - b)", {"a": 2, "b": 5}) == 3
    assert ev("min(a, b, c)", {"a": 4, "b": 2, "c": 9}) == 2
    assert ev("max(a, b, 10)", {"a": 4, "b": 2}) == 10
    assert ev("min(a, b)", {"a": date(2025, 1, 2), "b": date(2025, 1, 1)}) == date(2025, 1, 1)
    assert ev("max(a, b)", {"a": date(2025, 1, 2), "b": 3}) is None
    assert ev("abs(s)", {"s": "x"}) is None


def test_given_is_never_unknown() -> None:
    assert ev("given(a)", {"a": 0}) is True
    assert ev("given(a)", {}) is False
    assert ev("given(a + b)", {"a": 1}) is False
    assert ev("not given(a) or a > 1", {}) is True


def test_prev_reads_the_previous_submission() -> None:
    assert ev("prev(a)", {"a": 5}, {"a": 3}) == 3
    assert ev("prev(a)", {"a": 5}, {}) is None
    assert ev("a - prev(a)", {"a": 5}, {"a": 3}) == 2


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (110, 100, 10),
        (90, 100, 10),
        (100, 100, 0),
        (150, 120, 25),
        (5, None, None),  # no previous report
        (5, 0, None),  # nothing to compare a change with
        (None, 100, None),
    ],
)
def test_pct_change(current: object, previous: object, expected: object) -> None:
    assert ev("pct_change(a)", {"a": current}, {"a": previous}) == expected


def test_dates_and_period_context_names() -> None:
    env = {
        "d": date(2025, 10, 2),
        "period_start": date(2025, 7, 1),
        "period_end": date(2025, 12, 31),
    }
    assert ev("period_start <= d <= period_end", env) is True
    env["d"] = date(2026, 1, 1)
    assert ev("period_start <= d <= period_end", env) is False
    assert ev("period_start <= d <= period_end", {"d": date(2025, 1, 1)}) is None


def test_names_include_context_and_prev_arguments() -> None:
    expression = Expression.parse("abs(prev(a) + b - c) <= 1000 and d >= period_start", NAMES)
    assert expression.names == frozenset({"a", "b", "c", "d", "period_start"})
    assert Expression.parse("pct_change(a) <= 10", NAMES).names == frozenset({"a"})


def test_predicates() -> None:
    assert Expression.parse("a <= b", NAMES).is_predicate
    assert Expression.parse("a or b", NAMES).is_predicate
    assert Expression.parse("not a", NAMES).is_predicate
    assert Expression.parse("given(a)", NAMES).is_predicate
    assert Expression.parse("a > 1 if b else True", NAMES).is_predicate
    assert not Expression.parse("a + b", NAMES).is_predicate
    assert not Expression.parse("a", NAMES).is_predicate
    assert not Expression.parse("abs(a)", NAMES).is_predicate


def test_parsed_once_evaluated_many_times() -> None:
    expression = Expression.parse("a + b", NAMES)
    assert [expression.evaluate({"a": i, "b": 1}, {}) for i in range(3)] == [1, 2, 3]
    assert expression.source == "a + b"


# --- safety -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("__import__('os')", "unknown function"),
        ("__import__('os').system('true')", "only the built-in"),
        ("().__class__", "attribute"),
        ("a.__class__.__bases__", "attribute"),
        ("a.real", "attribute"),
        ("a[0]", "indexing"),
        ("s[1:2]", "indexing"),
        ("lambda: 1", "lambda"),
        ("(lambda x: x)(1)", "only the built-in"),
        ("[x for x in a]", "comprehension"),
        ("{x for x in a}", "comprehension"),
        ("{x: 1 for x in a}", "comprehension"),
        ("sum(x for x in a)", "unknown function"),
        ("f'{a}'", "f-string"),
        ("(b := 1)", "assignment"),
        ("[1, 2]", "list"),
        ("(1, 2)", "tuple"),
        ("{1, 2}", "set"),
        ("{'a': 1}", "dict"),
        ("unknown_name", "unknown name"),
        ("a + bb", "unknown name 'bb'"),
        ("__builtins__", "unknown name"),
        ("open('x')", "unknown function"),
        ("eval('1')", "unknown function"),
        ("exec('1')", "unknown function"),
        ("getattr(a, 'x')", "unknown function"),
        ("type(a)", "unknown function"),
        ("globals()", "unknown function"),
        ("print(a)", "unknown function"),
        ("len(s)", "unknown function"),
        ("abs", "must be called"),
        ("abs(x=a)", "keyword"),
        ("min(*a)", "starred"),
        ("abs(a, b)", "exactly one"),
        ("given()", "exactly one"),
        ("min(a)", "at least two"),
        ("prev(a + 1)", "name of a form field"),
        ("prev(period_start)", "name of a form field"),
        ("pct_change(1)", "name of a form field"),
        ("a ** 2", "**"),
        ("a // 2", "//"),
        ("a % 2", "%"),
        ("a @ b", "@"),
        ("a & b", "&"),
        ("a | b", "|"),
        ("a << 2", "<<"),
        ("~a", "~"),
        ("+a", "unary +"),
        ("a is None", "is"),
        ("a in b", "in"),
        ("a not in b", "not in"),
        ("b'x'", "constant"),
        ("1j", "constant"),
        ("...", "constant"),
        ("await a", "await"),
        ("a if b", "syntax error"),
        ("a = 1", "syntax error"),
        ("import os", "syntax error"),
        ("a; b", "syntax error"),
        ("", "empty"),
        ("   ", "empty"),
        ("a\x00", "null bytes"),
        ("a + " * 300 + "a", "longer than"),
        ("-" * 60 + "a", "nested too deeply"),
        ("(" * 60 + "a" + ")" * 60 + " + " + "abs(" * 45 + "a" + ")" * 45, "nested too deeply"),
    ],
)
def test_unsafe_or_invalid_expressions_are_rejected_at_parse(source: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        Expression.parse(source, NAMES)
    assert reason in str(info.value)


def test_error_says_where() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown name 'households_totl'; did you mean 'households_total'\? \(column 18\)",
    ):
        Expression.parse("lf_registered <= households_totl", {"lf_registered", "households_total"})


def test_never_uses_eval_exec_or_code_compilation(monkeypatch: pytest.MonkeyPatch) -> None:
    """ast.parse may compile to an AST only; eval, exec and bytecode compilation must not run."""
    real_compile = builtins.compile

    def ast_only_compile(
        source: Any, filename: Any, mode: str, flags: int = 0, *args: Any, **kwargs: Any
    ) -> Any:
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("bytecode compilation attempted")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    expression = Expression.parse("abs(prev(a) + b - c) <= 1000 and (a / b > 1 or given(d))", NAMES)
    assert expression.evaluate({"a": 10, "b": 2, "c": 12}, {"a": 0}) is True
