"""The catalogs cover the code, and the Translator formats numbers, money and dates per locale.

The msgids come from the code by the extraction of scripts/update_catalogs.py; when a test here
fails after adding a message, run `.venv/bin/python scripts/update_catalogs.py` and translate the
new (empty or fuzzy) entries of bot/domain/locales/vi/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
import unicodedata
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog

from bot.conversations.engine import BACK_WORDS, CANCEL_WORDS, KEEP_WORDS, SKIP_WORDS
from bot.conversations.flows.outreach_flows import STOP_WORDS
from bot.domain.commands import ENGLISH
from bot.domain.i18n import SUPPORTED, Translator, translator
from bot.domain.parsing import fold, parse_integer, parse_money
from bot.handlers.command_table import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("update_catalogs", ROOT / "scripts" / "update_catalogs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("update_catalogs", module)
    spec.loader.exec_module(module)
    return module


catalogs = _load_script()
MESSAGES, PROBLEMS = catalogs.extract()
NBSP = "\u00a0"  # Babel's CLDR data puts a no-break space between amount and ₫ in Vietnamese
# The words the messages suggest typing: English in the msgids, Vietnamese in the vi catalog.
KEYWORDS = {
    "back": "quay lại",
    "skip": "bỏ qua",
    "keep": "giữ nguyên",
    "cancel": "hủy",
    "none": "không",
    "stop": "dừng",
}
COMMAND = re.compile(r"(?<![\w/])/([a-z]+)\b")
COMMAND_NAMES = {c.name for c in COMMANDS}


def _catalog(locale: str) -> Catalog:
    result: Catalog = catalogs.read(catalogs.po_path(locale), locale)
    return result


def _where(msgid: str) -> str:
    path, line = MESSAGES[msgid][0]
    return f"{path}:{line}"


def test_extraction_finds_the_messages() -> None:
    assert len(MESSAGES) > 50
    assert "Cancelled. Nothing was saved." in MESSAGES  # t("...")
    assert "Member" in MESSAGES  # N_("...")
    assert "Done." in MESSAGES  # ctx.t("...")
    assert PROBLEMS == []  # no t(f"...")
    # translator(locale)("…") in bot/services/broadcasts.py escaped the extraction until issue 10
    assert "📢 From the Study Promotion Association of {area}, to everyone:" in MESSAGES


def test_extraction_finds_every_kind_of_translator_call(tmp_path: Path) -> None:
    source = tmp_path / "bot"
    source.mkdir()
    (source / "module.py").write_text(
        textwrap.dedent(
            """
            from bot.domain import i18n
            from bot.domain.i18n import N_, Translator, translator

            LABEL = N_("marked for later")

            def made_in_place(locale):
                return translator(locale)("made in place")

            def through_the_module(locale):
                return i18n.translator(locale)("through the module") + i18n.Translator(locale)("the class")

            def bound_to_a_name(locale):
                tr = translator(locale)
                return tr("bound to a name")

            def typed(en: Translator, *, other: "Translator"):
                return en("a parameter typed Translator") + other("a keyword parameter")

            def from_a_context(ctx):
                say = ctx.t
                return say("bound from ctx.t") + ctx.t("ctx.t itself")

            def formatted(t, name):
                return t(f"hello {name}")

            def not_a_translator(x):
                return x("not a message") + str("nor this")
            """
        ),
        encoding="utf-8",
    )
    found, problems = catalogs.extract(source)
    assert set(found) == {
        "marked for later",
        "made in place",
        "through the module",
        "the class",
        "bound to a name",
        "a parameter typed Translator",
        "a keyword parameter",
        "bound from ctx.t",
        "ctx.t itself",
    }
    assert found["made in place"] == [("bot/module.py", 8)]
    assert [p.split(": ", 1)[0] for p in problems] == ["bot/module.py:25"]


@pytest.mark.parametrize("locale", SUPPORTED)
def test_every_message_is_translated(locale: str) -> None:
    entries = {str(m.id): m for m in _catalog(locale) if m.id}
    missing = [
        f"{_where(msgid)}: {msgid!r}"
        for msgid in MESSAGES
        if msgid not in entries or not entries[msgid].string or entries[msgid].fuzzy
    ]
    assert not missing, (
        f"{len(missing)} messages have no {locale} translation; run scripts/update_catalogs.py "
        "and translate them:\n" + "\n".join(missing)
    )


@pytest.mark.parametrize("locale", SUPPORTED)
def test_translations_keep_placeholders(locale: str) -> None:
    wrong = [
        f"{m.id!r} -> {m.string!r}"
        for m in _catalog(locale)
        if m.id and m.string and catalogs.placeholders(str(m.string)) != catalogs.placeholders(str(m.id))
    ]
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_english_text_names_the_english_commands_and_words() -> None:
    """In English mode everything is English, the commands and words it suggests included
    (issue 10: help listed /toi and hints said “quay lại”): msgids say /me and “back”."""
    wrong = []
    for msgid in MESSAGES:
        vietnamese = [f"/{w}" for w in COMMAND.findall(msgid) if w in ENGLISH]
        vietnamese += [f"“{w}”" for w in KEYWORDS.values() if f"“{w}”" in msgid]
        if vietnamese:
            wrong.append(f"{_where(msgid)}: {', '.join(vietnamese)} in {msgid!r}")
    assert not wrong, "say the English command or word in the msgid:\n" + "\n".join(wrong)


def test_vietnamese_text_names_the_vietnamese_commands_and_words() -> None:
    """The Vietnamese catalog writes /toi for the msgid's /me and “quay lại” for its “back”: the
    words the engine and the command table recognise."""
    by_alias = {alias: name for name, alias in ENGLISH.items()}
    wrong = []
    for m in _catalog("vi"):
        if not (m.id and m.string) or str(m.id) not in MESSAGES:
            continue
        msgid, msgstr = str(m.id), str(m.string)
        named = {by_alias.get(w, w) for w in COMMAND.findall(msgid)}
        needed = {f"/{name}" for name in named if name in COMMAND_NAMES}
        needed |= {f"“{vi}”" for en, vi in KEYWORDS.items() if f"“{en}”" in msgid}
        missing = [word for word in sorted(needed) if not re.search(re.escape(word) + r"(?!\w)", msgstr)]
        if missing:
            wrong.append(f"{', '.join(missing)} missing: {msgid!r} -> {msgstr!r}")
    assert not wrong, "\n".join(wrong)


def test_the_engine_understands_the_words_the_messages_suggest() -> None:
    for english, vietnamese in KEYWORDS.items():
        for word in (english, vietnamese):
            folded = fold(word)
            understood = {
                "back": BACK_WORDS,
                "skip": SKIP_WORDS,
                "keep": KEEP_WORDS,
                "cancel": CANCEL_WORDS,
                "stop": STOP_WORDS,
            }.get(english)
            if understood is None:
                assert parse_integer(word) == 0 and parse_money(word) == 0  # “none”, “không”
            else:
                assert folded in understood, word


def test_catalogs_are_up_to_date() -> None:
    assert catalogs.check(MESSAGES, PROBLEMS) == []


def test_vietnamese_formatting() -> None:
    vi = translator("vi")
    assert vi.money(1250000) == f"1.250.000{NBSP}₫"
    assert vi.money(0) == f"0{NBSP}₫"
    assert vi.number(1250) == "1.250"
    assert vi.number(1.5) == "1,5"
    assert vi.percent(12.34) == "12,3%"
    assert vi.date(date(2026, 10, 5)) == "05/10/2026"


def test_english_formatting() -> None:
    en = translator("en")
    assert en.money(1250000) == "₫1,250,000"
    assert en.number(1250) == "1,250"
    assert en.date(date(2026, 10, 5)) == "Oct 5, 2026"


def test_unknown_locale_falls_back_to_vietnamese() -> None:
    assert Translator("fr").locale == "vi"


def test_key_messages_come_out_in_vietnamese() -> None:
    t = translator("vi")
    assert t("Skip") == "Bỏ qua"
    assert t("Back") == "Quay lại"
    assert t("Keep: {value}", value="120") == "Giữ nguyên: 120"
    assert t("Question {n}/{total}: {label}", n=3, total=24, label="Tổng số hộ") == ("Câu 3/24: Tổng số hộ")
    assert t("First half of {year}", year=2026) == "6 tháng đầu năm 2026"
    assert t("Village report") == "Báo cáo thôn"
    vietnamese = re.compile("[đĐ\u0300-\u0323]")  # after NFD: đ or a Vietnamese diacritic
    for msgid in (
        "Cancelled. Nothing was saved.",
        "Please answer with one of the choices.",
        "What would you like to do?",
        "Send this report?",
        "This is not a number. Type a whole number, e.g. 120 (or “none” or 0 for zero).",
    ):
        text = t(msgid)
        assert text != msgid and vietnamese.search(unicodedata.normalize("NFD", text)), text


def test_english_catalog_is_the_source_text() -> None:
    en = translator("en")
    assert en("Cancelled. Nothing was saved.") == "Cancelled. Nothing was saved."
    assert en("Keep: {value}", value="120") == "Keep: 120"
