"""The rule language of forms, and checking a form's rules against answers.

Rules and `ask_if` conditions are written by content editors in YAML, so they are parsed with
`ast.parse(..., mode="eval")` and then compiled by a walker that accepts only a small whitelist
of node types into plain Python closures. Nothing is ever passed to eval, exec or compile.

The language: numbers, strings, True/False/None; field names; `and`, `or`, `not`; `+ - * /`
and unary minus; comparisons `== != < <= > >=` (chained: `0 <= x <= 10`); `a if c else b`;
and the functions abs, min, max, given, prev, last_year, opening and pct_change.

prev(x), last_year(x) and opening(x) read the unit's earlier reports, which the caller looks up
(bot/domain/forms/history.py says which): prev(x) is the figure x is compared with (the latest
report for a stock, the same period one year earlier for anything else), last_year(x) the same
period one year earlier whatever x is (for a rate built on a stock), opening(x) the figure at the
close of the period just before this one (the fund's opening balance).

Unknown values are None and propagate: `None + 1`, `None < 1` and `1 / 0` are None. `and`/`or`
follow three-valued (SQL) logic: `False and None` is False, `True and None` is None. A rule is
broken only when its check is exactly False; None means "cannot tell yet" and passes.
Division of whole numbers is exact (fractions), so boundaries such as "±1.000 ₫" or "20 points"
are not blurred by floating point.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple, TypeGuard

from bot.domain.forms.model import Field, Form, Rule
from bot.domain.i18n import translator

# Names the caller supplies in `context`, allowed in every expression.
CONTEXT_NAMES = frozenset({"period_start", "period_end"})
FUNCTIONS = frozenset({"abs", "min", "max", "given", "prev", "last_year", "opening", "pct_change"})
MAX_SOURCE_LENGTH = 1000
MAX_DEPTH = 40  # the compiled closures recurse; keep far below Python's recursion limit

Env = Mapping[str, object]


class _Earlier(NamedTuple):
    """The earlier reports an expression may read: prev(), last_year() and opening()."""

    prev: Env
    opening: Env
    last_year: Env


_Eval = Callable[[Env, _Earlier], object]

# What the rejected node types are called in error messages (content editors read them).
_FORBIDDEN = {
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "indexing (a[b])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.NamedExpr: "assignment (:=)",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}

_BINARY: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], object]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_OPERATOR_NAMES = {
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.UAdd: "unary +",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


# ---------------------------------------------------------------------------------------------
# Runtime semantics


_Number = int | float | Fraction


def _is_number(value: object) -> TypeGuard[_Number]:
    return isinstance(value, _Number) and not isinstance(value, bool)


def _truth(value: object) -> bool | None:
    return None if value is None else bool(value)


def _add(a: object, b: object) -> object:
    if not (_is_number(a) and _is_number(b)):
        return None
    return a + b


def _sub(a: object, b: object) -> object:
    if not (_is_number(a) and _is_number(b)):
        return None
    return a - b


def _mul(a: object, b: object) -> object:
    if not (_is_number(a) and _is_number(b)):
        return None
    return a * b


def _div(a: object, b: object) -> object:
    if not (_is_number(a) and _is_number(b)) or b == 0:
        return None
    try:
        if isinstance(a, float) or isinstance(b, float):
            return a / b
        return Fraction(a) / Fraction(b)
    except OverflowError:
        return None


_ARITHMETIC: dict[str, Callable[[object, object], object]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
}


def _compare(op: Callable[[object, object], object], a: object, b: object) -> bool | None:
    if a is None or b is None:
        return None
    try:
        return bool(op(a, b))
    except TypeError:  # e.g. a date against a number: cannot tell
        return None


def _extreme(pick: Callable[..., object], values: list[object]) -> object:
    if any(v is None for v in values):
        return None
    try:
        return pick(values)
    except TypeError:
        return None


def _abs(value: object) -> object:
    return abs(value) if _is_number(value) else None


def _pct_change(current: object, previous: object) -> object:
    """abs(current - previous) / previous * 100; None when there is nothing to compare with."""
    return _mul(_div(_abs(_sub(current, previous)), _abs(previous)), 100)


def _plain(value: object) -> object:
    """Hand exact fractions back as the int or float a caller expects."""
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value


# ---------------------------------------------------------------------------------------------
# Parsing


class _Compiler:
    """Turns a whitelisted AST into closures `(env, prev) -> value`, collecting the names."""

    def __init__(self, source: str, allowed: Collection[str]) -> None:
        self.source = source
        self.fields = frozenset(allowed)
        self.allowed = self.fields | CONTEXT_NAMES
        self.names: set[str] = set()

    def error(self, node: ast.AST, reason: str) -> ValueError:
        column = getattr(node, "col_offset", None)
        where = f" (column {column + 1})" if column is not None else ""
        return ValueError(f"{reason}{where} in {self.source!r}")

    def compile(self, node: ast.AST, depth: int = 0) -> _Eval:
        if depth > MAX_DEPTH:
            raise self.error(node, "the expression is nested too deeply")
        inner = depth + 1
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node, inner)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, inner)
        if isinstance(node, ast.BinOp):
            return self._binary(node, inner)
        if isinstance(node, ast.Compare):
            return self._comparison(node, inner)
        if isinstance(node, ast.Call):
            return self._call(node, inner)
        if isinstance(node, ast.IfExp):
            return self._ifexp(node, inner)
        what = _FORBIDDEN.get(type(node), type(node).__name__)
        raise self.error(node, f"{what} is not allowed")

    def _constant(self, node: ast.Constant) -> _Eval:
        value = node.value
        if value is not None and not isinstance(value, bool | int | float | str):
            raise self.error(node, f"the constant {value!r} is not allowed")
        return lambda env, prev: value

    def _name(self, node: ast.Name) -> _Eval:
        name = node.id
        if name in FUNCTIONS:
            raise self.error(node, f"the function {name}() must be called")
        if name not in self.allowed:
            close = difflib.get_close_matches(name, sorted(self.allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.error(node, f"unknown name {name!r}{hint}")
        self.names.add(name)
        return lambda env, prev: env.get(name)

    def _boolop(self, node: ast.BoolOp, depth: int) -> _Eval:
        parts = [self.compile(value, depth) for value in node.values]
        if isinstance(node.op, ast.And):

            def conjunction(env: Env, prev: _Earlier) -> object:
                result: bool | None = True
                for part in parts:
                    truth = _truth(part(env, prev))
                    if truth is False:
                        return False
                    if truth is None:
                        result = None
                return result

            return conjunction

        def disjunction(env: Env, prev: _Earlier) -> object:
            result: bool | None = False
            for part in parts:
                truth = _truth(part(env, prev))
                if truth is True:
                    return True
                if truth is None:
                    result = None
            return result

        return disjunction

    def _unary(self, node: ast.UnaryOp, depth: int) -> _Eval:
        operand = self.compile(node.operand, depth)
        if isinstance(node.op, ast.Not):

            def negation(env: Env, prev: _Earlier) -> object:
                truth = _truth(operand(env, prev))
                return None if truth is None else not truth

            return negation
        if isinstance(node.op, ast.USub):
            return lambda env, prev: _sub(0, operand(env, prev))
        what = _OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)
        raise self.error(node, f"the operator {what} is not allowed")

    def _binary(self, node: ast.BinOp, depth: int) -> _Eval:
        symbol = _BINARY.get(type(node.op))
        if symbol is None:
            what = _OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)
            raise self.error(node, f"the operator {what} is not allowed")
        apply = _ARITHMETIC[symbol]
        left = self.compile(node.left, depth)
        right = self.compile(node.right, depth)
        return lambda env, prev: apply(left(env, prev), right(env, prev))

    def _comparison(self, node: ast.Compare, depth: int) -> _Eval:
        ops: list[Callable[[object, object], object]] = []
        for op in node.ops:
            function = _COMPARE.get(type(op))
            if function is None:
                what = _OPERATOR_NAMES.get(type(op), type(op).__name__)
                raise self.error(node, f"the comparison {what} is not allowed")
            ops.append(function)
        operands = [self.compile(node.left, depth)]
        operands += [self.compile(c, depth) for c in node.comparators]

        def chain(env: Env, prev: _Earlier) -> object:
            values = [operand(env, prev) for operand in operands]
            result: bool | None = True
            for i, op in enumerate(ops):
                outcome = _compare(op, values[i], values[i + 1])
                if outcome is False:
                    return False
                if outcome is None:
                    result = None
            return result

        return chain

    def _call(self, node: ast.Call, depth: int) -> _Eval:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            if isinstance(node.func, ast.Name):
                known = ", ".join(sorted(FUNCTIONS))
                raise self.error(node, f"unknown function {node.func.id}(); use one of {known}")
            raise self.error(node, "only the built-in rule functions can be called")
        name = node.func.id
        if node.keywords:
            raise self.error(node, f"{name}() takes no keyword arguments")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.error(node, f"{name}() takes no starred arguments")
        count = len(node.args)

        if name in ("min", "max"):
            if count < 2:
                raise self.error(node, f"{name}() needs at least two arguments")
            parts = [self.compile(arg, depth) for arg in node.args]
            pick: Callable[..., object] = min if name == "min" else max
            return lambda env, prev: _extreme(pick, [p(env, prev) for p in parts])

        if count != 1:
            raise self.error(node, f"{name}() takes exactly one argument")
        if name in ("prev", "last_year", "opening", "pct_change"):
            return self._field_function(node, name)
        operand = self.compile(node.args[0], depth)
        if name == "abs":
            return lambda env, prev: _abs(operand(env, prev))
        return lambda env, prev: operand(env, prev) is not None  # given()

    def _field_function(self, node: ast.Call, name: str) -> _Eval:
        """prev(x), last_year(x), opening(x) and pct_change(x) look a field up in an earlier
        submission."""
        arg = node.args[0]
        if not isinstance(arg, ast.Name) or arg.id not in self.fields:
            raise self.error(node, f"{name}() takes the name of a form field")
        key = arg.id
        self.names.add(key)
        if name == "prev":
            return lambda env, earlier: earlier.prev.get(key)
        if name == "opening":
            return lambda env, earlier: earlier.opening.get(key)
        if name == "last_year":
            return lambda env, earlier: earlier.last_year.get(key)
        return lambda env, earlier: _pct_change(env.get(key), earlier.prev.get(key))

    def _ifexp(self, node: ast.IfExp, depth: int) -> _Eval:
        test = self.compile(node.test, depth)
        body = self.compile(node.body, depth)
        orelse = self.compile(node.orelse, depth)

        def conditional(env: Env, prev: _Earlier) -> object:
            truth = _truth(test(env, prev))
            if truth is None:
                return None
            return body(env, prev) if truth else orelse(env, prev)

        return conditional


def _is_predicate(node: ast.AST) -> bool:
    """Whether the expression can only yield True, False or None (what a rule must be)."""
    if isinstance(node, ast.Compare | ast.BoolOp):
        return True
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not)
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id == "given"
    if isinstance(node, ast.Constant):
        return isinstance(node.value, bool)
    if isinstance(node, ast.IfExp):
        return _is_predicate(node.body) and _is_predicate(node.orelse)
    return False


class Expression:
    """A parsed rule or condition: parsed once, evaluated many times."""

    __slots__ = ("_root", "is_predicate", "names", "source")

    source: str
    names: frozenset[str]  # every name read, context names and prev() arguments included
    is_predicate: bool  # yields only True/False/None, so it can serve as a rule's check

    def __init__(self, source: str, names: frozenset[str], root: _Eval, predicate: bool) -> None:
        self.source = source
        self.names = names
        self.is_predicate = predicate
        self._root = root

    @classmethod
    def parse(cls, source: str, allowed_names: Collection[str]) -> Expression:
        """Parse `source`, allowing the given field names plus CONTEXT_NAMES.

        Raises ValueError saying what is wrong and where.
        """
        if not isinstance(source, str) or not source.strip():
            raise ValueError("the expression is empty")
        if len(source) > MAX_SOURCE_LENGTH:
            raise ValueError(f"the expression is longer than {MAX_SOURCE_LENGTH} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"syntax error: {exc.msg} in {source!r}") from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ValueError(f"cannot parse {source!r}: {exc}") from None
        compiler = _Compiler(source, allowed_names)
        root = compiler.compile(tree.body)
        return cls(source, frozenset(compiler.names), root, _is_predicate(tree.body))

    def evaluate(
        self, env: Env, prev: Env, opening: Env | None = None, last_year: Env | None = None
    ) -> object:
        """The value with `env` holding this submission's values and context; `prev`,
        `opening` and `last_year` what the functions of those names read. Missing names are None."""
        return _plain(self._root(env, _Earlier(prev, opening or {}, last_year or {})))

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


@lru_cache(maxsize=4096)
def compiled(source: str, allowed_names: frozenset[str]) -> Expression:
    """Expression.parse with a cache: forms are checked on every answer."""
    return Expression.parse(source, allowed_names)


# ---------------------------------------------------------------------------------------------
# Checking a form


@dataclass(frozen=True)
class Violation:
    rule: Rule
    message: str  # formatted for the locale


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MISSING = "—"


def format_value(field: Field, value: object, locale: str) -> str:
    """A value as people read it back, the same in rule messages, questions and the summary:
    money, numbers and dates through Babel for the locale ('1.250.000 ₫', '₫1,250,000'),
    a choice by its label, a missing value as a dash."""
    if value is None:
        return MISSING
    t = translator(locale)
    if field.type == "choice":
        for choice in field.choices:
            if choice.value == str(value):
                return choice.label.get(locale)
        return str(value)
    if field.type == "date" and isinstance(value, str):  # as a dialogue stores it
        try:
            return t.date(date.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, date):
        return t.date(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return t.money(value) if field.type == "money" else t.number(value)
    if isinstance(value, float):
        return t.number(value)
    return str(value)


def format_message(form: Form, template: str, values: Mapping[str, object], locale: str) -> str:
    """Fill `{field_key}` placeholders; a missing value shows as a dash."""
    keys = set(form.field_keys)

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in keys:
            return match.group(0)
        return format_value(form.field(key), values.get(key), locale)

    return _PLACEHOLDER.sub(replace, template)


def _environment(values: Mapping[str, object], context: Mapping[str, object]) -> dict[str, object]:
    env = dict(context)
    env.update(values)
    return env


def check_rules(
    form: Form,
    values: Mapping[str, object],
    prev: Mapping[str, object],
    context: Mapping[str, object],
    *,
    answered: Collection[str],
    focus: str | None,
    locale: str,
    opening: Mapping[str, object] | None = None,
    last_year: Mapping[str, object] | None = None,
) -> list[Violation]:
    """The rules the answers break, hard ones first, in form order.

    Only rules that read `focus` (every rule when focus is None, for the final summary) and
    whose fields have all been answered are checked; a skipped field counts as answered with
    the value None. `prev`, `opening` and `last_year` are what the rule functions of those names
    read (bot/domain/forms/history.py). Placeholders in the messages are filled by `format_value`.
    """
    allowed = frozenset(form.field_keys)
    env = _environment(values, context)
    done = set(answered)
    hard: list[Violation] = []
    soft: list[Violation] = []
    for rule in form.rules:
        if focus is not None and focus not in rule.fields:
            continue
        if not done.issuperset(rule.fields):
            continue
        if compiled(rule.check, allowed).evaluate(env, prev, opening, last_year) is not False:
            continue
        message = format_message(form, rule.message.get(locale), values, locale)
        (hard if rule.severity == "hard" else soft).append(Violation(rule, message))
    return hard + soft


def should_ask(
    form: Form,
    field: Field,
    values: Mapping[str, object],
    prev: Mapping[str, object],
    context: Mapping[str, object],
) -> bool:
    """Whether to ask `field` now: it has no ask_if, or ask_if is true (not merely unknown)."""
    if field.ask_if is None:
        return True
    expression = compiled(field.ask_if, frozenset(form.field_keys))
    return expression.evaluate(_environment(values, context), prev) is True
