"""GET /console/broadcasts (issue 12, "Broadcasts"): compose a broadcast to the staff's area,
preview it as each channel will show it, send it now or later; follow and cancel the area's
broadcasts.

Everything goes through the services the chat's /guitin and /tinhtrang use
(bot/services/broadcasts.py): the audience is checked again when it is queued, the preview is
`preview_broadcast` (the same recipients and `compose` as sending), the bubbles are drawn by the
channels' own functions (bot/channels/preview.py). A time in the past is refused, as the chat
refuses it, rather than sent at once: a broadcast reaches thousands of people.

No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from bot.channels.console.auth import Console, StaffSession, areas
from bot.channels.console.templating import render
from bot.channels.preview import ChannelPreview, previews
from bot.conversations.flows.broadcast import MAX_DAYS_AHEAD
from bot.domain.clock import VN_TZ, local_today
from bot.domain.permissions import Action, NotAllowed
from bot.domain.text import TITLE_TEXT, shorten
from bot.messaging.content import load_topics
from bot.messaging.outbox import payload_replies
from bot.services.broadcasts import (
    EMPTY,
    MAX_TEXT,
    MEMBERS,
    NO_ITEM,
    OFFICERS,
    TOO_LONG,
    Audience,
    BadMessage,
    Counts,
    Message,
    Preview,
    articles,
    cancel_broadcast,
    delivery_counts,
    may_manage,
    preview_broadcast,
    queue_broadcast,
    visible_broadcasts,
)
from storage.models import COMMUNE, PROVINCE, VILLAGE_KINDS, Unit
from storage.models_outreach import CAMPAIGN, Broadcast
from storage.uow import Reads

LISTED = 20  # broadcasts listed under the form
MAX_LINK = 500  # a photo link, as the chat takes it
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "webchat": "Web chat"}


@dataclass
class Draft:
    """The form as the staff member filled it in (kept when the page is shown again)."""

    area_id: int | None = None
    places: list[int] = field(default_factory=list)  # none: the whole area
    groups: list[str] = field(default_factory=lambda: [MEMBERS])
    topics: list[str] = field(default_factory=list)
    what: str = "text"  # or "item"
    item: str = ""
    text: str = ""
    image_url: str = ""
    when: str = "now"  # or "later"
    day: str = ""
    clock: str = ""

    @classmethod
    async def of(cls, request: Request) -> "Draft":
        form = await request.form()

        def one(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        def many(name: str) -> list[str]:
            return [v for v in form.getlist(name) if isinstance(v, str)]

        area, text = one("area"), form.get("text")
        return cls(
            area_id=int(area) if area.isdigit() else None,
            places=[int(p) for p in many("places") if p.isdigit()],
            groups=[g for g in many("groups") if g in (MEMBERS, OFFICERS)],
            topics=many("topics"),
            what="item" if one("what") == "item" else "text",
            item=one("item"),
            text=text if isinstance(text, str) else "",
            image_url=one("image_url"),
            when="later" if one("when") == "later" else "now",
            day=one("day"),
            clock=one("time"),
        )


@dataclass(frozen=True, slots=True)
class Row:
    """One broadcast in the list, with its delivery counts."""

    broadcast: Broadcast
    counts: Counts
    state: str
    cancellable: bool

    @property
    def stopped(self) -> int:
        return self.counts.blocked

    def share(self, n: int) -> float:
        total = self.counts.total
        return 100.0 * n / total if total else 0.0


class UserError(Exception):
    """What the staff member must change in the form, in their words."""


def create_router(console: Console) -> APIRouter:
    router = APIRouter()
    app = console.app

    def area_of(staff: StaffSession, draft: Draft) -> Unit:
        """The area the broadcast goes to: the one chosen, or the staff's only one (404 if not theirs)."""
        own = areas(staff, Action.BROADCAST)
        if not own:
            raise HTTPException(403)
        if draft.area_id is None:
            return own[0]
        for unit in own:
            if unit.id == draft.area_id:
                return unit
        raise HTTPException(404)

    def audience_of(staff: StaffSession, draft: Draft, area: Unit) -> Audience:
        if not draft.groups:
            raise UserError(staff.t("Choose members, officers or both."))
        return Audience(
            tuple(draft.places or [area.id]), tuple(draft.groups), tuple(sorted(set(draft.topics)))
        )

    def message_of(staff: StaffSession, draft: Draft) -> Message:
        t = staff.t
        if draft.what == "item":
            return Message(item_key=draft.item or None) if draft.item else Message()
        link = draft.image_url
        if link and (not link.startswith(("https://", "http://")) or len(link) > MAX_LINK or " " in link):
            raise UserError(t("The photo link must be a web address starting with https://."))
        return Message(text=draft.text, image_url=link or None)

    def send_at_of(staff: StaffSession, draft: Draft) -> datetime | None:
        """None for now; else the chosen Vietnam time, which must lie ahead (at most 90 days)."""
        t = staff.t
        if draft.when != "later":
            return None
        try:
            at = datetime.combine(
                date.fromisoformat(draft.day), time.fromisoformat(draft.clock), tzinfo=VN_TZ
            )
        except ValueError:
            raise UserError(t("Choose the date and the time to send it.")) from None
        now = app.clock.now()
        if at <= now:
            raise UserError(t("That time has passed: choose a time in the future."))
        if at > now + timedelta(days=MAX_DAYS_AHEAD):
            raise UserError(t("At most {n} days ahead, please.", n=MAX_DAYS_AHEAD))
        return at

    def bad_message(staff: StaffSession, err: BadMessage) -> str:
        t = staff.t
        if err.reason == TOO_LONG:
            return t("The message is too long: at most {n} characters.", n=t.number(MAX_TEXT))
        if err.reason == NO_ITEM:
            return t("This article is no longer available. Nothing was sent.")
        assert err.reason == EMPTY
        return t("Write a message or choose an article.")

    def state_of(staff: StaffSession, b: Broadcast, c: Counts) -> str:
        t = staff.t
        if b.cancelled_at is not None:
            return t("cancelled")
        if b.send_at > app.clock.now() and c.queued:
            local = b.send_at.astimezone(VN_TZ)
            return t("scheduled for {when}", when=f"{t.date(local.date())} {local:%H:%M}")
        return t("sending") if c.queued else t("finished")

    async def page(
        request: Request,
        staff: StaffSession,
        draft: Draft,
        *,
        preview: Preview | None = None,
        error: str | None = None,
        status: int = 200,
        **extra: Any,
    ) -> Response:
        t = staff.t
        today = local_today(app.clock)
        own = areas(staff, Action.BROADCAST)
        area = area_of(staff, draft)
        shown: list[ChannelPreview] = []
        if preview is not None:
            shown = previews(payload_replies(preview.payload, app.content_dir), staff.locale)
        async with app.read_only() as reads:  # rendered while its rows are attached to the session
            kinds = (COMMUNE,) if area.kind == PROVINCE else VILLAGE_KINDS
            places = sorted(await reads.units.children(area.id, kinds, on=today), key=lambda u: u.name)
            items = [
                i for i in await articles(reads, t.locale) if i.valid_until is None or i.valid_until >= today
            ]
            items.sort(key=lambda i: i.kind == CAMPAIGN)  # as /guitin lists them
            return render(
                request,
                staff,
                "broadcasts.html",
                status=status,
                draft=draft,
                areas=own,
                area=area,
                places=places,
                items=[(i.item_key, shorten(i.title, TITLE_TEXT * 2)) for i in items],
                topics=[(tp.key, tp.label(staff.locale)) for tp in load_topics(app.content_dir)],
                members=MEMBERS,
                officers=OFFICERS,
                max_text=MAX_TEXT,
                preview=preview,
                shown=shown,
                channel_names=CHANNEL_NAMES,
                error=error,
                rows=await _rows(reads, staff),
                when_text=lambda at: f"{t.date(at.astimezone(VN_TZ).date())} {at.astimezone(VN_TZ):%H:%M}",
                today=today.isoformat(),
                **extra,
            )

    async def _rows(reads: Reads, staff: StaffSession) -> list[Row]:
        listed = await visible_broadcasts(reads, staff.actor, limit=LISTED)
        counts = await delivery_counts(reads, [b.id for b in listed])
        return [
            Row(
                b,
                counts[b.id],
                state_of(staff, b, counts[b.id]),
                b.cancelled_at is None
                and counts[b.id].queued > 0
                and may_manage(staff.actor.grants, staff.contact.id, b),
            )
            for b in listed
        ]

    def require(staff: StaffSession) -> None:
        console.require(staff, Action.BROADCAST)

    @router.get("/broadcasts")
    async def broadcasts(
        request: Request,
        staff: Annotated[StaffSession, Depends(console.staff)],
        area: int | None = None,
        sent: int | None = None,
        cancelled: int | None = None,
    ) -> Response:
        require(staff)
        return await page(request, staff, Draft(area_id=area), sent=sent, cancelled=cancelled)

    @router.post("/broadcasts/preview")
    async def preview(
        request: Request, staff: Annotated[StaffSession, Depends(console.staff_post)]
    ) -> Response:
        """The recipients and the message on each channel; nothing is written."""
        require(staff)
        draft = await Draft.of(request)
        area = area_of(staff, draft)
        try:
            audience, message = audience_of(staff, draft, area), message_of(staff, draft)
            send_at_of(staff, draft)
            async with app.read_only() as reads:
                seen = await preview_broadcast(reads, staff.actor, audience, message, staff.locale)
        except UserError as err:
            return await page(request, staff, draft, error=str(err), status=400)
        except BadMessage as err:
            return await page(request, staff, draft, error=bad_message(staff, err), status=400)
        except NotAllowed:
            raise HTTPException(404) from None
        return await page(request, staff, draft, preview=seen)

    @router.post("/broadcasts/send")
    async def send(request: Request, staff: Annotated[StaffSession, Depends(console.staff_post)]) -> Response:
        """Queue it (now or at its time) through the service the chat uses, then back to the list."""
        require(staff)
        draft = await Draft.of(request)
        area = area_of(staff, draft)
        try:
            audience, message = audience_of(staff, draft, area), message_of(staff, draft)
            send_at = send_at_of(staff, draft)
            async with app.uow() as uow:
                b = await queue_broadcast(
                    uow, staff.actor, audience, message, now=app.clock.now(), send_at=send_at
                )
                await uow.commit()
        except UserError as err:
            return await page(request, staff, draft, error=str(err), status=400)
        except BadMessage as err:
            return await page(request, staff, draft, error=bad_message(staff, err), status=400)
        except NotAllowed:
            raise HTTPException(404) from None
        return RedirectResponse(f"/console/broadcasts?sent={b.id}", status_code=303)

    @router.post("/broadcasts/{broadcast_id}/cancel")
    async def cancel(
        broadcast_id: int, staff: Annotated[StaffSession, Depends(console.staff_post)]
    ) -> Response:
        """Stop what is not yet sent; a broadcast the staff member may not manage is a 404."""
        require(staff)
        try:
            async with app.uow() as uow:
                await cancel_broadcast(uow, staff.actor, broadcast_id, app.clock.now())
                await uow.commit()
        except NotAllowed:
            raise HTTPException(404) from None
        return RedirectResponse(f"/console/broadcasts?cancelled={broadcast_id}", status_code=303)

    return router
