"""The web chat channel: a page served at `/` and a small JSON API behind it.

Like every channel adapter it only translates (DESIGN.md, boundary 2): a POSTed JSON message
becomes an `Incoming`, the service's `Reply` objects become JSON the page renders as bubbles
and buttons. Pushed messages (broadcasts, reminders) wait in the outbox and the page polls them.

Limits (issue 11): request bodies above `webchat_max_body_bytes` get 413 before they are read;
a client address starts at most `webchat_new_contacts_per_minute` new ids (each id is a new
contact), more get 429; "Đăng xuất" (log out) revokes the id on the server.

Files (issue 10): the page keeps its history in the browser, as text and links. Each file a
reply carries is kept on the server for its contact (bot/services/files.py; pushed messages get
theirs when queued), and its `url` downloads it again — with the client id in the
X-Webchat-Client header, never in the URL — until `kept_file_days` have passed; any other
client, a revoked id or an expired file gets 404.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi import Path as Path_
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.channels.ratelimit import Allowance
from bot.domain.app import App
from bot.domain.messages import Handled, Incoming, Kind, Reply
from bot.messaging.outbox import load_replies
from bot.services.files import keep_files, kept_file
from bot.services.sessions import log_out
from storage.models_files import KeptFileRepository
from storage.models_secrets import WEBCHAT_ID_KEY
from storage.repositories import OutboxRepository, ReportFileRepository

log = logging.getLogger(__name__)

CHANNEL = "webchat"
MAX_TEXT = 20_000  # longer texts are cut here; the engine explains its own, lower limit
MAX_POLL_BATCH = 100
# Outbox ids are 64-bit signed integers on both databases: a cursor past them is refused (422)
# before it reaches the driver, which cannot bind it (a 500, found by tests/test_fuzz_http.py).
MAX_CURSOR = 2**63 - 1
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{8,63}$"
FILE_KEY_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
FILES_PATH = "/api/webchat/files"
CLIENT_HEADER = "X-Webchat-Client"  # a header, not the link: the id stays out of URLs and history
PAGE_PATH = Path(__file__).parent / "static" / "webchat.html"
KNOWN_IDS = 50_000  # ids known to have a contact, remembered so that their messages skip a read

Handler = Callable[[App, Incoming], Awaitable[Handled]]


# ----------------------------------------------------------------------------- payloads


class OptionOut(BaseModel):
    id: str
    label: str


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    data: str | None = Field(
        default=None, description="The file's bytes, base64-encoded (a pushed file with a url has none)."
    )
    url: str | None = Field(
        default=None,
        description="Where the file can be downloaded again (relative to the page), with the client "
        "id in the X-Webchat-Client header, until it expires (kept_file_days).",
    )


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


class LogoutIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    client_id: Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]


class LogoutOut(BaseModel):
    revoked: bool = Field(description="False when the id was unknown or already revoked.")


class RepliesOut(BaseModel):
    replies: list[MessageOut]


class PushedMessageOut(MessageOut):
    id: int


class PollOut(BaseModel):
    messages: list[PushedMessageOut]
    last_id: int


# ----------------------------------------------------------------------------- translation


def to_incoming(posted: PostedMessage, external_id: str, client_address: str | None = None) -> Incoming:
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
            client_address=client_address,
        )
    return Incoming(
        channel=CHANNEL,
        external_id=external_id,
        kind=Kind.TEXT,
        text=(posted.text or "")[:MAX_TEXT],
        update_id=update_id,
        client_address=client_address,
    )


def file_url(key: str) -> str:
    """A kept file's download link, relative to the page (the app may sit under a path prefix)."""
    return f"{FILES_PATH.lstrip('/')}/{key}"


def render_reply(reply: Reply, kept: Sequence[str | None] = ()) -> MessageOut:
    """A reply → JSON; `kept` gives the files' download ids (bot.services.files), in order."""
    keys = list(kept) + [None] * (len(reply.attachments) - len(kept))
    return MessageOut(
        text=reply.text,
        options=[OptionOut(id=o.id, label=o.label) for o in reply.options],
        attachments=[
            AttachmentOut(
                filename=a.filename,
                content_type=a.content_type,
                data=base64.b64encode(a.data).decode("ascii"),
                url=file_url(key) if key else None,
            )
            for a, key in zip(reply.attachments, keys, strict=True)
        ],
    )


def render_pushed(message_id: int, reply: Reply) -> PushedMessageOut:
    """An outbox message, read back as a reply (bot.messaging.outbox.load_replies) → what the page renders."""
    return PushedMessageOut(id=message_id, **render_reply(reply).model_dump())


async def render_payload(
    message_id: int, payload: dict[str, Any], files: ReportFileRepository, content_dir: Path
) -> list[PushedMessageOut]:
    """An outbox row → what the page renders. Files kept for download go as links (their bytes
    are not read here); older rows, queued before files were kept, carry the bytes."""
    items = list(payload.get("attachments") or ())
    linked = [i for i in items if i.get("kept")]
    rest = {**payload, "attachments": [i for i in items if not i.get("kept")]}
    out = [render_pushed(message_id, r) for r in await load_replies(files, rest, content_dir)]
    out[0].attachments += [
        AttachmentOut(
            filename=str(i["filename"]), content_type=str(i["content_type"]), url=file_url(str(i["kept"]))
        )
        for i in linked
    ]
    return out


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


# ----------------------------------------------------------------------------- new ids


class NewIds:
    """How many new ids (new contacts) each client address may start (`Allowance`), and the ids
    known to exist already, whose messages are not counted."""

    def __init__(self, app: App) -> None:
        settings = app.settings
        self.app = app
        rate = settings.webchat_new_contacts_per_minute
        self.allowance = Allowance(rate, settings.webchat_new_contacts_burst) if rate > 0 else None
        # Keyed by a digest: the ids are credentials, and need not sit in memory as they are.
        self._known: OrderedDict[bytes, None] = OrderedDict()

    @staticmethod
    def _key(client_id: str) -> bytes:
        return hashlib.sha256(client_id.encode()).digest()[:16]

    async def admit(self, client_id: str, address: str | None) -> float:
        """0.0 when the message may go on; else the seconds before this address may start a new id."""
        if self.allowance is None or self._key(client_id) in self._known:
            return 0.0
        # A plain indexed read (the one the senders use), outside the write lock.
        async with self.app.read_only() as reads:
            if await reads.channels.identity_state(CHANNEL, client_id) is not None:
                self.known(client_id)
                return 0.0
        return self.allowance.take(address or "unknown")

    def known(self, client_id: str) -> None:
        key = self._key(client_id)
        self._known[key] = None
        self._known.move_to_end(key)
        while len(self._known) > KNOWN_IDS:
            self._known.popitem(last=False)

    def forget(self, client_id: str) -> None:
        self._known.pop(self._key(client_id), None)


def client_address(request: Request) -> str | None:
    """The client's address (uvicorn puts the proxy's X-Forwarded-For here when it trusts the
    proxy: setting forwarded_allow_ips)."""
    return request.client.host if request.client else None


# ----------------------------------------------------------------------------- files


async def keep_for_later(app: App, handled: Handled) -> list[list[str | None]]:
    """Per reply, the download ids of its files (bot.services.files), so that the page's
    history can fetch them again after a reload. Without a contact (a failed step) or when
    keeping fails, the files are only sent in the answer, as before."""
    none: list[list[str | None]] = [[] for _ in handled.replies]
    if handled.contact_id is None or not any(r.attachments for r in handled.replies):
        return none
    try:
        async with app.uow() as uow:
            now = app.clock.now()
            kept = [await keep_files(uow, handled.contact_id, r.attachments, now) for r in handled.replies]
            await uow.commit()
    except Exception:
        log.exception("webchat files not kept for downloading again")
        return none
    return kept


def content_disposition(filename: str) -> str:
    """`attachment` with the name as ASCII and as UTF-8 (RFC 6266); our names are ASCII already."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ----------------------------------------------------------------------------- the router


def create_router(app: App, handle: Handler | None = None) -> APIRouter:
    """The web chat's routes. `handle` defaults to the app's own message handler."""
    if handle is None:
        handle = App.handle
    handler: Handler = handle
    # Bodies above the limit get 413 from the framework while they are being read, before
    # they are held in memory (0: no limit).
    router = APIRouter(tags=["webchat"], max_body_size=app.settings.webchat_max_body_bytes or None)
    new_ids = NewIds(app)
    ids = ClientIds(app)

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

    @router.post(
        "/api/webchat/messages",
        response_model=RepliesOut,
        responses={
            413: {"description": "The body is larger than webchat_max_body_bytes."},
            429: {"description": "Too many new ids from this client address; see Retry-After."},
        },
    )
    async def post_message(posted: PostedMessage, request: Request) -> RepliesOut:
        if not posted.option_id and posted.text is None:
            raise HTTPException(status_code=422, detail="text or option_id is required")
        address = client_address(request)
        stored = await ids.stored(posted.client_id)
        wait = await new_ids.admit(stored, address)
        if wait:
            log.info("webchat: too many new ids from one address; refused for %.0fs", wait)
            raise HTTPException(
                status_code=429,
                detail="too many new conversations from this address",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        msg = to_incoming(posted, stored, address)
        log.debug("webchat message from %s (%s)", short_id(posted.client_id), msg.kind)
        handled = await handler(app, msg)
        new_ids.known(stored)  # the id has its contact now
        kept = await keep_for_later(app, handled)
        return RepliesOut(replies=[render_reply(r, k) for r, k in zip(handled.replies, kept, strict=True)])

    @router.post("/api/webchat/logout", response_model=LogoutOut)
    async def logout(body: LogoutIn) -> LogoutOut:
        """Revoke the client id: it no longer reaches the contact or their messages."""
        stored = await ids.stored(body.client_id)
        new_ids.forget(stored)
        async with app.db.contact_locks.hold((CHANNEL, stored)), app.uow() as uow:
            revoked = await log_out(uow, CHANNEL, stored, app.clock.now())
            await uow.commit()
        log.info("webchat %s logged out (%s)", short_id(body.client_id), "revoked" if revoked else "unknown")
        return LogoutOut(revoked=revoked)

    @router.get("/api/webchat/poll", response_model=PollOut)
    async def poll(
        client_id: Annotated[str, Query(pattern=CLIENT_ID_PATTERN)],
        after: Annotated[int, Query(ge=0, le=MAX_CURSOR)] = 0,
    ) -> PollOut:
        # A plain read: no unit of work, so polling never queues behind SQLite's writer lock.
        async with app.db.sessions() as session:
            batch, cursor = await OutboxRepository(session).pending_for(
                CHANNEL, await ids.stored(client_id), app.clock.now(), after, MAX_POLL_BATCH
            )
            files = ReportFileRepository(session)
            messages = [
                pushed
                for m in batch
                for pushed in await render_payload(m.id, m.payload, files, app.content_dir)
            ]
        return PollOut(messages=messages, last_id=cursor)

    @router.get(
        FILES_PATH + "/{key}",
        response_class=Response,
        responses={
            200: {"description": "The file.", "content": {"application/octet-stream": {}}},
            404: {"description": "No such file for this client, or it has expired."},
        },
    )
    async def download(
        key: Annotated[str, Path_(pattern=FILE_KEY_PATTERN)],
        client_id: Annotated[str | None, Header(alias=CLIENT_HEADER)] = None,
    ) -> Response:
        """A file kept for this client's contact (a compiled report), until kept_file_days."""
        if client_id is None or not re.fullmatch(CLIENT_ID_PATTERN, client_id):
            raise HTTPException(status_code=404, detail="no such file")
        stored = await ids.stored(client_id)
        async with app.db.sessions() as session:  # a plain read, like the poll
            found = await kept_file(
                KeptFileRepository(session),
                key,
                CHANNEL,
                stored,
                app.clock.now(),
                app.settings.kept_file_days,
            )
        if found is None:
            raise HTTPException(status_code=404, detail="no such file")
        return Response(
            found.data,
            media_type=found.content_type,
            headers={
                "Content-Disposition": content_disposition(found.filename),
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router
