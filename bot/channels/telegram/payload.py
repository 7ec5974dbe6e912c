"""What a Telegram webhook body must look like before python-telegram-bot sees it.

Once the secret header is right, the body is still only data: a JSON array, a string, deep
nesting (Python's json module raises RecursionError) or a chat id that is no number must get a
400, never a 500. The body is read as JSON with bounded nesting (bot.channels.payload), then
checked by pydantic against the fields we read — the update kinds we asked for (ALLOWED_UPDATES),
their chats and senders — and everything else Telegram sends is kept for PTB's `Update.de_json`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.channels.payload import BadUpdate, load_json, reason

__all__ = ["BadUpdate", "TgUpdate", "parse_update"]

# Telegram ids are integers up to 52 bits; texts at most 4,096 characters (captions 1,024).
TgId = Annotated[int, Field(strict=True, ge=-(2**53), le=2**53)]
MAX_TEXT = 4096
MAX_DATA = 64  # callback data, bytes; characters are at most that


class _Open(BaseModel):
    """Fields we do not read are kept for PTB."""

    model_config = ConfigDict(extra="allow")


class TgUser(_Open):
    id: TgId
    is_bot: bool = False
    first_name: str = Field(default="", max_length=256)
    language_code: str | None = Field(default=None, max_length=35)


class TgChat(_Open):
    id: TgId
    type: str = Field(max_length=32)


class TgMessage(_Open):
    message_id: TgId
    date: TgId
    chat: TgChat
    from_: TgUser | None = Field(default=None, alias="from")
    text: str | None = Field(default=None, max_length=MAX_TEXT)


class TgCallbackQuery(_Open):
    id: str = Field(max_length=64)
    from_: TgUser = Field(alias="from")
    message: TgMessage | None = None
    data: str | None = Field(default=None, max_length=MAX_DATA)


class TgChatMember(_Open):
    user: TgUser
    status: str = Field(max_length=32)


class TgChatMemberUpdated(_Open):
    chat: TgChat
    from_: TgUser = Field(alias="from")
    date: TgId
    new_chat_member: TgChatMember


class TgUpdate(_Open):
    update_id: TgId
    message: TgMessage | None = None
    callback_query: TgCallbackQuery | None = None
    my_chat_member: TgChatMemberUpdated | None = None


def parse_update(body: bytes) -> dict[str, Any]:
    """The body, checked, as the dict PTB's `Update.de_json` takes; BadUpdate otherwise."""
    try:
        update = TgUpdate.model_validate(load_json(body))
    except ValidationError as err:
        raise BadUpdate(reason(err)) from None
    return update.model_dump(mode="json", by_alias=True, exclude_unset=True)
