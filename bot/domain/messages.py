"""Transport-neutral messages: what a channel hands the service and what it gets back.

Channel adapters translate platform payloads into `Incoming` and render `Reply` objects with
the channel's own capabilities (buttons, numbered lists, message length limits).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.domain.text import clean_text

if TYPE_CHECKING:
    from storage.readonly import ReadOnlyUnitOfWork


class Kind(StrEnum):
    """What the user sent. Anything but text and option choices gets a polite refusal."""

    TEXT = "text"
    OPTION = "option"  # a button press; `option_id` says which
    IMAGE = "image"
    STICKER = "sticker"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message from one person on one channel."""

    channel: str  # "webchat", "telegram", "zalo"
    external_id: str  # the person's id on that channel
    kind: Kind = Kind.TEXT
    text: str = ""
    option_id: str | None = None
    update_id: str | None = None  # the platform's id of this delivery, for once-only processing
    display_name: str | None = None
    # The client's network address where the channel sees the person's own request (the web
    # chat), for limits per address; None for platform webhooks.
    client_address: str | None = None

    def __post_init__(self) -> None:
        # Cleaned here, where every channel's message is made: a lone surrogate or a NUL byte
        # would otherwise fail in the database or a renderer, long after the channel let it in.
        for name in ("external_id", "text", "option_id", "update_id", "display_name"):
            value = getattr(self, name)
            if value is not None and value != (cleaned := clean_text(value)):
                object.__setattr__(self, name, cleaned)


@dataclass(frozen=True, slots=True)
class Option:
    """A choice offered to the user: a button where the channel has them, a numbered line where not."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    # False: never kept on the server for downloading again (bot/services/files.py), as a
    # personal data export, which the person downloads at once or asks for again.
    keep: bool = True


@dataclass(slots=True)
class Reply:
    """One message from the bot."""

    text: str
    options: list[Option] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # False when the answer expected is itself a number: channels without buttons must then
    # list the options as words to type, not as "reply 1, 2, 3".
    numbered: bool = True
    # Work done after the step's unit of work has committed, through a read-only one (a
    # compiled report: DESIGN.md boundary 12). Its replies take this reply's place; `text` is
    # said instead when the work fails (bot.services.later).
    later: Later | None = None


@dataclass(slots=True)
class Handled:
    """What handling one message gives the channel: the replies, and the language to render
    them in (the person's, as it stands after the step).

    For a channel that queues what it cannot deliver at once (bot/channels/ratelimit.py), the
    step also says who the person is (`contact_id`; None when the step failed before that was
    known for sure) and whether earlier replies to them still wait in the outbox, read in the
    step's own transaction: the channel then needs no read of its own.
    """

    replies: list[Reply]
    locale: str
    contact_id: int | None = None
    replies_waiting: bool = False


Later = Callable[["ReadOnlyUnitOfWork"], Awaitable[list[Reply]]]
