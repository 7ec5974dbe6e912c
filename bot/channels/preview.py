"""What a message looks like on each channel, for the console's broadcast preview.

Nothing is drawn here that the channels do not do themselves: the parts come from the functions
their senders call (`telegram.channel.text_parts`, `zalo.channel.text_parts`,
`webchat.channel.render_reply`), so a text Zalo cuts in two shows as two bubbles, a photo Telegram
sends after the text as a picture, and a file Zalo cannot take as the note Zalo users read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.channels.render import TELEGRAM_MAX_CHARS, ZALO_MAX_CHARS
from bot.channels.telegram import channel as telegram
from bot.channels.webchat import channel as webchat
from bot.channels.zalo import channel as zalo
from bot.domain.i18n import translator
from bot.domain.messages import Reply


@dataclass(frozen=True, slots=True)
class Bubble:
    """One message as the person sees it: its text, and the pictures, files and buttons with it."""

    text: str = ""
    pictures: tuple[str, ...] = ()  # file names
    files: tuple[str, ...] = ()
    buttons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelPreview:
    channel: str  # "telegram", "zalo", "webchat"
    limit: int | None  # characters per message, when the platform has a limit
    bubbles: list[Bubble] = field(default_factory=list)


def _pictures(reply: Reply) -> tuple[str, ...]:
    return tuple(a.filename for a in reply.attachments if a.content_type.startswith("image/"))


def _files(reply: Reply) -> tuple[str, ...]:
    return tuple(a.filename for a in reply.attachments if not a.content_type.startswith("image/"))


def on_telegram(replies: list[Reply]) -> ChannelPreview:
    """TelegramSender.deliver: the text parts, buttons under the last one, then each file."""
    bubbles: list[Bubble] = []
    for reply in replies:
        parts = telegram.text_parts(reply)
        for n, part in enumerate(parts, 1):
            buttons = tuple(o.label for o in reply.options) if n == len(parts) else ()
            bubbles.append(Bubble(part, buttons=buttons))
        bubbles += [Bubble(pictures=(name,)) for name in _pictures(reply)]
        bubbles += [Bubble(files=(name,)) for name in _files(reply)]
    return ChannelPreview(telegram.CHANNEL, TELEGRAM_MAX_CHARS, bubbles)


def on_zalo(replies: list[Reply], locale: str) -> ChannelPreview:
    """ZaloSender.deliver: text only, options written out, files described, 2,000 characters."""
    t = translator(locale)
    bubbles = [Bubble(part) for reply in replies for part in zalo.text_parts(reply, t)]
    return ChannelPreview(zalo.CHANNEL, ZALO_MAX_CHARS, bubbles)


def on_webchat(replies: list[Reply]) -> ChannelPreview:
    """The web chat page: one bubble per reply (render_reply), its files shown with it."""
    bubbles = []
    for reply in replies:
        out = webchat.render_reply(reply)
        pictures = tuple(a.filename for a in out.attachments if a.content_type.startswith("image/"))
        files = tuple(a.filename for a in out.attachments if not a.content_type.startswith("image/"))
        bubbles.append(Bubble(out.text, pictures, files, tuple(o.label for o in out.options)))
    return ChannelPreview(webchat.CHANNEL, None, bubbles)


def previews(replies: list[Reply], locale: str) -> list[ChannelPreview]:
    """The same replies on every channel the bot speaks on."""
    return [on_telegram(replies), on_zalo(replies, locale), on_webchat(replies)]
