"""One village's page (issue 12, "One village"): all its reports across periods, every version
with who filed it and when, the diff between versions, the review history; approve or return
the latest version here as in /duyet.

The history is bot/services/village_history.py; the acts are bot/services/reviews.approve and
return_report, the same services /duyet calls (the return's notice to the village's officers is
queued by the service). Anyone with Action.COMPILE_REPORT over the unit reads the page; only its
reviewers (Action.REVIEW on its parent) get the buttons; a unit outside the area is a 404, like
one that does not exist. A commune's page shows its own reports (commune_report) the same way.

No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies, which
name the local `console`.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from bot.channels.console.auth import Console, StaffSession, unit_in_area
from bot.channels.console.choices import parse_period
from bot.channels.console.templating import render
from bot.conversations.common import role_label
from bot.domain.clock import VN_TZ
from bot.domain.permissions import Action, NotAllowed
from bot.domain.schedules import load_schedules
from bot.services.reviews import (
    REASON_MAX,
    REASON_MIN,
    ReviewError,
    approve,
    record_key,
    reopen,
    return_report,
)
from bot.services.village_history import Record, UnitHistory, Version, unit_history
from storage.models_reviews import APPROVED, RETURNED
from storage.uow import Reads

# The notice shown after an act (the redirect's `done=`): approved, returned (its officers were
# told), returned but nobody could be told.
DONE = ("approved", "returned", "returned-untold")
_STATE_OF = {"approved": APPROVED, "returned": RETURNED, "returned-untold": RETURNED}


def create_router(console: Console) -> APIRouter:
    router = APIRouter()
    app = console.app

    async def history(reads: Reads, staff: StaffSession, unit_id: int) -> UnitHistory:
        """The unit's history, or 404 when it lies outside the staff's area (or does not exist)."""
        await unit_in_area(reads, staff, unit_id, Action.COMPILE_REPORT)
        try:
            return await unit_history(
                reads,
                staff.actor,
                unit_id,
                forms=app.forms,
                schedules=load_schedules(app.content_dir),
                now=app.clock.now(),
                t=staff.t,
            )
        except NotAllowed as err:
            raise HTTPException(404) from err

    async def page(
        request: Request,
        staff: StaffSession,
        unit_id: int,
        *,
        done: tuple[str, int] | None = None,
        error: str | None = None,
        error_record: tuple[str, str] | None = None,
        reason: str = "",
        status: int = 200,
    ) -> Response:
        """The page, rendered while its rows are still attached to the read-only session."""
        t = staff.t
        async with app.read_only() as reads:
            seen = await history(reads, staff, unit_id)
            above = await reads.units.ancestors(seen.unit)
            found = _version(seen, done[1]) if done is not None else None
            notice = None
            if found is not None and done is not None and found[0].state == _STATE_OF[done[0]]:
                notice = _notice(staff, seen, *found, done[0])  # only what the record says happened

            def when(at: datetime) -> str:
                local = at.astimezone(VN_TZ)
                return f"{t.date(local.date())} {local:%H:%M}"

            def period_label(record: Record) -> str:
                return record.period.label(t) if record.period is not None else record.record_key

            def name_of(name: str | None, role: str | None, contact_id: int | None) -> str:
                """Who filed or reviewed: their name; a deleted contact's report keeps only the
                role; the command line (the demo's data) has neither."""
                if contact_id is None:
                    return "" if role else t("the administrator (command line)")
                return name or t("(no name)")

            def role_of(role: str | None) -> str:
                return role_label(t, role) if role else ""

            def person(name: str | None, role: str | None, contact_id: int | None) -> str:
                """'Hoàng Văn Dũng (Commune study-promotion officer)': a reviewer, in a sentence."""
                who, what = name_of(name, role, contact_id), role_of(role)
                return f"{who} ({what})" if who and what else who or what

            return render(
                request,
                staff,
                "village.html",
                status=status,
                history=seen,
                unit=seen.unit,
                # Root first, each a link to its period view where the staff may see it.
                above=[(u, staff.actor.may(Action.COMPILE_REPORT, u)) for u in above],
                notice=notice,
                error=error,
                error_record=error_record,
                reason=reason,
                when=when,
                period_label=period_label,
                person=person,
                name_of=name_of,
                role_of=role_of,
                reason_min=REASON_MIN,
                reason_max=REASON_MAX,
            )

    @router.get("/village/{unit_id}")
    async def village(
        request: Request,
        unit_id: int,
        staff: Annotated[StaffSession, Depends(console.staff)],
        done: str | None = None,
        sid: int | None = None,
    ) -> Response:
        shown = (done, sid) if done in DONE and sid is not None else None
        return await page(request, staff, unit_id, done=shown)

    async def act(request: Request, staff: StaffSession, unit_id: int, decision: str) -> Response:
        """Approve or return the version the form names: a version of this unit's reports (else
        404), by one of its reviewers (else 403), still the latest and waiting (else the page
        says why, as for a reason too short)."""
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        raw, reason = form.get("submission_id", ""), form.get("reason", "")
        async with app.read_only() as reads:
            seen = await history(reads, staff, unit_id)
            found = _version(seen, int(raw)) if raw.isdigit() else None
            if found is None:
                raise HTTPException(404)
            if not seen.may_review:
                raise HTTPException(403)
            record, version = found
            key = (record.form_key, record.record_key)
            submission_id = version.submission.id
            problem = "superseded" if version is not record.latest else "" if record.may_act else "reviewed"
        if not problem:
            try:
                async with app.uow() as uow:
                    if decision == RETURNED:
                        returned = await return_report(
                            uow, staff.actor, submission_id, reason, now=app.clock.now(), forms=app.forms
                        )
                        done = "returned" if returned.notified else "returned-untold"
                    else:
                        await approve(uow, staff.actor, submission_id, now=app.clock.now())
                        done = "approved"
                    await uow.commit()
            except NotAllowed as err:  # the role went between the page and the act
                raise HTTPException(403) from err
            except ReviewError as err:
                problem = err.code
            else:
                url = f"/console/village/{unit_id}?done={done}&sid={submission_id}"
                return RedirectResponse(url, status_code=303)
        t = staff.t
        if problem == "reason":
            text = t("Please type the reason in a few words (at least {n} characters).", n=REASON_MIN)
        elif problem == "superseded":
            text = t("A newer version of this report has arrived: review it below.")
        else:
            text = t("This version was already reviewed.")
        return await page(request, staff, unit_id, error=text, error_record=key, reason=reason, status=400)

    @router.post("/village/{unit_id}/reopen")
    async def reopen_period(
        request: Request, unit_id: int, staff: Annotated[StaffSession, Depends(console.staff_post)]
    ) -> Response:
        """Open a locked period to the unit's officers once more, as /duyet does (reviews.reopen)."""
        data = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        form = app.forms.get(data.get("form_key", ""))
        if form is None:
            raise HTTPException(404)
        period = parse_period(data.get("period"), None)
        async with app.read_only() as reads:
            await unit_in_area(reads, staff, unit_id, Action.COMPILE_REPORT)  # 404 outside the area
        try:
            async with app.uow() as uow:
                await reopen(
                    uow, staff.actor, form, unit_id, period, now=app.clock.now(), content_dir=app.content_dir
                )
                await uow.commit()
        except NotAllowed as err:
            raise HTTPException(403) from err
        except ReviewError:  # not locked, or already open: nothing to do
            text = staff.t("This report is not locked: its officers can still change it.")
            key = (form.key, record_key(unit_id, period))
            return await page(request, staff, unit_id, error=text, error_record=key, status=400)
        return RedirectResponse(f"/console/village/{unit_id}", status_code=303)

    @router.post("/village/{unit_id}/approve")
    async def approve_version(
        request: Request, unit_id: int, staff: Annotated[StaffSession, Depends(console.staff_post)]
    ) -> Response:
        return await act(request, staff, unit_id, APPROVED)

    @router.post("/village/{unit_id}/return")
    async def return_version(
        request: Request, unit_id: int, staff: Annotated[StaffSession, Depends(console.staff_post)]
    ) -> Response:
        return await act(request, staff, unit_id, RETURNED)

    return router


def _version(seen: UnitHistory, submission_id: int) -> tuple[Record, Version] | None:
    """The record and version of a submission of this unit (None: not one of its versions)."""
    for record in (*seen.records, *seen.entries):
        for version in record.versions:
            if version.submission.id == submission_id:
                return record, version
    return None


def _notice(staff: StaffSession, seen: UnitHistory, record: Record, version: Version, done: str) -> str:
    t = staff.t
    period = record.period.label(t) if record.period is not None else record.record_key
    names = {"unit": seen.unit.name, "period": period, "version": version.number}
    if done == "approved":
        return t("✅ Approved: {unit}, {period} (version {version}).", **names)
    text = t("↩️ Returned: {unit}, {period} (version {version}).", **names)
    if done == "returned":
        return text + " " + t("Its officers were told the reason and can correct it.")
    return (
        text
        + " "
        + t("No officer of {unit} uses the bot yet: please tell them yourself.", unit=seen.unit.name)
    )
