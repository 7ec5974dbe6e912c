"""The command table (bot/handlers/command_table.py) and what is derived from it: routing, the
menu, /trogiup, the platforms' lists and the README, which must agree with the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.conversations.engine import FlowTable
from bot.conversations.flows import default_flows
from bot.domain.commands import ENGLISH, command_text
from bot.domain.i18n import translator
from bot.handlers.command_table import COMMANDS, StartFlow, group_commands, platform_commands
from bot.handlers.commands import Command, parse_command
from storage.models import COMMUNE_OFFICER, MEMBER, PROVINCE_STAFF, VILLAGE_OFFICER
from tests.support import Chat, make_app, make_contact, seed_tree

ROOT = Path(__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / "scripts" / "readme_commands.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_commands", module)
    spec.loader.exec_module(module)
    return module


readme = _load_script()


def test_the_readme_table_is_the_command_table() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.documented(text) == readme.readme_table(), (
        "README.md's command table differs from bot/handlers/command_table.py: "
        "run .venv/bin/python scripts/readme_commands.py"
    )


def test_the_readme_check_fails_on_a_drifted_table() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    drifted = text.replace("| `/huy` | `/cancel` |", "| `/huy` | `/abort` |")
    assert drifted != text
    assert readme.documented(drifted) != readme.readme_table()
    assert readme.updated(drifted) == text


def test_every_flow_a_command_starts_exists() -> None:
    flows = FlowTable(default_flows())
    for c in COMMANDS:
        if isinstance(c.starts, StartFlow):
            assert flows.get(c.starts.name) is not None, f"/{c.name} starts an unknown flow {c.starts.name!r}"


@pytest.mark.parametrize(
    ("typed", "name", "arg"),
    [
        ("/baocao", "baocao", ""),
        ("/REPORT", "baocao", ""),
        ("/report@KhuyenHocBot", "baocao", ""),
        ("/start ABCD-EFGH", "start", "ABCD-EFGH"),
        ("/summary", "baocaotonghop", ""),
        ("/stop", "dung", ""),
        ("/batdau", "batdau", ""),
        ("/resume", "batdau", ""),
        ("/help", "trogiup", ""),
        ("/tinhtrang huy 12", "tinhtrang", "huy 12"),
    ],
)
def test_words_and_aliases_name_one_command(typed: str, name: str, arg: str) -> None:
    assert parse_command(typed) == Command(name, arg)


def test_the_english_words_below_the_handlers_are_the_tables_aliases() -> None:
    """bot/domain/commands.py repeats the aliases for the layers that cannot import the table."""
    table = {c.name: c.alias for c in COMMANDS if c.alias}
    assert dict(ENGLISH) == table, "a command's alias goes in bot/domain/commands.py ENGLISH too"


@pytest.mark.parametrize(
    ("line", "vi", "en"),
    [
        ("/baocao", "/baocao", "/report"),
        ("traloi 12", "/traloi 12", "/answer 12"),
        ("/baocao 7 2026-H1", "/baocao 7 2026-H1", "/report 7 2026-H1"),
        ("/start", "/start", "/start"),  # no alias
    ],
)
def test_a_command_written_into_a_message_is_the_readers_word(line: str, vi: str, en: str) -> None:
    assert command_text(translator("vi"), line) == vi
    assert command_text(translator("en"), line) == en
    assert parse_command(en) == parse_command(vi)  # and it runs the same command


def test_unknown_words_are_not_commands_of_the_table() -> None:
    assert parse_command("/xyz") == Command("xyz", "", known=False)
    assert parse_command("baocao") is None


def test_only_start_and_help_are_answered_in_groups() -> None:
    assert group_commands() == {"start", "trogiup"}


def test_telegram_lists_the_listed_commands_in_both_languages() -> None:
    vi = platform_commands(translator("vi"))
    en = platform_commands(translator("en"))
    assert [n for n, _ in vi] == [
        "start",
        "baocao",
        "hoatdong",
        "toi",
        "lienket",
        "ngonngu",
        "huy",
        "trogiup",
    ]
    assert [n for n, _ in en] == ["start", "report", "activity", "me", "link", "language", "cancel", "help"]
    assert dict(vi)["baocao"] == "Báo cáo thôn" and dict(en)["report"] == "Village report"
    assert dict(vi)["start"] == "Đăng ký hoặc bắt đầu lại"


MENUS = {
    None: ["cmd:start", "cmd:toi", "cmd:trogiup"],
    MEMBER: ["cmd:tin", "cmd:toi", "cmd:trogiup"],
    VILLAGE_OFFICER: ["cmd:baocao", "cmd:hoatdong", "cmd:traloi", "cmd:tin", "cmd:toi", "cmd:trogiup"],
    COMMUNE_OFFICER: [
        "cmd:baocao",
        "cmd:hoatdong",
        "cmd:baocaoxa",
        "cmd:traloi",
        "cmd:thon",
        "cmd:baocaotonghop",
        "cmd:duyet",
        "cmd:guitin",
        "cmd:yeucau",
        "cmd:tinhtrang",
        "cmd:tin",
        "cmd:toi",
        "cmd:trogiup",
    ],
}
# Commands of a role's help that its menu leaves out (a setting seldom changed: /hoso; the link to
# the web console, used at a desk: /web).
HELP_ONLY: dict[str | None, set[str]] = {COMMUNE_OFFICER: {"hoso", "web"}, PROVINCE_STAFF: {"hoso", "web"}}


@pytest.mark.parametrize("role", list(MENUS), ids=lambda r: r or "new")
async def test_the_menu_and_help_offer_what_the_role_may_do(role: str | None, sqlite_url: str) -> None:
    from storage.migrate import upgrade_async

    await upgrade_async(sqlite_url)
    app = make_app(sqlite_url)
    try:
        tree = await seed_tree(app)
        if role is not None:
            unit = tree.commune if role in (COMMUNE_OFFICER, PROVINCE_STAFF) else tree.village
            await make_contact(app, "u1", role, unit, "en")
        chat = Chat(app, "u1")
        await chat.say("/menu")
        assert chat.option_ids == MENUS[role]
        if role is None:
            assert chat.option_labels[0] == "Bắt đầu"  # the button's own label, not Telegram's
            return
        await chat.say("/help")
        offered = ({o[4:] for o in MENUS[role]} - {"start"}) | HELP_ONLY.get(role, set())
        for c in COMMANDS:
            if c.help is None:
                continue
            line = f"/{c.alias or c.name} — {translator('en')(c.help)}"  # English help: English commands
            assert (line in chat.text) == (c.name in offered or c.action is None), line
        assert "“back”" in chat.text and "quay lại" not in chat.text
    finally:
        await app.db.dispose()


async def test_a_stored_question_naming_a_command_by_its_alias_still_runs(sqlite_url: str) -> None:
    """/batdau was stored as "resume" before the table named commands by their Vietnamese word."""
    from storage.migrate import upgrade_async

    await upgrade_async(sqlite_url)
    app = make_app(sqlite_url)
    try:
        tree = await seed_tree(app)
        await make_contact(app, "u1", VILLAGE_OFFICER, tree.village, "en")
        chat = Chat(app, "u1")
        await chat.say("/baocao")
        await chat.say("/batdau")
        assert "Leave it for /resume?" in chat.text  # an English reader reads the English word
        async with app.uow() as uow:
            contact = await uow.contacts.by_identity("test", "u1")
            assert contact is not None
            row = await uow.dialogues.get(contact.id)
            assert row is not None and row.state["leave"]["cmd"] == "batdau"
            row.state = {**row.state, "leave": {**row.state["leave"], "cmd": "resume"}}
            await uow.commit()
        await chat.press("leave")
        assert "You already receive articles and news" in chat.text
    finally:
        await app.db.dispose()
