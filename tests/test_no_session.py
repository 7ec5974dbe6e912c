"""DESIGN.md boundary 9: flows never touch the database session; services are the only writers.

Outside `storage/` and `bot/services/`, code reaches the database through the unit of work's
repositories (`uow.units`, `uow.scheduler`, …) or through a service, never through
`uow.session`. The check reads the syntax tree, so comments and docstrings do not count, and
any `<something uow>.session` does (`ctx.uow.session`, `self._uow.session`, `uow.session`).

The outbox, the recipients, reminders, digests and outreach (bot/messaging), the dialogues, the
handlers and the channels' send path (bot/channels/ratelimit.py) go further: no function there
takes or returns an `AsyncSession`, and none opens a session of its own (`db.sessions()`). They
take a unit of work, a read-only one, or a repository, so that a raw session handed from
function to function cannot come back.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("bot/services/",)
# The dialogue and handler layers do not even import the database toolkit.
NO_SQLALCHEMY = ("bot/conversations/", "bot/handlers/")
# Layers that neither pass sessions around nor open their own.
NO_RAW_SESSION = ("bot/messaging/", "bot/conversations/", "bot/handlers/", "bot/channels/ratelimit.py")


def _owner_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def session_uses(source: str) -> list[int]:
    """Lines where the session of a unit of work is reached."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr == "session"
        and "uow" in _owner_name(node.value).lower()
    )


def _names_async_session(node: ast.expr | None) -> bool:
    if node is None:
        return False
    return any(
        (isinstance(n, ast.Name) and n.id == "AsyncSession")
        or (isinstance(n, ast.Attribute) and n.attr == "AsyncSession")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and "AsyncSession" in n.value)
        for n in ast.walk(node)
    )


def raw_sessions(source: str) -> list[int]:
    """Lines of functions whose signature names `AsyncSession` (a parameter or the result), and
    of calls that open a session (`….sessions()`)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
            if any(_names_async_session(p.annotation) for p in params) or _names_async_session(node.returns):
                lines.add(node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "sessions"
        ):
            lines.add(node.lineno)
    return sorted(lines)


def imports_sqlalchemy(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlalchemy" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            return True
    return False


def _sources() -> dict[str, str]:
    return {
        p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((ROOT / "bot").rglob("*.py"))
    }


def test_the_check_sees_what_it_looks_for() -> None:
    assert session_uses("async def f(ctx):\n    await ctx.uow.session.get(X, 1)\n") == [2]
    assert session_uses("s = self._uow.session\n") == [1]
    assert session_uses("uow.session.add(x)\n") == [1]
    assert session_uses('"""uow.session in a docstring"""\n# uow.session\nuow.units.get(1)\n') == []
    assert imports_sqlalchemy("from sqlalchemy import select\n")
    assert not imports_sqlalchemy("from storage.models import Unit\n")
    assert raw_sessions("async def f(session: AsyncSession, n: int) -> None:\n    pass\n") == [1]
    assert raw_sessions("def f(*, s: 'AsyncSession | None' = None):\n    pass\n") == [1]
    assert raw_sessions("def f(uow):\n    pass\n\n\ndef g() -> sa.AsyncSession:\n    pass\n") == [5]
    assert raw_sessions("async def f(app):\n    async with app.db.sessions() as s:\n        pass\n") == [2]
    assert raw_sessions("async def f(uow: UnitOfWork, reads: ReadOnlyUnitOfWork) -> None:\n    pass\n") == []


def test_no_unit_of_work_session_outside_services() -> None:
    found = {
        path: lines
        for path, source in _sources().items()
        if not path.startswith(ALLOWED) and (lines := session_uses(source))
    }
    assert not found, (
        "use a repository on the unit of work, or a service, instead of uow.session: "
        + ", ".join(f"{path} (lines {', '.join(map(str, lines))})" for path, lines in found.items())
    )


def test_dialogues_and_handlers_do_not_import_sqlalchemy() -> None:
    offenders = [
        path
        for path, source in _sources().items()
        if path.startswith(NO_SQLALCHEMY) and imports_sqlalchemy(source)
    ]
    assert not offenders, offenders


def test_messaging_dialogues_and_handlers_pass_no_raw_session() -> None:
    found = {
        path: lines
        for path, source in _sources().items()
        if path.startswith(NO_RAW_SESSION) and (lines := raw_sessions(source))
    }
    assert not found, (
        "take the unit of work, a read-only one (app.read_only()) or a repository, not a session: "
        + ", ".join(f"{path} (lines {', '.join(map(str, lines))})" for path, lines in found.items())
    )
