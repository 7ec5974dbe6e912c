"""Picking an option by typing it (issue 10: "gửi" at the summary was refused), and texts cut
at a word boundary. The engine's one mechanism, `chosen`, serves every flow; the transcripts
chat_polish_*.yaml show it in the dialogues."""

from __future__ import annotations

from datetime import date

import pytest

from bot.conversations.engine import FlowState, ask, chosen, label_words
from bot.domain.messages import Incoming, Kind, Option
from bot.domain.parsing import date_example
from bot.domain.text import shorten

SUMMARY = [
    Option("confirm", "Gửi báo cáo"),
    Option("edit", "Sửa một câu trả lời"),
    Option("cancel", "Hủy"),
]


def _pick(options: list[Option], typed: str, *, numbered: bool = True) -> str | None:
    state = FlowState(phase="x")
    ask(state, "?", options, numbered=numbered)
    return chosen(state, Incoming("test", "u1", Kind.TEXT, text=typed))


@pytest.mark.parametrize(
    ("typed", "picked"),
    [
        ("Gửi báo cáo", "confirm"),  # the whole label
        ("gui bao cao", "confirm"),  # without diacritics
        ("GỬI", "confirm"),  # its first word, any case
        ("gui", "confirm"),
        ("  gửi!  ", "confirm"),  # punctuation around it
        ("Sửa", "edit"),
        ("sua mot", "edit"),
        ("huy", "cancel"),
        ("2", "edit"),  # by number
        ("gu", None),  # part of a word is no word
        ("bao cao", None),  # words inside a label, not its start
        ("gui bao cao ngay", None),  # more than the label
        ("4", None),
        ("", None),
    ],
)
def test_a_typed_label_picks_its_option(typed: str, picked: str | None) -> None:
    assert _pick(SUMMARY, typed) == picked


def test_a_start_shared_by_two_labels_picks_neither() -> None:
    options = [Option("a", "Đã đăng ký"), Option("b", "Đã được công nhận"), Option("c", "Đã")]
    assert _pick(options, "da dang") == "a"
    assert _pick(options, "da") == "c"  # a whole label wins over the starts of others
    assert _pick(options[:2], "da") is None


def test_a_typed_number_is_an_answer_not_the_start_of_a_label() -> None:
    options = [Option("keep", "Giữ nguyên: 2.100"), Option("p", "2026 (mặc định)")]
    assert _pick(options, "giu nguyen") == "keep"
    assert _pick(options, "Giữ nguyên: 2.100") == "keep"
    assert _pick(options, "2026", numbered=False) is None  # the number 2026, typed as an answer
    assert _pick(options, "2", numbered=False) is None


def test_marks_on_labels_are_not_words() -> None:
    assert label_words("✓ Kỹ năng số, an toàn mạng") == ("ky", "nang", "so", "an", "toan", "mang")
    assert _pick([Option("t", "✓ Kỹ năng số, an toàn mạng"), Option("s", "Lưu")], "ky nang so") == "t"


def test_a_button_press_is_taken_as_it_is() -> None:
    state = FlowState(phase="x")
    ask(state, "?", SUMMARY)
    assert chosen(state, Incoming("test", "u1", Kind.OPTION, option_id="edit")) == "edit"
    assert chosen(state, Incoming("test", "u1", Kind.OPTION, option_id="gone")) is None


@pytest.mark.parametrize(
    ("text", "limit", "shortened"),
    [
        ("Họp chi hội thôn Nà Rụa", 100, "Họp chi hội thôn Nà Rụa"),
        ("Họp chi hội thôn Nà Rụa", 23, "Họp chi hội thôn Nà Rụa"),
        ("Họp chi hội thôn Nà Rụa", 22, "Họp chi hội thôn Nà…"),
        ("Họp chi hội thôn Nà Rụa", 14, "Họp chi hội…"),
        ("Họp chi hội, thôn Nà Rụa", 13, "Họp chi hội…"),  # no comma before the ellipsis
        ("Họp chi hội thôn", 12, "Họp chi hội…"),  # the cut falls on a space
        ("Khuyếnhọckhuyếntài", 10, "Khuyếnhọc…"),  # one long word: cut inside, nothing else fits
        ("dòng một\ndòng hai dài", 14, "dòng một\ndòng…"),
        ("  có khoảng trắng  ", 100, "có khoảng trắng"),
    ],
)
def test_shorten_cuts_at_a_word_with_an_ellipsis(text: str, limit: int, shortened: str) -> None:
    assert shorten(text, limit) == shortened
    assert len(shorten(text, limit)) <= limit


def test_a_date_example_is_typed_day_first() -> None:
    assert date_example(date(2026, 11, 2)) == "02/11/2026"
