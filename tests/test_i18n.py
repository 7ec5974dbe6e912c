"""The catalogs cover the code, and the Translator formats numbers, money and dates per locale.

The msgids come from the code by the extraction of scripts/update_catalogs.py; when a test here
fails after adding a message, run `.venv/bin/python scripts/update_catalogs.py` and translate the
new (empty or fuzzy) entries of bot/domain/locales/vi/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import unicodedata
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog

from bot.domain.i18n import SUPPORTED, Translator, translator

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
WORDS_TO_TYPE = ("quay lại", "bỏ qua", "giữ nguyên", "hủy", "không")


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


@pytest.mark.parametrize("locale", SUPPORTED)
def test_translations_keep_commands_and_words_to_type(locale: str) -> None:
    """Commands (/baocao) and the words the engine recognises (“quay lại”) stay as they are."""
    wrong = []
    for m in _catalog(locale):
        if not (m.id and m.string):
            continue
        msgid, msgstr = str(m.id), str(m.string)
        needed = set(re.findall(r"(?<!\w)/[a-z]+", msgid))
        needed |= {f"“{w}”" for w in WORDS_TO_TYPE if f"“{w}”" in msgid}
        if any(word not in msgstr for word in needed):
            wrong.append(f"{msgid!r} -> {msgstr!r}")
    assert not wrong, "\n".join(wrong)


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
        "This is not a number. Type a whole number, e.g. 120 (or “không” for zero).",
    ):
        text = t(msgid)
        assert text != msgid and vietnamese.search(unicodedata.normalize("NFD", text)), text


def test_english_catalog_is_the_source_text() -> None:
    en = translator("en")
    assert en("Cancelled. Nothing was saved.") == "Cancelled. Nothing was saved."
    assert en("Keep: {value}", value="120") == "Keep: 120"
