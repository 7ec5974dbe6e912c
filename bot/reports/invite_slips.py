"""Printable invite slips: an A4 PDF, eight slips a page with cut lines, one slip per village.

A commune prints the codes of its villages and hands each village officer their slip. A slip
carries the village, the commune, the officer's name when the upload gave one, the code as the
chat shows it (ABCD-EFGH), its last valid day, and two ways in:

* Telegram: a QR code of https://t.me/<bot>?start=<CODE>. Opening it sends "/start CODE" to the
  bot, which asks for consent and then redeems the code: nothing to type.
* Zalo: the Zalo Bot Platform has no deep link that carries a payload. Its API reference
  (https://bot.zaloplatforms.com/docs: getMe, getUpdates, setWebhook, sendMessage, sendPhoto,
  sendSticker, sendChatAction, the webhook's message events) knows no start parameter, and a bot
  is reached by searching its name in Zalo (docs/channels.md, "Connect Zalo"). So the slip prints
  the bot's Zalo name, "send /start, then type the code", and, when the operator has a link to
  the bot's Zalo page (ZALO_BOT_LINK, e.g. a zalo.me link from Zalo Bot Creator), a QR code of
  that link, without the code.

ReportLab draws the text with DejaVu Sans, which has every Vietnamese glyph and ships with
matplotlib (no system font needed); QR codes come from segno and are drawn as vector runs, so
they stay sharp at any printer resolution.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from bot.domain.i18n import Translator
from bot.domain.invite_codes import format_code, telegram_start_link

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

CONTENT_TYPE = "application/pdf"
SLIPS_PER_PAGE = 8
COLUMNS = 2
ROWS = SLIPS_PER_PAGE // COLUMNS
_FONT = "KhDejaVuSans"
_FONT_BOLD = "KhDejaVuSans-Bold"
_FONT_MONO = "KhDejaVuSansMono-Bold"


@dataclass(frozen=True, slots=True)
class Slip:
    village: str  # as people call it: "Thôn Nà Rụa"
    commune: str
    code: str  # the stored form, "ABCDEFGH"
    expires: date  # the last day the code works
    invitee: str | None = None  # the officer's name, when the commune gave one


@dataclass(frozen=True, slots=True)
class BotLinks:
    """How people reach the bot: from the settings (telegram_bot_username, zalo_bot_name, zalo_bot_link)."""

    telegram_username: str | None = None
    zalo_name: str | None = None
    zalo_link: str | None = None


@cache
def _fonts() -> None:
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(_FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(_FONT_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFont(TTFont(_FONT_MONO, str(ttf / "DejaVuSansMono-Bold.ttf")))


def render_slips(slips: Sequence[Slip], t: Translator, links: BotLinks) -> bytes:
    """The PDF: ceil(len(slips) / 8) pages (one page saying so when there is no slip)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    _fonts()
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle(t("Invite slips"))
    canvas.setCreator("Khuyến học Bot")
    page_w, page_h = A4
    margin = 8 * _MM
    slip_w = (page_w - 2 * margin) / COLUMNS
    slip_h = (page_h - 2 * margin) / ROWS
    if not slips:
        canvas.setFont(_FONT, 12)
        canvas.drawString(margin, page_h - margin - 12, t("No open codes."))
        canvas.showPage()
    pages = math.ceil(len(slips) / SLIPS_PER_PAGE)
    for page in range(pages):
        on_page = slips[page * SLIPS_PER_PAGE : (page + 1) * SLIPS_PER_PAGE]
        _cut_lines(canvas, margin, page_w, page_h, slip_w, slip_h)
        for i, slip in enumerate(on_page):
            col, row = i % COLUMNS, i // COLUMNS
            x = margin + col * slip_w
            y = page_h - margin - (row + 1) * slip_h
            _slip(canvas, slip, t, links, x, y, slip_w, slip_h)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


_MM = 72 / 25.4  # points per millimetre


def _cut_lines(canvas: Canvas, margin: float, page_w: float, page_h: float, w: float, h: float) -> None:
    canvas.saveState()
    canvas.setDash(3, 3)
    canvas.setLineWidth(0.4)
    canvas.setStrokeGray(0.55)
    for col in range(COLUMNS + 1):
        x = margin + col * w
        canvas.line(x, margin, x, page_h - margin)
    for row in range(ROWS + 1):
        y = margin + row * h
        canvas.line(margin, y, page_w - margin, y)
    canvas.restoreState()


def _slip(
    canvas: Canvas, slip: Slip, t: Translator, links: BotLinks, x: float, y: float, w: float, h: float
) -> None:
    from reportlab.lib.utils import simpleSplit

    pad = 4 * _MM
    qr_size = 23 * _MM
    text_w = w - 2 * pad - qr_size - 3 * _MM
    top = y + h - pad

    def lines(text: str, font: str, size: float, max_lines: int) -> None:
        nonlocal top
        split = simpleSplit(text, font, size, text_w)
        if len(split) > max_lines:  # a long name: what fits, and a mark that more was cut
            split = [*split[: max_lines - 1], split[max_lines - 1].rstrip() + "…"]
        for line in split:
            top -= size * 1.25
            canvas.setFont(font, size)
            canvas.drawString(x + pad, top, line)

    canvas.setFillGray(0.3)
    lines(t("Invitation to report on Khuyến học Bot"), _FONT, 7, 2)
    canvas.setFillGray(0)
    top -= 1.5
    lines(slip.village, _FONT_BOLD, 11, 2)
    lines(slip.commune, _FONT, 8.5, 2)
    if slip.invitee:
        lines(t("For: {name}", name=slip.invitee), _FONT, 8.5, 1)
    top -= 3
    lines(t("Invite code"), _FONT, 7, 1)
    top -= 3
    lines(format_code(slip.code), _FONT_MONO, 17, 1)
    top -= 2
    lines(t("Valid until {date}", date=t.date(slip.expires)), _FONT, 7, 1)
    top -= 2
    canvas.setFillGray(0.2)
    how: list[str] = []
    if links.telegram_username:
        how.append(t("Telegram: scan the code, press Start, then agree."))
    if links.zalo_name:
        how.append(t("Zalo: find “{name}”, send /start, then type the code.", name=links.zalo_name))
    if not how:
        how.append(t("Send /start to the bot, then type the code."))
    for text in how:
        lines(text, _FONT, 6.5, 3)
    canvas.setFillGray(0)

    qr_x = x + w - pad - qr_size
    qr_top = y + h - pad
    codes: list[tuple[str, str]] = []
    if links.telegram_username:
        codes.append((telegram_start_link(links.telegram_username, slip.code), "Telegram"))
    if links.zalo_link:
        codes.append((links.zalo_link, "Zalo"))
    for url, caption in codes:
        qr_top -= qr_size
        if url == links.zalo_link:  # the same on every slip: drawn once, placed on each
            name = "zalo_qr"
            if not canvas.hasForm(name):
                canvas.beginForm(name)
                _qr(canvas, url, 0, 0, qr_size)
                canvas.endForm()
            canvas.saveState()
            canvas.translate(qr_x, qr_top)
            canvas.doForm(name)
            canvas.restoreState()
        else:
            _qr(canvas, url, qr_x, qr_top, qr_size)
        canvas.setFont(_FONT, 6.5)
        canvas.drawCentredString(qr_x + qr_size / 2, qr_top - 7, caption)
        qr_top -= 10


def _qr(canvas: Canvas, data: str, x: float, y: float, size: float) -> None:
    """A QR code of `data`, `size` wide with its quiet zone, its lower left corner at (x, y);
    each row's dark modules are drawn as runs (one rectangle per run)."""
    import segno

    qr = segno.make(data, error="m", micro=False)
    border = 2  # modules; the slip's white space around adds to it
    n = len(qr.matrix) + 2 * border
    module = size / n
    path = canvas.beginPath()
    for r, row in enumerate(qr.matrix):
        c = 0
        width = len(row)
        while c < width:
            if row[c]:
                start = c
                while c < width and row[c]:
                    c += 1
                path.rect(
                    x + (start + border) * module,
                    y + size - (r + border + 1) * module,
                    (c - start) * module,
                    module,
                )
            else:
                c += 1
    canvas.drawPath(path, stroke=0, fill=1)
