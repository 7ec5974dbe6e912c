"""Every setting is described in the code and documented in docs/channels.md's reference table.

When this fails after adding a setting, the message lists the table rows to paste (generated
from `bot.domain.settings.Settings`); keep the table in the order of the class.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.domain.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "channels.md"
HEADING = "## Settings reference"
ROW = re.compile(
    r"^\|\s*`(?P<name>[a-z0-9_]+)`\s*\|\s*`(?P<env>[A-Z0-9_]+)`\s*\|\s*(?P<default>[^|]*?)\s*\|\s*(?P<doc>.*?)\s*\|\s*$"
)


def render_default(name: str) -> str:
    value = Settings.model_fields[name].default
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def render_row(name: str) -> str:
    description = (Settings.model_fields[name].description or "").replace("|", "\\|")
    return f"| `{name}` | `{name.upper()}` | {render_default(name)} | {description} |"


def documented_rows() -> dict[str, re.Match[str]]:
    text = DOC.read_text(encoding="utf-8")
    assert HEADING in text, f"{DOC} has no '{HEADING}' section"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group("name")] = match
    return rows


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"settings without a description: {missing}"


def test_every_setting_is_in_the_reference_table() -> None:
    rows = documented_rows()
    missing = [name for name in Settings.model_fields if name not in rows]
    assert not missing, "add these rows to the table in docs/channels.md:\n" + "\n".join(
        render_row(n) for n in missing
    )
    stale = [name for name in rows if name not in Settings.model_fields]
    assert not stale, f"docs/channels.md documents settings that no longer exist: {stale}"


def test_the_table_matches_the_code() -> None:
    wrong = []
    for name, row in documented_rows().items():
        if name not in Settings.model_fields:
            continue
        if (
            row.group("env") != name.upper()
            or row.group("default") != render_default(name)
            or not row.group("doc")
        ):
            wrong.append(render_row(name))
    assert not wrong, (
        "these rows of docs/channels.md differ from bot/domain/settings.py; they should read:\n"
        + "\n".join(wrong)
    )


def test_an_empty_variable_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`TELEGRAM_TOKEN=` left in .env (or passed empty by docker compose) must not start Telegram
    with an empty token, nor set PUBLIC_URL to an empty address."""
    env = tmp_path / ".env"
    env.write_text("TELEGRAM_TOKEN=\nZALO_TOKEN=\n")
    monkeypatch.setenv("PUBLIC_URL", "")
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert settings.telegram_token is None and settings.zalo_token is None
    assert settings.public_url is None
