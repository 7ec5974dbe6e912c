"""The web chat channel: a page served at `/` and a small JSON API behind it.

Like every channel adapter it only translates (DESIGN.md, boundary 2): a POSTed JSON message
becomes an `Incoming`, the service's `Reply` objects become JSON the page renders as bubbles
and buttons. Pushed messages (broadcasts, reminders) wait in the outbox and the page polls them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.domain.app import App
from bot.domain.messages import Handled, Incoming, Kind, Reply
from bot.messaging.outbox import load_replies
from storage.models_secrets import WEBCHAT_ID_KEY
from storage.repositories import OutboxRepository, ReportFileRepository

log = logging.getLogger(__name__)

CHANNEL = "webchat"
MAX_TEXT = 20_000  # longer texts are cut here; the engine explains its own, lower limit
MAX_POLL_BATCH = 100
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{8,63}$"
PAGE_PATH = Path(__file__).parent / "static" / "webchat.html"

Handler = Callable[[App, Incoming], Awaitable[Handled]]


# ----------------------------------------------------------------------------- payloads


class OptionOut(BaseModel):
    id: str
    label: str


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    data: str = Field(description="The file's bytes, base64-encoded.")


class MessageOut(BaseModel):
    text: str
    options: list[OptionOut] = Field(default_factory=list)
    attachments: list[AttachmentOut] = Field(default_factory=list)


class PostedMessage(BaseModel):
    """What the page sends: typed text or the id of a pressed button."""

    model_config = ConfigDict(extra="ignore")

    client_id: Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]
    text: str | None = None
    option_id: Annotated[str | None, Field(max_length=200)] = None
    message_id: Annotated[str | None, Field(pattern=MESSAGE_ID_PATTERN)] = None


class RepliesOut(BaseModel):
    replies: list[MessageOut]


class PushedMessageOut(MessageOut):
    id: int


class PollOut(BaseModel):
    messages: list[PushedMessageOut]
    last_id: int


# ----------------------------------------------------------------------------- translation


def to_incoming(posted: PostedMessage, external_id: str) -> Incoming:
    """The page's JSON → the transport-neutral message. `external_id` is the client id as it
    is stored (`ClientIds.stored`): the person's id on this channel."""
    update_id = f"{external_id}:{posted.message_id}" if posted.message_id else None
    if posted.option_id:
        return Incoming(
            channel=CHANNEL,
            external_id=external_id,
            kind=Kind.OPTION,
            option_id=posted.option_id,
            update_id=update_id,
        )
    return Incoming(
        channel=CHANNEL,
        external_id=external_id,
        kind=Kind.TEXT,
        text=(posted.text or "")[:MAX_TEXT],
        update_id=update_id,
    )


def render_reply(reply: Reply) -> MessageOut:
    return MessageOut(
        text=reply.text,
        options=[OptionOut(id=o.id, label=o.label) for o in reply.options],
        attachments=[
            AttachmentOut(
                filename=a.filename,
                content_type=a.content_type,
                data=base64.b64encode(a.data).decode("ascii"),
            )
            for a in reply.attachments
        ],
    )


def render_pushed(message_id: int, reply: Reply) -> PushedMessageOut:
    """An outbox message, read back as a reply (bot.messaging.outbox.load_replies) → what the page renders."""
    return PushedMessageOut(id=message_id, **render_reply(reply).model_dump())


class ClientIds:
    """Web chat client ids as the database keeps them: HMAC-SHA256 under a server key, in hex.

    The client id is the web chat user's only credential, and the browser keeps it; the
    database holds only its keyed hash, looked up by equality, so reading the database file is
    not enough to act as anyone. The key is WEBCHAT_ID_SECRET, or else the one kept in the
    database (made on first use, the same for every instance): storage/models_secrets.py.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._key: bytes | None = None
        self._lock = asyncio.Lock()

    async def key(self) -> bytes:
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    self._key = (await self._load()).encode()
        return self._key

    async def _load(self) -> str:
        configured = self.app.settings.webchat_id_secret
        if configured is not None:
            return configured.get_secret_value()
        async with self.app.uow() as uow:
            key = await uow.secrets.get_or_create(
                WEBCHAT_ID_KEY, lambda: secrets.token_urlsafe(32), self.app.clock.now()
            )
            await uow.commit()
        return key

    async def stored(self, client_id: str) -> str:
        """What the database keeps for `client_id` (64 hexadecimal digits)."""
        return hmac.new(await self.key(), client_id.encode(), hashlib.sha256).hexdigest()


def short_id(client_id: str) -> str:
    """What the logs may show of a client id: never the id itself."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:8]


# ----------------------------------------------------------------------------- the page


@lru_cache(maxsize=1)
def _page() -> tuple[bytes, str]:
    """The page and a Content-Security-Policy allowing exactly its own inline script and style."""
    html = PAGE_PATH.read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'" for b in blocks
        )

    csp = (
        "default-src 'none'; "
        f"script-src {hashes('script')}; "
        f"style-src {hashes('style')}; "
        "connect-src 'self'; img-src 'self' blob: data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html.encode("utf-8"), csp


# ----------------------------------------------------------------------------- the router


def create_router(app: App, handle: Handler | None = None) -> APIRouter:
    """The web chat's routes. `handle` defaults to the app's own message handler."""
    if handle is None:
        handle = App.handle
    handler: Handler = handle
    ids = ClientIds(app)
    router = APIRouter(tags=["webchat"])

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        body, csp = _page()
        return HTMLResponse(
            body,
            headers={
                "Content-Security-Policy": csp,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )

    @router.post("/api/webchat/messages", response_model=RepliesOut)
    async def post_message(posted: PostedMessage) -> RepliesOut:
        if not posted.option_id and posted.text is None:
            raise HTTPException(status_code=422, detail="text or option_id is required")
        msg = to_incoming(posted, await ids.stored(posted.client_id))
        log.debug("webchat message from %s (%s)", short_id(posted.client_id), msg.kind)
        handled = await handler(app, msg)
        return RepliesOut(replies=[render_reply(r) for r in handled.replies])

    @router.get("/api/webchat/poll", response_model=PollOut)
    async def poll(
        client_id: Annotated[str, Query(pattern=CLIENT_ID_PATTERN)],
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> PollOut:
        # A plain read: no unit of work, so polling never queues behind SQLite's writer lock.
        async with app.db.sessions() as session:
            batch, cursor = await OutboxRepository(session).pending_for(
                CHANNEL, await ids.stored(client_id), app.clock.now(), after, MAX_POLL_BATCH
            )
            files = ReportFileRepository(session)
            messages = [
                render_pushed(m.id, reply)
                for m in batch
                for reply in await load_replies(files, m.payload, app.content_dir)
            ]
        return PollOut(messages=messages, last_id=cursor)

    return router
