"""DESIGN.md boundaries 1 and 8: the layers of `bot/` import downward only, checked transitively.

    runtime → channels → handlers → conversations → services → messaging → reports → domain → storage

Every import counts, at the top of a module or inside a function, `TYPE_CHECKING` ones too: a
module reaches every module its imports reach, and nothing it reaches may sit in a higher layer.
The dialogue engine and the handlers (and everything they reach) import no transport library.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    "storage",
    "bot.domain",
    "bot.reports",
    "bot.messaging",
    "bot.services",
    "bot.conversations",
    "bot.handlers",
    "bot.channels",
    "bot.runtime",
)
# Entry points above every layer.
TOP = {"bot", "bot.__main__"}
TRANSPORTS = {"telegram", "httpx", "fastapi", "starlette", "aiogram", "uvicorn", "aiohttp", "requests"}
TRANSPORT_FREE = ("bot.conversations", "bot.handlers", "bot.services", "bot.domain")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for top in ("bot", "storage"):
        for path in (root / top).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path, root)] = path
    return found


def imports_of(path: Path, known: Iterable[str]) -> set[str]:
    """The project modules (and third-party top-level names) that a file imports."""
    known = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def add(name: str) -> None:
        # `from bot.x import y` may name a module bot.x.y or a name in bot.x: keep the longest known.
        while name and name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                add(f"{node.module}.{alias.name}")
    return found


def layer_of(module: str) -> int | None:
    """The layer's rank (higher may import lower), or None outside the layers."""
    for rank, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


class Graph:
    def __init__(self, root: Path = ROOT) -> None:
        self.files = modules(root)
        self.edges = {m: imports_of(p, self.files) for m, p in self.files.items()}

    @cache  # noqa: B019 - one graph per test session
    def reach(self, module: str) -> dict[str, tuple[str, ...]]:
        """Every module reachable from `module`, with one import chain that reaches it."""
        chains: dict[str, tuple[str, ...]] = {}
        todo = [(module, (module,))]
        while todo:
            current, chain = todo.pop()
            for nxt in sorted(self.edges.get(current, ())):
                if nxt not in chains and nxt != module:
                    chains[nxt] = (*chain, nxt)
                    todo.append((nxt, chains[nxt]))
        return chains

    def upward(self, module: str) -> list[str]:
        """The import chains from `module` that end in a higher layer."""
        rank = layer_of(module)
        if rank is None:
            return []
        bad = []
        for target, chain in self.reach(module).items():
            target_rank = layer_of(target)
            if target_rank is not None and target_rank > rank:
                bad.append(" → ".join(chain))
        return sorted(bad)

    def transports(self, module: str) -> list[str]:
        return sorted(
            " → ".join(chain)
            for target, chain in self.reach(module).items()
            if target.split(".")[0] in TRANSPORTS
        )


GRAPH = Graph()


def test_every_module_sits_in_a_layer() -> None:
    outside = sorted(m for m in GRAPH.files if layer_of(m) is None and m not in TOP)
    assert not outside, f"modules outside the layers: {outside}"
    for prefix in LAYERS:
        assert any(layer_of(m) == LAYERS.index(prefix) for m in GRAPH.files), f"{prefix} is empty"


@pytest.mark.parametrize("module", sorted(GRAPH.files))
def test_imports_go_downward_only(module: str) -> None:
    assert not GRAPH.upward(module), "upward imports:\n" + "\n".join(GRAPH.upward(module))


@pytest.mark.parametrize("module", sorted(m for m in GRAPH.files if m.startswith(TRANSPORT_FREE)))
def test_the_core_reaches_no_transport_library(module: str) -> None:
    assert not GRAPH.transports(module), "\n".join(GRAPH.transports(module))


def _tree(tmp_path: Path, files: dict[str, str]) -> Graph:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("bot", "storage"):
        (tmp_path / package).mkdir(exist_ok=True)
    return Graph(tmp_path)


def test_the_checker_finds_an_upward_import_two_steps_away(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "bot/domain/periods.py": "from bot.domain.helpers import x\n",
            "bot/domain/helpers.py": "def f():\n    from bot.runtime.http import app\n",
            "bot/runtime/http.py": "import fastapi\n",
            "bot/services/ok.py": "from bot.domain.periods import Period\n",
        },
    )
    assert graph.upward("bot.domain.periods") == [
        "bot.domain.periods → bot.domain.helpers → bot.runtime.http"
    ]
    assert graph.upward("bot.runtime.http") == []
    assert graph.upward("bot.services.ok") == [
        "bot.services.ok → bot.domain.periods → bot.domain.helpers → bot.runtime.http"
    ]
    assert graph.transports("bot.domain.periods") == [
        "bot.domain.periods → bot.domain.helpers → bot.runtime.http → fastapi"
    ]
