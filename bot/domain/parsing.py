"""Parse what people type: counts, VND amounts, dates and yes/no answers.

Pure functions, no I/O. Conventions (DOMAIN.md, "How people type numbers"): dots group
thousands ("1.250"), a comma is the decimal mark ("1,5"); money comes as "500k", "5tr",
"2tr5", "1,2 triệu", "1 tỷ", "1.200.000đ"; "không", "ko" and "0" mean zero; people often
type without diacritics, so everything is compared on :func:`fold`.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from fractions import Fraction
from typing import Final

__all__ = [
    "CODES",
    "MAX_VALUE",
    "ParseError",
    "date_example",
    "fold",
    "parse_date",
    "parse_integer",
    "parse_money",
    "parse_yes_no",
]

CODES: Final = frozenset({"empty", "not_a_number", "negative", "not_whole", "too_large", "bad_date"})
"""Every value :attr:`ParseError.code` can take."""

MAX_VALUE: Final = 10**15
"""Largest count or amount accepted; anything above is ``too_large``."""


class ParseError(ValueError):
    """Raised when text cannot be read; ``code`` says why (one of :data:`CODES`)."""

    code: str
    text: str

    def __init__(self, code: str, text: str = "") -> None:
        if code not in CODES:
            raise ValueError(f"unknown ParseError code: {code!r}")
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"{self.code}: {shown!r}"


# --------------------------------------------------------------------------- folding

_D_MAP: Final = str.maketrans({"đ": "d", "Đ": "d", "Ð": "d", "ð": "d"})


def fold(text: str) -> str:
    """Lower-case, strip diacritics (đ → d) and collapse whitespace: ``"Đồng Ý" → "dong y"``."""
    lowered = text.translate(_D_MAP).lower()
    decomposed = unicodedata.normalize("NFD", lowered)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(unicodedata.normalize("NFC", bare).split())


# --------------------------------------------------------------------------- numbers

# Punctuation people add around an answer ("120.", "5tr!", "có!!!"); str.strip, not a regex,
# so that long runs stay linear.
_PUNCT: Final = " .!?,;:…~"
_NEGATIVE: Final = re.compile(r"^(?:[-−–]|am(?![a-z]))\s*")

# "none" and "zero": what English mode suggests ("or “none” or 0 for zero").
_ZERO_WORDS: Final = frozenset({"khong", "ko", "khong co", "ko co", "none", "zero"})

# Unit words tolerated after a count ("120 hộ", "35 người", "5 dòng họ"), folded.
_COUNT_UNITS: Final = (
    "ho gia dinh",
    "gia dinh",
    "dong ho",
    "luot nguoi",
    "nguoi",
    "luot",
    "ho",
    "buoi",
    "suat",
    "hoi vien",
    "nhan khau",
    "khau",
    "lop",
    "chuyen de",
    "cau lac bo",
    "clb",
    "thon",
    "don vi",
    "hoc sinh",
    "em",
    "lan",
    "cai",
)
_COUNT_UNIT_SUFFIX: Final = re.compile(r"\s*(?:" + "|".join(re.escape(u) for u in _COUNT_UNITS) + r")$")

# Number shapes, matched with fullmatch on a folded token.
_PLAIN: Final = re.compile(r"[0-9]+")
_DOT_GROUPED: Final = re.compile(r"([0-9]{1,3}(?:\.[0-9]{3})+)(?:,([0-9]+))?")
_SPACE_GROUPED: Final = re.compile(r"([0-9]{1,3}(?: [0-9]{3})+)(?:,([0-9]+))?")
_COMMA_GROUPED: Final = re.compile(r"[0-9]{1,3}(?:,[0-9]{3}){2,}")
_COMMA_DECIMAL: Final = re.compile(r"([0-9]+),([0-9]+)")
_DOT_DECIMAL: Final = re.compile(r"([0-9]+)\.([0-9]{1,2}|[0-9]{4,})")

_NON_DIGITS: Final = re.compile(r"[^0-9]")
_MAX_WHOLE_DIGITS: Final = 16  # 10**15 has 16 digits
_MAX_FRACTION_DIGITS: Final = 20  # beyond this no multiplier we use makes it whole


def _number_value(token: str, raw: str) -> Fraction:
    """Exact value of one number token ("1.250", "1,5", "1 250 000")."""
    whole: str
    frac: str
    if _PLAIN.fullmatch(token):
        whole, frac = token, ""
    elif m := _DOT_GROUPED.fullmatch(token) or _SPACE_GROUPED.fullmatch(token):
        whole, frac = m.group(1), m.group(2) or ""
    elif _COMMA_GROUPED.fullmatch(token):
        # "1,250,000": two or more commas can only be English thousands grouping.
        whole, frac = token, ""
    elif m := _COMMA_DECIMAL.fullmatch(token):
        whole, frac = m.group(1), m.group(2)
        if len(frac) == 3 and whole.lstrip("0"):
            # "1,250": Vietnamese 1.25 or English 1250? Refuse rather than guess.
            raise ParseError("not_a_number", raw)
    elif m := _DOT_DECIMAL.fullmatch(token):
        whole, frac = m.group(1), m.group(2)
    else:
        raise ParseError("not_a_number", raw)
    digits = _NON_DIGITS.sub("", whole).lstrip("0")
    if len(digits) > _MAX_WHOLE_DIGITS:
        raise ParseError("too_large", raw)
    frac = frac.rstrip("0")
    if len(frac) > _MAX_FRACTION_DIGITS:
        raise ParseError("not_whole", raw)
    value = Fraction(int(digits or "0"))
    if frac:
        value += Fraction(int(frac), 10 ** len(frac))
    return value


def _prepare(text: str) -> str:
    """Fold and drop trailing punctuation; raise ``empty`` for blank input."""
    folded = fold(text)
    if not folded:
        raise ParseError("empty", text)
    return folded.rstrip(_PUNCT)


def _to_whole(value: Fraction, raw: str) -> int:
    """Check a parsed value is a whole number within range."""
    if value.denominator != 1:
        raise ParseError("not_whole", raw)
    if value > MAX_VALUE:
        raise ParseError("too_large", raw)
    return int(value)


def _split_sign(s: str, raw: str) -> tuple[bool, str]:
    """Remove a leading minus sign or "âm"; return (negative, rest)."""
    m = _NEGATIVE.match(s)
    if m is None:
        return False, s
    rest = s[m.end() :]
    if not rest:
        raise ParseError("not_a_number", raw)
    return True, rest


def parse_integer(text: str) -> int:
    """Parse a whole count ≥ 0: "1.250", "1 250", "120 hộ", "không" → 1250, 1250, 120, 0."""
    s = _prepare(text)
    if s in _ZERO_WORDS:
        return 0
    s = _COUNT_UNIT_SUFFIX.sub("", s)
    negative, s = _split_sign(s, text)
    if s in _ZERO_WORDS:
        return 0
    value = _to_whole(_number_value(s, text), text)
    if negative and value:
        raise ParseError("negative", text)
    return value


# --------------------------------------------------------------------------- money

_CURRENCY_SUFFIX: Final = re.compile(r"\s*(?:vnd|dong|d|₫)$")
_CURRENCY_PREFIX: Final = re.compile(r"^(?:vnd|₫)\s*")
_MONEY_TOKEN: Final = re.compile(
    r"\s*(?:"
    r"(?P<num>[0-9]+(?:[.,][0-9]+)*(?: [0-9]{3}(?![0-9]))*)"
    r"|(?P<unit>ty|ti|trieu|tr|nghin|ngan|k|billion|bn|million|mn|m)(?![a-z])"
    r")"
)
_UNIT_EXPONENT: Final = {
    "ty": 9,
    "ti": 9,
    "trieu": 6,
    "tr": 6,
    "nghin": 3,
    "ngan": 3,
    "k": 3,
    # In English: "2.5 million", "2.5m", "1 billion", "1bn".
    "billion": 9,
    "bn": 9,
    "million": 6,
    "mn": 6,
    "m": 6,
}
_GROUP_SEPARATORS: Final = re.compile(r"[. ]")


def _money_tokens(s: str, raw: str) -> list[tuple[str, str]]:
    """Split "2tr5" into [("num", "2"), ("unit", "tr"), ("num", "5")]."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(s):
        m = _MONEY_TOKEN.match(s, pos)
        if m is None or m.end() == pos:
            raise ParseError("not_a_number", raw)
        if m.group("num") is not None:
            tokens.append(("num", m.group("num")))
        else:
            tokens.append(("unit", m.group("unit")))
        pos = m.end()
    return tokens


def _tail_value(token: str, exponent: int, raw: str) -> Fraction:
    """Digits after a unit are the leading digits of the rest: "2tr5" → 0.5 of a million."""
    if _PLAIN.fullmatch(token) is None:
        if _DOT_GROUPED.fullmatch(token) is None and _SPACE_GROUPED.fullmatch(token) is None:
            raise ParseError("not_a_number", raw)
        if "," in token:
            raise ParseError("not_a_number", raw)
    digits = _GROUP_SEPARATORS.sub("", token)
    # 1–3 digits ("2tr5", "2tr250") or a full remainder ("2 triệu 500.000").
    if not (1 <= len(digits) <= 3 or len(digits) == exponent):
        raise ParseError("not_a_number", raw)
    return Fraction(int(digits) * 10**exponent, 10 ** len(digits))


def _money_value(s: str, raw: str) -> Fraction:
    """Value of a folded, sign-free amount such as "1 ty 200 trieu" or "2tr5"."""
    tokens = _money_tokens(s, raw)
    if not tokens:
        raise ParseError("not_a_number", raw)
    total = Fraction(0)
    last_exponent: int | None = None
    last_was_whole = True
    i = 0
    while i < len(tokens):
        kind, token = tokens[i]
        if kind != "num":
            raise ParseError("not_a_number", raw)  # a unit with no number before it
        if i + 1 < len(tokens) and tokens[i + 1][0] == "unit":
            if not last_was_whole:
                raise ParseError("not_a_number", raw)  # "1,5 tỷ 200 triệu"
            exponent = _UNIT_EXPONENT[tokens[i + 1][1]]
            value = _number_value(token, raw)
            if last_exponent is not None and (
                exponent >= last_exponent or value >= 10 ** (last_exponent - exponent)
            ):
                raise ParseError("not_a_number", raw)  # "5 nghìn 2 triệu", "1 tỷ 1500 triệu"
            total += value * 10**exponent
            last_exponent = exponent
            last_was_whole = value.denominator == 1
            i += 2
            continue
        if i != len(tokens) - 1:
            raise ParseError("not_a_number", raw)  # two numbers in a row
        if last_exponent is None:
            return _number_value(token, raw)  # a bare amount in đồng
        if not last_was_whole:
            raise ParseError("not_a_number", raw)  # "1,5tr5"
        total += _tail_value(token, last_exponent, raw)
        i += 1
    return total


def parse_money(text: str) -> int:
    """Parse whole VND ≥ 0: "500k", "2tr5", "1,2 triệu", "1 tỷ", "1.200.000đ", "không"."""
    s = _prepare(text)
    if s in _ZERO_WORDS:
        return 0
    s = _CURRENCY_PREFIX.sub("", _CURRENCY_SUFFIX.sub("", s))
    if s in _ZERO_WORDS:
        return 0  # "không đồng"
    if not s:
        raise ParseError("not_a_number", text)  # only a currency sign
    negative, s = _split_sign(s, text)
    if s in _ZERO_WORDS:
        return 0
    value = _to_whole(_money_value(s, text), text)
    if negative and value:
        raise ParseError("negative", text)
    return value


# --------------------------------------------------------------------------- dates

_DATE_PREFIX: Final = re.compile(r"^ngay\s*")
_ISO_DATE: Final = re.compile(r"([0-9]{4})\s*([-/.])\s*([0-9]{1,2})\s*\2\s*([0-9]{1,2})")
_DMY_DATE: Final = re.compile(r"([0-9]{1,2})\s*([-/.])\s*([0-9]{1,2})(?:\s*\2\s*([0-9]{4}|[0-9]{2}))?")
_WORDY_DATE: Final = re.compile(r"([0-9]{1,2})\s*thang\s*([0-9]{1,2})(?:\s*(?:nam\s*)?([0-9]{4}|[0-9]{2}))?")
_RELATIVE_DAYS: Final = {
    "hom nay": 0,
    "nay": 0,
    "today": 0,
    "hom qua": 1,
    "qua": 1,
    "yesterday": 1,
    "hom kia": 2,
}


def _year(token: str | None, today: datetime.date) -> int:
    """Four-digit year from "2026", "26" or nothing (this year)."""
    if token is None:
        return today.year
    year = int(token)
    return 2000 + year if len(token) == 2 else year


def date_example(day: datetime.date) -> str:
    """A date written as people are asked to type it, day first: "02/12/2026". Hints take it
    from the clock (today, or the day the answer is about), so no two examples disagree."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def parse_date(text: str, today: datetime.date) -> datetime.date:
    """Parse a day-first date ("5/10/2026", "5-10", "2026-10-05", "hôm nay") relative to today."""
    s = _prepare(text)
    if s in _RELATIVE_DAYS:
        return today - datetime.timedelta(days=_RELATIVE_DAYS[s])
    s = _DATE_PREFIX.sub("", s)
    try:
        if m := _ISO_DATE.fullmatch(s):
            return datetime.date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
        if m := _DMY_DATE.fullmatch(s):
            year = _year(m.group(4), today)
            return datetime.date(year, int(m.group(3)), int(m.group(1)))
        if m := _WORDY_DATE.fullmatch(s):
            year = _year(m.group(3), today)
            return datetime.date(year, int(m.group(2)), int(m.group(1)))
    except ValueError:
        raise ParseError("bad_date", text) from None
    raise ParseError("bad_date", text)


# --------------------------------------------------------------------------- yes / no

_YES: Final = frozenset(
    {
        "co",
        "dong y",
        "ok",
        "oke",
        "okay",
        "oki",
        "okie",
        "yes",
        "y",
        "dung",
        "u",
        "uh",
        "vang",
        "duoc",
        "xac nhan",
        "da",
        "phai",
        "chinh xac",
        "👍",
    }
)
_NO: Final = frozenset(
    {
        "khong",
        "ko",
        "k",
        "no",
        "n",
        "sai",
        "chua",
        "khong dong y",
        "khong phai",
        "👎",
    }
)
_POLITE_PREFIX: Final = re.compile(r"^(?:da|vang)\s+(?=\S)")
_POLITE_SUFFIX: Final = re.compile(r"\s+(?:a|roi|nhe|nha|nhen)$")


def parse_yes_no(text: str) -> bool | None:
    """True for "có", "đồng ý", "ok"…; False for "không", "ko", "chưa"…; None otherwise."""
    s = fold(text).strip(_PUNCT)
    # "vâng ạ", "đúng rồi", "dạ có", "dạ không ạ": try without politeness particles too.
    bare = _POLITE_SUFFIX.sub("", s)
    candidates = (s, bare, _POLITE_PREFIX.sub("", bare))
    for candidate in candidates:
        if candidate in _YES:
            return True
        if candidate in _NO:
            return False
    return None
