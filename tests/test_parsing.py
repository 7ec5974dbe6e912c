"""Tests for bot.domain.parsing: example tables for every accepted form, error codes, properties."""

from __future__ import annotations

import datetime
import pickle
from collections.abc import Callable

import pytest
from babel.numbers import format_decimal
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.parsing import (
    CODES,
    MAX_VALUE,
    ParseError,
    fold,
    parse_date,
    parse_integer,
    parse_money,
    parse_yes_no,
)

TODAY = datetime.date(2026, 5, 20)
PROPERTY = settings(max_examples=200, deadline=None, database=None)
QUICK = settings(max_examples=100, deadline=None, database=None)


def vi(n: int) -> str:
    """Format like the bot's confirmations do (Babel, Vietnamese): 1250000 -> "1.250.000"."""
    return format_decimal(n, locale="vi")


def code_of(func: Callable[[str], object], text: str) -> str:
    """The ParseError code func raises for text (fails if it does not raise)."""
    with pytest.raises(ParseError) as info:
        func(text)
    return info.value.code


def parse_date_today(text: str) -> datetime.date:
    return parse_date(text, TODAY)


# ------------------------------------------------------------------------------ ParseError


def test_parse_error_is_value_error_with_code() -> None:
    err = ParseError("negative", "-3")
    assert isinstance(err, ValueError)
    assert err.code == "negative"
    assert err.text == "-3"
    assert "negative" in str(err)


def test_parse_error_default_text_and_pickle() -> None:
    err = ParseError("empty")
    assert err.text == ""
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.text) == ("empty", "")


def test_parse_error_rejects_unknown_code() -> None:
    with pytest.raises(ValueError, match="unknown"):
        ParseError("nonsense")


def test_parse_error_str_truncates_long_text() -> None:
    assert len(str(ParseError("not_a_number", "x" * 10_000))) < 100


def test_codes() -> None:
    assert {"empty", "not_a_number", "negative", "not_whole", "too_large", "bad_date"} == CODES


# ------------------------------------------------------------------------------ fold


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hòa   AN ", "hoa an"),
        ("Đồng Ý", "dong y"),
        ("đ", "d"),
        ("Đ", "d"),
        ("Huỷ", "huy"),
        ("Hủy", "huy"),
        ("Nghìn", "nghin"),
        ("TRIỆU", "trieu"),
        ("Người", "nguoi"),
        ("ưƯơƠăĂâÂêÊôÔ", "uuooaaaaeeoo"),
        ("Tỷ\t\n tỉ", "ty ti"),
        ("1\u00a0250", "1 250"),
        ("", ""),
        ("   ", ""),
        ("abc 123", "abc 123"),
        ("Ð", "d"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_fold_decomposed_input() -> None:
    # Some keyboards send combining marks instead of precomposed letters.
    assert fold("Ho\u0300a") == "hoa"


VIETNAMESE_LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
vietnamese_text = st.text(
    alphabet=st.sampled_from(VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + " \t"),
    max_size=40,
)


@QUICK
@given(vietnamese_text)
def test_fold_vietnamese_gives_plain_ascii(text: str) -> None:
    folded = fold(text)
    assert folded == fold(folded)
    assert all(ch == " " or "a" <= ch <= "z" for ch in folded)
    assert "  " not in folded
    assert folded == folded.strip()


# ------------------------------------------------------------------------------ parse_integer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1250", 1250),
        ("1.250", 1250),
        ("1 250", 1250),
        ("1\u00a0250", 1250),
        ("1.250.000", 1_250_000),
        ("1 250 000", 1_250_000),
        ("1,250,000", 1_250_000),
        ("0", 0),
        ("007", 7),
        ("không", 0),
        ("khong", 0),
        ("Không", 0),
        ("ko", 0),
        ("KO", 0),
        ("không có", 0),
        ("ko co", 0),
        ("none", 0),  # English mode: "(or “none” or 0 for zero)"
        ("zero", 0),
        ("120 hộ", 120),
        ("120hộ", 120),
        ("35 người", 35),
        ("3 buổi", 3),
        ("12 suất", 12),
        ("5 dòng họ", 5),
        ("5 dong ho", 5),
        ("40 lượt người", 40),
        ("1.250 hộ", 1250),
        ("  42  ", 42),
        ("42.", 42),
        ("42!", 42),
        ("1,0", 1),
        ("1.250,00", 1250),
        ("-0", 0),
        (str(MAX_VALUE), MAX_VALUE),
    ],
)
def test_parse_integer(text: str, expected: int) -> None:
    assert parse_integer(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("\n\t", "empty"),
        ("abc", "not_a_number"),
        ("😀", "not_a_number"),
        ("mười", "not_a_number"),
        ("...", "not_a_number"),
        ("-", "not_a_number"),
        ("k0", "not_a_number"),
        ("k", "not_a_number"),
        ("12 3", "not_a_number"),
        ("1.2.3", "not_a_number"),
        ("1234.567", "not_a_number"),
        ("1,250", "not_a_number"),  # 1.25 or 1250? refuse rather than guess
        ("5tr", "not_a_number"),  # money is not a count
        ("1,5", "not_whole"),
        ("1.25", "not_whole"),
        ("12.5", "not_whole"),
        ("0,5", "not_whole"),
        ("1.250,5", "not_whole"),
        ("-3", "negative"),
        ("- 3", "negative"),
        ("−3", "negative"),
        ("âm 3", "negative"),
        ("am 3", "negative"),
        ("-1.250 hộ", "negative"),
        (str(MAX_VALUE + 1), "too_large"),
        ("1" + "0" * 40, "too_large"),
        ("9" * 10_000, "too_large"),
    ],
)
def test_parse_integer_errors(text: str, code: str) -> None:
    assert code_of(parse_integer, text) == code


@PROPERTY
@given(st.integers(min_value=0, max_value=10**12))
def test_integer_round_trips_vietnamese_format(n: int) -> None:
    assert parse_integer(vi(n)) == n
    assert parse_integer(str(n)) == n


@PROPERTY
@given(st.integers(min_value=0, max_value=10**12))
def test_integer_space_grouping(n: int) -> None:
    assert parse_integer(f"{n:,}".replace(",", " ")) == n


@QUICK
@given(st.integers(min_value=1, max_value=10**12))
def test_integer_negative(n: int) -> None:
    assert code_of(parse_integer, f"-{vi(n)}") == "negative"
    assert code_of(parse_integer, f"âm {n}") == "negative"


@QUICK
@given(st.integers(min_value=MAX_VALUE + 1, max_value=10**30))
def test_integer_too_large(n: int) -> None:
    assert code_of(parse_integer, str(n)) == "too_large"
    assert code_of(parse_integer, f"{n:,}".replace(",", ".")) == "too_large"


@QUICK
@given(
    st.integers(min_value=0, max_value=10**6),
    st.text(alphabet="0123456789", min_size=1, max_size=6).filter(
        lambda d: d.strip("0") != "" and len(d) != 3
    ),
)
def test_integer_decimal_comma_is_not_whole(whole: int, decimals: str) -> None:
    assert code_of(parse_integer, f"{whole},{decimals}") == "not_whole"


# ------------------------------------------------------------------------------ parse_money


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500k", 500_000),
        ("500K", 500_000),
        ("500 k", 500_000),
        ("500 nghìn", 500_000),
        ("500 ngàn", 500_000),
        ("500 nghin", 500_000),
        ("500 ngan", 500_000),
        ("500 nghìn đồng", 500_000),
        ("5tr", 5_000_000),
        ("5 tr", 5_000_000),
        ("5TR", 5_000_000),
        ("5 triệu", 5_000_000),
        ("5 trieu", 5_000_000),
        ("5tr đồng", 5_000_000),
        ("5 triệu đồng", 5_000_000),
        ("5tr.", 5_000_000),
        ("2tr5", 2_500_000),
        ("2 triệu 5", 2_500_000),
        ("2tr500", 2_500_000),
        ("2tr50", 2_500_000),
        ("2tr05", 2_050_000),
        ("2tr250", 2_250_000),
        ("2tr500000", 2_500_000),
        ("2 triệu 500.000", 2_500_000),
        ("2 triệu 500 000", 2_500_000),
        ("0tr5", 500_000),
        ("1tr2", 1_200_000),
        ("1,2 triệu", 1_200_000),
        ("1,25 triệu", 1_250_000),
        ("1.5 triệu", 1_500_000),
        ("1.25 triệu", 1_250_000),
        ("0,5 triệu", 500_000),
        ("1 tỷ", 1_000_000_000),
        ("1 ty", 1_000_000_000),
        ("1 tỉ", 1_000_000_000),
        ("1tỷ", 1_000_000_000),
        ("1tỷ2", 1_200_000_000),
        ("1 tỷ 2", 1_200_000_000),
        ("1,5 tỷ", 1_500_000_000),
        ("1 tỷ 200 triệu", 1_200_000_000),
        ("1 tỷ 200 triệu 500 nghìn", 1_200_500_000),
        ("1 triệu 200 nghìn", 1_200_000),
        ("1tr200k", 1_200_000),
        ("2 triệu 5 nghìn", 2_005_000),
        ("5k5", 5_500),
        ("1.250 triệu", 1_250_000_000),  # the dot groups thousands: 1250 million
        ("1.200.000đ", 1_200_000),
        ("1.200.000 đ", 1_200_000),
        ("1.200.000₫", 1_200_000),
        ("1.200.000 VNĐ", 1_200_000),
        ("1.200.000 vnđ", 1_200_000),
        ("1.200.000 vnd", 1_200_000),
        ("1.200.000 VND", 1_200_000),
        ("1.200.000 đồng", 1_200_000),
        ("1.200.000 dong", 1_200_000),
        ("VNĐ 1.200.000", 1_200_000),
        ("1 200 000", 1_200_000),
        ("1200000", 1_200_000),
        ("1.200.000,00", 1_200_000),
        ("1,2345 triệu", 1_234_500),
        ("không", 0),
        ("khong", 0),
        ("ko", 0),
        ("không có", 0),
        ("không đồng", 0),
        ("0", 0),
        ("0đ", 0),
        ("0 đồng", 0),
        ("1000000 tỷ", MAX_VALUE),
        # English mode suggests these
        ("none", 0),
        ("None", 0),
        ("zero", 0),
        ("2.5 million", 2_500_000),
        ("2.5m", 2_500_000),
        ("1,200,000", 1_200_000),
        ("1 billion 200 million", 1_200_000_000),
        ("1bn", 1_000_000_000),
    ],
)
def test_parse_money(text: str, expected: int) -> None:
    assert parse_money(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("abc", "not_a_number"),
        ("😀", "not_a_number"),
        ("năm trăm nghìn", "not_a_number"),
        ("k", "not_a_number"),
        ("tr", "not_a_number"),
        ("triệu", "not_a_number"),
        ("đ", "not_a_number"),
        ("VNĐ", "not_a_number"),
        ("-", "not_a_number"),
        ("5ko", "not_a_number"),
        ("5 tien", "not_a_number"),
        ("5 triệu triệu", "not_a_number"),
        ("5 nghìn 2 triệu", "not_a_number"),  # units must go down
        ("1 tỷ 1500 triệu", "not_a_number"),  # 1500 million does not fit under a billion
        ("2tr5000", "not_a_number"),  # 2.5 million or 2,005,000? refuse
        ("1,5tr5", "not_a_number"),
        ("1,5 tỷ 200 triệu", "not_a_number"),
        ("1,250 triệu", "not_a_number"),  # 1.25 million or 1250 million? refuse
        ("5 5", "not_a_number"),
        ("1,5", "not_whole"),
        ("1.5", "not_whole"),
        ("1.200.000,5đ", "not_whole"),
        ("1,2345678 triệu", "not_whole"),
        ("-500k", "negative"),
        ("âm 5 triệu", "negative"),
        ("-1.200.000đ", "negative"),
        ("1000001 tỷ", "too_large"),
        ("2000000000000000", "too_large"),
        ("9" * 10_000 + "đ", "too_large"),
    ],
)
def test_parse_money_errors(text: str, code: str) -> None:
    assert code_of(parse_money, text) == code


@PROPERTY
@given(st.integers(min_value=0, max_value=10**12))
def test_money_round_trips_vietnamese_format(n: int) -> None:
    assert parse_money(vi(n)) == n
    assert parse_money(str(n)) == n


@PROPERTY
@given(
    st.integers(min_value=0, max_value=10**12),
    st.sampled_from(["đ", " đ", " VNĐ", "VNĐ", " vnd", " đồng", " dong", "₫"]),
)
def test_money_with_currency_suffix(n: int, suffix: str) -> None:
    assert parse_money(vi(n) + suffix) == n


@PROPERTY
@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["k", "K", " k", " nghìn"]))
def test_money_thousands(n: int, unit: str) -> None:
    assert parse_money(f"{n}{unit}") == n * 1000


@PROPERTY
@given(
    st.integers(min_value=0, max_value=999),
    st.text(alphabet="0123456789", min_size=1, max_size=3),
    st.sampled_from(["tr", "TR", " triệu ", " trieu ", "tr "]),
)
def test_money_millions_with_tail(a: int, b: str, unit: str) -> None:
    # The digits after the unit are the leading digits of the remainder: "2tr05" = 2.05 million.
    assert parse_money(f"{a}{unit}{b}") == a * 1_000_000 + int(b.ljust(3, "0")) * 1000


@QUICK
@given(
    st.integers(min_value=0, max_value=999),
    st.text(alphabet="0123456789", min_size=1, max_size=3),
)
def test_money_billions_with_tail(a: int, b: str) -> None:
    assert parse_money(f"{a}tỷ{b}") == a * 10**9 + int(b.ljust(3, "0")) * 10**6


@QUICK
@given(
    st.integers(min_value=0, max_value=999),
    st.integers(min_value=0, max_value=999),
    st.integers(min_value=0, max_value=999),
)
def test_money_compound_units(ty: int, trieu: int, nghin: int) -> None:
    expected = ty * 10**9 + trieu * 10**6 + nghin * 1000
    assert parse_money(f"{ty} tỷ {trieu} triệu {nghin} nghìn") == expected
    assert parse_money(f"{ty}ty{trieu}tr{nghin}k") == expected


@QUICK
@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=99))
def test_money_decimal_before_unit(whole: int, hundredths: int) -> None:
    expected = whole * 1_000_000 + hundredths * 10_000
    assert parse_money(f"{whole},{hundredths:02d} triệu") == expected
    assert parse_money(f"{whole}.{hundredths:02d} triệu") == expected


@QUICK
@given(st.integers(min_value=1, max_value=10**12))
def test_money_negative(n: int) -> None:
    assert code_of(parse_money, f"-{vi(n)}đ") == "negative"


# ------------------------------------------------------------------------------ robustness

PARSERS: list[Callable[[str], int]] = [parse_integer, parse_money]
long_text = st.builds(
    lambda piece, times: (piece * times)[:10_000],
    st.text(min_size=1, max_size=12),
    st.integers(min_value=1, max_value=10_000),
)


@PROPERTY
@given(st.text().filter(lambda t: not any("0" <= ch <= "9" for ch in t)))
def test_text_without_digits_is_an_error_or_a_zero_word(text: str) -> None:
    for parser in PARSERS:
        try:
            value = parser(text)
        except ParseError as err:
            assert err.code in CODES
        else:
            assert value == 0
            assert "k" in fold(text) or "ne" in fold(text) or "ze" in fold(text)  # only không/ko, none, zero


@pytest.mark.parametrize(
    "text", ["abc", "😀", "mười hai", "ok", "k", "tr", "đ", "!!!", "hộ", "xyz đồng", "có"]
)
def test_known_words_without_digits_raise(text: str) -> None:
    for parser in PARSERS:
        with pytest.raises(ParseError):
            parser(text)


@PROPERTY
@given(st.one_of(st.text(), long_text))
def test_parsers_raise_only_parse_error(text: str) -> None:
    for parser in PARSERS:
        try:
            value = parser(text)
        except ParseError as err:
            assert err.code in CODES
        else:
            assert isinstance(value, int)
            assert 0 <= value <= MAX_VALUE
    try:
        parse_date(text, TODAY)
    except ParseError as err:
        assert err.code in {"empty", "bad_date"}
    assert parse_yes_no(text) in (True, False, None)


numberish = st.text(alphabet="0123456789.,- kđtrỷiệunghìnâm₫VNĐ", max_size=30)


@PROPERTY
@given(numberish)
def test_number_like_text_raises_only_parse_error(text: str) -> None:
    for parser in PARSERS:
        try:
            value = parser(text)
        except ParseError:
            continue
        assert 0 <= value <= MAX_VALUE


@pytest.mark.parametrize(
    "text",
    [
        "9" * 10_000,
        "1" + "0" * 9_999,
        "0" * 9_999 + "1",
        "1," + "5" * 9_998,
        "1." * 5_000,
        "1 " * 5_000,
        "😀" * 10_000,
        "a" * 10_000,
        "." * 9_999 + "x",
        "1k" * 5_000,
        "-" * 9_999 + "1",
        "\u0300" * 10_000,
    ],
)
def test_long_inputs(text: str) -> None:
    for parser in PARSERS:
        try:
            parser(text)
        except ParseError as err:
            assert err.code in CODES
    with pytest.raises(ParseError):
        parse_date(text, TODAY)


# ------------------------------------------------------------------------------ parse_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5/10/2026", datetime.date(2026, 10, 5)),
        ("05/10/2026", datetime.date(2026, 10, 5)),
        ("5-10-2026", datetime.date(2026, 10, 5)),
        ("5.10.2026", datetime.date(2026, 10, 5)),
        ("5 / 10 / 2026", datetime.date(2026, 10, 5)),
        ("5/10", datetime.date(2026, 10, 5)),
        ("05/10", datetime.date(2026, 10, 5)),
        ("5-10", datetime.date(2026, 10, 5)),
        ("5.10", datetime.date(2026, 10, 5)),
        ("5/10/26", datetime.date(2026, 10, 5)),
        ("1/2/25", datetime.date(2025, 2, 1)),
        ("2026-10-05", datetime.date(2026, 10, 5)),
        ("2026-1-5", datetime.date(2026, 1, 5)),
        ("29/2/2028", datetime.date(2028, 2, 29)),
        ("ngày 5/10/2026", datetime.date(2026, 10, 5)),
        ("ngày 5 tháng 10 năm 2026", datetime.date(2026, 10, 5)),
        ("5 tháng 10", datetime.date(2026, 10, 5)),
        ("5/10/2026.", datetime.date(2026, 10, 5)),
        ("hôm nay", TODAY),
        ("Hôm nay", TODAY),
        ("hom nay", TODAY),
        ("today", TODAY),
        ("Today", TODAY),
        ("hôm qua", datetime.date(2026, 5, 19)),
        ("hom qua", datetime.date(2026, 5, 19)),
        ("yesterday", datetime.date(2026, 5, 19)),
    ],
)
def test_parse_date(text: str, expected: datetime.date) -> None:
    assert parse_date(text, TODAY) == expected


def test_parse_date_yesterday_crosses_year() -> None:
    assert parse_date("hôm qua", datetime.date(2026, 1, 1)) == datetime.date(2025, 12, 31)


@pytest.mark.parametrize(
    "text",
    [
        "32/1",
        "0/1",
        "1/13",
        "1/0",
        "29/2/2026",
        "31/4/2026",
        "abc",
        "5/10/202",
        "5/10-2026",
        "2026-13-01",
        "10/2026",
        "5",
        "hôm",
        "😀",
    ],
)
def test_parse_date_bad(text: str) -> None:
    assert code_of(parse_date_today, text) == "bad_date"


def test_parse_date_empty() -> None:
    assert code_of(parse_date_today, "  ") == "empty"


@PROPERTY
@given(st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2099, 12, 31)))
def test_date_round_trips(d: datetime.date) -> None:
    assert parse_date(f"{d.day}/{d.month}/{d.year}", TODAY) == d
    assert parse_date(f"{d.day:02d}-{d.month:02d}-{d.year % 100:02d}", TODAY) == d
    assert parse_date(f"{d.day}.{d.month}.{d.year}", TODAY) == d
    assert parse_date(d.isoformat(), TODAY) == d


@QUICK
@given(st.dates(min_value=datetime.date(2000, 1, 2), max_value=datetime.date(2099, 12, 31)))
def test_relative_dates(today: datetime.date) -> None:
    assert parse_date("hôm nay", today) == today
    assert parse_date("hôm qua", today) == today - datetime.timedelta(days=1)
    this_year = datetime.date(today.year, 10, 5)
    assert parse_date("5/10", today) == this_year


# ------------------------------------------------------------------------------ parse_yes_no

YES_WORDS = [
    "có",
    "co",
    "đồng ý",
    "dong y",
    "ok",
    "oke",
    "yes",
    "y",
    "đúng",
    "dung",
    "ừ",
    "u",
    "vâng",
    "vang",
    "được",
    "duoc",
    "xác nhận",
    "xac nhan",
]
NO_WORDS = ["không", "khong", "ko", "k", "no", "n", "sai", "chưa", "chua"]


@pytest.mark.parametrize("text", YES_WORDS)
def test_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize("text", NO_WORDS)
def test_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Có!", True),
        ("CÓ!!!", True),
        ("  Đồng   Ý. ", True),
        ("OK", True),
        ("Vâng ạ", True),
        ("dạ có", True),
        ("đúng rồi", True),
        ("được rồi", True),
        ("Không.", False),
        ("không ạ", False),
        ("dạ không", False),
        ("dạ không ạ", False),
        ("dạ", True),
        ("Chưa!", False),
        ("1", None),
        ("0", None),
        ("", None),
        ("   ", None),
        ("!!!", None),
        ("có lẽ", None),
        ("hủy", None),
        ("5tr", None),
        ("abc", None),
    ],
)
def test_yes_no_variants(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


@QUICK
@given(
    st.sampled_from(YES_WORDS + NO_WORDS),
    st.sampled_from(["", "!", ".", "!!", " .", "?"]),
    st.booleans(),
)
def test_yes_no_ignores_case_and_punctuation(word: str, tail: str, upper: bool) -> None:
    expected = word in YES_WORDS
    text = (word.upper() if upper else word) + tail
    assert parse_yes_no(text) is expected
