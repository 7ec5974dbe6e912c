"""What a Zalo update must look like before the channel reads it (webhook and polling).

Once the secret header is right, the body is still only data: a JSON array, deep nesting or a
list where the chat id belongs (it was stored as the text "['…']") must get a 400 on the
webhook and be skipped when polled, never reach the database. The body is read as JSON with
bounded nesting (bot.channels.payload), then checked by pydantic against the fields the channel
reads; ids are strings, or numbers turned into strings, of the characters Zalo uses.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot.channels.payload import BadUpdate, load_json, reason

__all__ = ["BadUpdate", "ZaloUpdate", "parse_polled", "parse_webhook"]


def _id_text(value: Any) -> Any:
    """Zalo sends ids as strings; a whole number is accepted as its digits (never a bool)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ZaloId = Annotated[
    str, BeforeValidator(_id_text), Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
MAX_TEXT = 20_000


class _Open(BaseModel):
    """Fields the channel does not read are kept (and ignored)."""

    model_config = ConfigDict(extra="allow")


class ZaloSender(_Open):
    id: ZaloId | None = None
    display_name: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    is_bot: bool = False


class ZaloChat(_Open):
    id: ZaloId | None = None
    chat_type: str = Field(default="PRIVATE", max_length=32)


class ZaloMessage(_Open):
    message_id: ZaloId | None = None
    chat: ZaloChat | None = None
    from_: ZaloSender | None = Field(default=None, alias="from")
    text: str | None = Field(default=None, max_length=MAX_TEXT)


class ZaloUpdate(_Open):
    event_name: str | None = Field(default=None, max_length=64)
    message: ZaloMessage | None = None


class ZaloEnvelope(ZaloUpdate):
    """A body is the bare update or `{"ok": true, "result": update}` (the Zalo Bot API)."""

    result: ZaloUpdate | None = None


def _checked(update: ZaloUpdate) -> dict[str, Any] | None:
    if update.event_name is None and update.message is None:
        return None
    data = update.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data.pop("result", None)
    return data


def parse_webhook(body: bytes) -> dict[str, Any] | None:
    """The update in a webhook body as the dict the channel reads (None: a body without an
    update, answered 200 and ignored); BadUpdate when it is no Zalo update at all."""
    try:
        envelope = ZaloEnvelope.model_validate(load_json(body))
    except ValidationError as err:
        raise BadUpdate(reason(err)) from None
    if envelope.event_name is None and envelope.result is not None:
        return _checked(envelope.result)
    return _checked(envelope)


def parse_polled(update: dict[str, Any]) -> dict[str, Any]:
    """An update from getUpdates, checked as a webhook body is; BadUpdate otherwise."""
    try:
        return ZaloUpdate.model_validate(update).model_dump(mode="json", by_alias=True, exclude_unset=True)
    except ValidationError as err:
        raise BadUpdate(reason(err)) from None
