"""/console/onboarding: villages and officers' names from a CSV, codes for every village without an
officer, the open codes with a revoke button, and their printable slips (PDF).

The page only translates: each write is one service call with the staff member's Actor
(bot/services/onboarding.py, bot/services/invites.py), which checks the permission table and
audits. A unit or code outside the staff member's area answers 404, like one that does not exist.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import RedirectResponse

from bot.channels.console.auth import Console, StaffSession, areas, unit_in_area
from bot.channels.console.templating import render
from bot.conversations.common import role_label
from bot.domain.clock import VN_TZ
from bot.domain.invite_codes import format_code
from bot.domain.permissions import Action, NotAllowed
from bot.reports.invite_slips import CONTENT_TYPE, BotLinks, render_slips
from bot.services.invites import InviteNotFound, revoke_invite
from bot.services.onboarding import (
    MAX_UPLOAD_BYTES,
    OpenCode,
    UploadResult,
    codes_for_area,
    last_valid_day,
    open_codes,
    slips_of,
    upload_villages,
)
from storage.models import COMMUNE, Unit

PATH = "/console/onboarding"
ACTION = Action.CREATE_INVITE


def create_router(console: Console) -> APIRouter:
    app = console.app
    # The upload's own limit is checked by the service; this stops a far larger body at the door.
    router = APIRouter(max_body_size=MAX_UPLOAD_BYTES + 64_000)
    Staff = Annotated[StaffSession, Depends(console.staff)]
    StaffPost = Annotated[StaffSession, Depends(console.staff_post)]

    async def chosen(staff: StaffSession, unit_id: int | None) -> list[Unit]:
        """The staff member's areas, or the one unit of them they chose (404 outside them)."""
        console.require(staff, ACTION)
        if unit_id is None:
            return areas(staff, ACTION)
        async with app.read_only() as reads:
            unit = await unit_in_area(reads, staff, unit_id, ACTION)
            reads.keep_loaded()
        return [unit]

    async def page(
        request: Request,
        staff: StaffSession,
        unit_id: int | None,
        *,
        status: int = 200,
        upload: UploadResult | None = None,
        notice: str | None = None,
    ) -> Response:
        shown = await chosen(staff, unit_id)
        now = app.clock.now()
        async with app.read_only() as reads:
            codes = await open_codes(reads, shown, now)
            # Where codes can be asked for: each area, and the communes of a province.
            places: list[Unit] = []
            for unit in areas(staff, ACTION):
                places.append(unit)
                if unit.kind != COMMUNE:
                    places += await reads.units.children(unit.id, (COMMUNE,), on=now.date())
            reads.keep_loaded()
        return render(
            request,
            staff,
            "onboarding.html",
            status,
            codes=codes,
            places=places,
            unit_id=unit_id,
            upload=upload,
            notice=notice,
            format_code=format_code,
            role_label=role_label,
            last_valid_day=last_valid_day,
            vn=VN_TZ,
            max_kb=MAX_UPLOAD_BYTES // 1000,
        )

    @router.get("/onboarding")
    async def onboarding(
        request: Request, staff: Staff, unit: Annotated[int | None, Query()] = None, done: str | None = None
    ) -> Response:
        notice = None
        if done == "revoked":
            notice = staff.t("The code was revoked: it no longer works.")
        return await page(request, staff, unit, notice=notice)

    @router.post("/onboarding/upload")
    async def upload(request: Request, staff: StaffPost, file: Annotated[UploadFile, File()]) -> Response:
        console.require(staff, ACTION)
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        async with app.uow() as uow:
            try:
                result = await upload_villages(
                    uow,
                    staff.actor,
                    data,
                    file.filename or "villages.csv",
                    app.clock.now(),
                    app.settings.invite_expiry_days,
                )
            except NotAllowed as exc:
                raise HTTPException(status_code=403) from exc
            if result.ok:
                await uow.commit()
        return await page(request, staff, None, status=200 if result.ok else 422, upload=result)

    @router.post("/onboarding/codes")
    async def codes(request: Request, staff: StaffPost, unit_id: Annotated[int, Form()]) -> Response:
        async with app.uow() as uow:
            area = await unit_in_area(uow, staff, unit_id, ACTION)
            try:
                made = await codes_for_area(
                    uow, staff.actor, area, app.clock.now(), app.settings.invite_expiry_days
                )
            except NotAllowed as exc:
                raise HTTPException(status_code=404) from exc
            await uow.commit()
        created = sum(1 for c in made if c.created)
        notice = staff.t(
            "{created} new codes; {kept} villages kept the code they had.",
            created=staff.t.number(created),
            kept=staff.t.number(len(made) - created),
        )
        return await page(request, staff, unit_id, notice=notice)

    @router.post("/onboarding/revoke/{invite_id}")
    async def revoke(request: Request, staff: StaffPost, invite_id: int) -> Response:
        console.require(staff, ACTION)
        async with app.uow() as uow:
            try:
                await revoke_invite(uow, staff.actor, invite_id, app.clock.now())
            except (InviteNotFound, NotAllowed) as exc:
                raise HTTPException(status_code=404) from exc
            await uow.commit()
        return RedirectResponse(f"{PATH}?done=revoked", status_code=303)

    @router.get("/onboarding/slips.pdf")
    async def slips(staff: Staff, unit: Annotated[int | None, Query()] = None) -> Response:
        shown = await chosen(staff, unit)
        async with app.read_only() as reads:
            found: list[OpenCode] = await open_codes(reads, shown, app.clock.now())
            printable = slips_of(found)
        settings = app.settings
        links = BotLinks(settings.telegram_bot_username, settings.zalo_bot_name, settings.zalo_bot_link)
        # A province's 3,000 slips take seconds to draw: off the event loop.
        pdf = await asyncio.to_thread(render_slips, printable, staff.t, links)
        name = "phieu-ma-moi.pdf" if staff.locale == "vi" else "invite-slips.pdf"
        return Response(
            content=pdf,
            media_type=CONTENT_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )

    return router
