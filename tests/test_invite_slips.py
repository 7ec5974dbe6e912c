"""The printable invite slips (bot/reports/invite_slips.py): pages, words and QR codes.

Each page is rendered as a picture (pypdfium2) and its QR codes read back (zxing-cpp), as a phone
camera would: every Telegram code opens the bot with that slip's code, `/start ABCDEFGH`.
"""

from __future__ import annotations

import math
from datetime import date

import pypdfium2 as pdfium
import pytest
import zxingcpp

from bot.domain.i18n import translator
from bot.domain.invite_codes import ALPHABET, telegram_start_link
from bot.reports.invite_slips import SLIPS_PER_PAGE, BotLinks, Slip, render_slips

LINKS = BotLinks("KhuyenHocCaoBangBot", "Bot Khuyến học Cao Bằng", "https://zalo.me/1234567890123456789")


def slips(n: int) -> list[Slip]:
    codes = ["".join(ALPHABET[(i * 7 + k * 3) % len(ALPHABET)] for k in range(8)) for i in range(n)]
    return [
        Slip(
            f"Thôn Nà Rụa {i}",
            "Phường Thục Phán",
            code,
            date(2026, 12, 31),
            "Nguyễn Thị Hường" if i % 2 else None,
        )
        for i, code in enumerate(codes)
    ]


def pages(pdf: bytes) -> list[tuple[set[str], list[str], str]]:
    """Per page: the decoded QR texts, all of them (with repeats), and the page's text."""
    doc = pdfium.PdfDocument(pdf)
    found = []
    for page in doc:
        image = page.render(scale=2.5).to_pil()
        texts = [r.text for r in zxingcpp.read_barcodes(image)]
        found.append((set(texts), texts, page.get_textpage().get_text_range()))
    return found


@pytest.mark.parametrize("n", [1, SLIPS_PER_PAGE, SLIPS_PER_PAGE + 1, 2 * SLIPS_PER_PAGE + 3])
def test_one_slip_per_village_eight_to_a_page_each_qr_opens_the_bot_with_its_code(n: int) -> None:
    given = slips(n)
    read = pages(render_slips(given, translator("vi"), LINKS))
    assert len(read) == math.ceil(n / SLIPS_PER_PAGE)
    for number, (links, texts, _) in enumerate(read):
        on_page = given[number * SLIPS_PER_PAGE : (number + 1) * SLIPS_PER_PAGE]
        expected = {f"https://t.me/KhuyenHocCaoBangBot?start={s.code}" for s in on_page}
        assert links == expected | {LINKS.zalo_link}
        assert len(texts) == 2 * len(on_page)  # a Telegram and a Zalo code on every slip


def test_a_slip_reads_in_the_staffs_language_with_the_code_as_the_chat_shows_it() -> None:
    given = [Slip("Thôn Nà Rụa", "Phường Thục Phán", "ABCDEFGH", date(2026, 3, 16), "Nguyễn Thị Hường")]
    ((_, _, vi),) = pages(render_slips(given, translator("vi"), LINKS))
    for words in ("Thôn Nà Rụa", "Phường Thục Phán", "ABCD-EFGH", "Nguyễn Thị Hường", "16/03/2026"):
        assert words in vi, words
    assert "Bot Khuyến học Cao Bằng" in vi and "Mã mời" in vi
    ((_, _, en),) = pages(render_slips(given, translator("en"), LINKS))
    assert "Invite code" in en and "Mã mời" not in en


def test_without_a_telegram_username_or_zalo_link_the_slip_says_what_to_type() -> None:
    given = slips(2)
    ((links, _, text),) = pages(render_slips(given, translator("vi"), BotLinks()))
    assert links == set()
    assert "gõ mã mời" in text and given[0].code[:4] in text
    ((links, _, _),) = pages(render_slips(given, translator("vi"), BotLinks("KhuyenHocBot")))
    assert links == {telegram_start_link("KhuyenHocBot", s.code) for s in given}


def test_no_codes_gives_one_page_saying_so() -> None:
    ((links, _, text),) = pages(render_slips([], translator("vi"), LINKS))
    assert links == set() and "Không có mã mời nào" in text


def test_the_deep_link_carries_only_what_telegram_accepts() -> None:
    assert telegram_start_link("@KhuyenHocBot", "abcd-efgh") == "https://t.me/KhuyenHocBot?start=ABCDEFGH"
    with pytest.raises(ValueError):
        telegram_start_link("KhuyenHocBot", "ABCD EFGH/../x")
