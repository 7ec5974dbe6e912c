"""DESIGN.md boundary 9: flows never touch the database session; services are the only writers.

Outside `storage/` and `bot/services/`, code reaches the database through the unit of work's
repositories (`uow.units`, `uow.scheduler`, …) or through a service, never through
`uow.session`. The check reads the syntax tree, so comments and docstrings do not count, and
any `<something uow>.session` does (`ctx.uow.session`, `self._uow.session`, `uow.session`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("bot/services/",)
# Being rewritten by other work of issue 8 (the messaging modules): they move to
# repositories when that work lands. A prefix that no longer matches a user must be removed.
KNOWN = {
    "bot/messaging/": "the outbox, notices, reminders, digests and outreach jobs (the one outbox)",
}
# The dialogue and handler layers do not even import the database toolkit.
NO_SQLALCHEMY = ("bot/conversations/", "bot/handlers/")


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


def test_no_unit_of_work_session_outside_services() -> None:
    found = {
        path: lines
        for path, source in _sources().items()
        if not path.startswith(ALLOWED + tuple(KNOWN)) and (lines := session_uses(source))
    }
    assert not found, (
        "use a repository on the unit of work, or a service, instead of uow.session: "
        + ", ".join(f"{path} (lines {', '.join(map(str, lines))})" for path, lines in found.items())
    )


def test_the_known_exceptions_are_still_needed() -> None:
    users = [path for path, source in _sources().items() if session_uses(source)]
    stale = [known for known in KNOWN if not any(path.startswith(known) for path in users)]
    assert not stale, f"no longer using uow.session: remove from KNOWN in {__file__}: {stale}"


def test_dialogues_and_handlers_do_not_import_sqlalchemy() -> None:
    offenders = [
        path
        for path, source in _sources().items()
        if path.startswith(NO_SQLALCHEMY) and imports_sqlalchemy(source)
    ]
    assert not offenders, offenders
