"""Commands as the reader types them: the Vietnamese word, or its English alias in English.

The command table (bot/handlers/command_table.py) declares every command with its English alias
and routes both words. Messages with a fixed command say it in the msgid in English ("Send /me…")
and in the Vietnamese catalog in Vietnamese ("Gửi /toi…"); tests/test_i18n.py checks both. Text
built below the handlers with a command filled in — a reminder's {command}, a request's
"/traloi 12", the return notice's /baocao — cannot import the table, so it writes the command
through `command_text`, which reads ENGLISH: the aliases again, which
tests/test_command_table.py checks against the table (a new command with an alias goes in both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bot.domain.i18n import Translator

# Vietnamese command word → English alias, for every command that has one.
ENGLISH: Final[Mapping[str, str]] = {
    "baocao": "report",
    "hoatdong": "activity",
    "traloi": "answer",
    "thon": "villages",
    "baocaotonghop": "summary",
    "baocaoxa": "communereport",
    "duyet": "review",
    "guitin": "broadcast",
    "yeucau": "request",
    "tinhtrang": "status",
    "tin": "news",
    "chude": "topics",
    "dung": "stop",
    "batdau": "resume",
    "toi": "me",
    "hoso": "profile",
    "lienket": "link",
    "huylienket": "unlink",
    "dulieu": "mydata",
    "xoadulieu": "deletemydata",
    "ngonngu": "language",
    "huy": "cancel",
    "trogiup": "help",
}


def command_word(locale: str, name: str) -> str:
    """The word of the command `name` (Vietnamese, as declared) for a reader of `locale`."""
    return ENGLISH.get(name, name) if locale == "en" else name


def command_text(t: Translator, line: str) -> str:
    """A command line as `t`'s reader types it: "/traloi 12" → "/answer 12" in English."""
    word, _, rest = line.strip().lstrip("/").partition(" ")
    return "/" + " ".join(part for part in (command_word(t.locale, word), rest.strip()) if part)
