"""Write the README's command table from the command table in bot/handlers/command_table.py.

    .venv/bin/python scripts/readme_commands.py          # rewrite the table under "## Commands"
    .venv/bin/python scripts/readme_commands.py --check  # write nothing; exit 1 if it differs

tests/test_command_table.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.handlers.command_table import readme_table  # noqa: E402

README = ROOT / "README.md"
HEADING = "## Commands\n"


def table_span(text: str) -> tuple[int, int]:
    """Where the markdown table under HEADING starts and ends (its first and after-last line)."""
    at = text.index(HEADING) + len(HEADING)
    lines = text[at:].splitlines(keepends=True)
    start = at
    i = 0
    while i < len(lines) and not lines[i].startswith("|"):
        start += len(lines[i])
        i += 1
    if i == len(lines):
        raise ValueError(f"no table under {HEADING.strip()!r} in README.md")
    end = start
    while i < len(lines) and lines[i].startswith("|"):
        end += len(lines[i])
        i += 1
    return start, end


def documented(text: str) -> str:
    start, end = table_span(text)
    return text[start:end]


def updated(text: str) -> str:
    start, end = table_span(text)
    return text[:start] + readme_table() + text[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if README.md differs")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    new = updated(text)
    if new == text:
        return 0
    if args.check:
        sys.stderr.write("README.md differs from the command table: run scripts/readme_commands.py\n")
        return 1
    README.write_text(new, encoding="utf-8")
    sys.stdout.write("updated README.md\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
