"""DESIGN.md boundary 1: the dialogue engine and handlers import no transport library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
FORBIDDEN = {"telegram", "httpx", "fastapi", "starlette", "aiogram", "uvicorn", "aiohttp", "requests"}
CORE_FILES = sorted([*(BOT / "conversations").rglob("*.py"), *(BOT / "handlers").rglob("*.py")])


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.split(".")[0] == "bot" and ".channels" in "." + node.module:
                names.add("bot.channels")
    return names


def test_core_files_exist() -> None:
    assert len(CORE_FILES) >= 5


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(BOT)))
def test_no_transport_imports(path: Path) -> None:
    bad = imported_modules(path) & (FORBIDDEN | {"bot.channels"})
    assert not bad, f"{path.relative_to(BOT)} imports {sorted(bad)}"


def test_detector_catches_a_transport_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text(
        "import httpx\nfrom telegram.ext import Application\nfrom bot.channels.webchat import x\n"
    )
    assert {"httpx", "telegram", "bot.channels"} <= imported_modules(sample)
