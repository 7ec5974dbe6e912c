"""Text from outside is data: cleaned once where it comes in, before anything stores or draws it.

Two strengths. `clean_text` is for what people send (all channels, bot.domain.messages.Incoming):
it drops what no database or renderer can take — lone surrogates (not encodable as UTF-8: both
databases refuse them) and control characters (PostgreSQL refuses NUL in text; openpyxl refuses
most of C0) — and keeps line breaks and tabs. `clean_name` is for names that become part of
official documents (units): NFC, no control or format characters at all (bidi overrides
included), spaces collapsed, bounded length.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

# Lone surrogates, C0 controls but tab, line feed and carriage return, DEL and the C1 controls.
_BAD_IN_TEXT = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
# Unicode categories never kept in a name: controls, format characters (bidi overrides, zero
# width joiners), surrogates, private use.
_NOT_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Co"})


def clean_text(text: str) -> str:
    """`text` without lone surrogates and control characters other than tab and line breaks."""
    if _BAD_IN_TEXT.search(text) is None:  # the common case costs one scan
        return text
    return _BAD_IN_TEXT.sub("", text)


def clean_deep(value: Any) -> Any:
    """Every string in a JSON-like value (dict keys too) through `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_deep(k): clean_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_deep(v) for v in value]
    return value


def clean_name(name: str, max_length: int | None = None) -> str:
    """A name as it is kept: NFC, no control, format or private-use characters, single spaces,
    stripped; cut at `max_length` characters when given (callers that must refuse a long name
    check the length before cutting)."""
    text = clean_text(name)
    text = unicodedata.normalize("NFC", text)
    if any(unicodedata.category(ch) in _NOT_IN_NAMES for ch in text):
        # Controls that are also spaces (tab, line feed) become spaces; the others disappear.
        kept = (ch for ch in text if ch.isspace() or unicodedata.category(ch) not in _NOT_IN_NAMES)
        text = "".join(" " if ch.isspace() else ch for ch in kept)
    text = _SPACES.sub(" ", text).strip()
    return text[:max_length].rstrip() if max_length is not None else text


TITLE_TEXT = 60  # the longest title (a broadcast's, a request's) shown in a list or on a button

_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: whole, or cut at the last word boundary that fits,
    with "…" after the last word kept ("Họp chi hội thôn Nà Rụa" → "Họp chi hội…"). A single
    word longer than `limit` is cut inside it, the only place left. Line breaks are kept."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    room = text[: limit - 1]  # one character is the ellipsis
    if not text[limit - 1].isspace():
        space = _LAST_SPACE.search(room)
        if space is not None and space.start() > 0:
            room = room[: space.start()]
    kept = room.rstrip().rstrip(",;:.-–—").rstrip()
    return (kept or room) + "…"


def sentence_case(text: str) -> str:
    """The first letter in capitals, the rest as it is: a label that starts a button or a line
    ("năm 2026" → "Năm 2026"); str.capitalize would lower the rest."""
    return text[:1].upper() + text[1:]
