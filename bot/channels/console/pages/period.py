"""GET /console/period: the period at a glance — every sub-unit of the staff's area for one period.

A commune officer sees their commune's villages, province staff their province's communes, and
staff whose area covers every province the country (one line per province). `unit` drills down
(a unit outside the area answers 404, like one that does not exist); `period` defaults to the
same period as the chat's /baocaotonghop (`Schedules.open_period`, first of `recent_periods`).

Everything shown comes from ONE compiled report (bot.services.reports → bot/reports/aggregate.py),
read through a read-only unit of work; bot/reports/overview.py turns it into lines, levels and
the chart. No query per line.
"""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.channels.console.auth import Console, StaffSession, areas, unit_in_area
from bot.channels.console.choices import period_choice, summary_areas
from bot.channels.console.templating import render
from bot.domain.clock import local_today
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed
from bot.reports.aggregate import RATES, UnitRef
from bot.reports.labels import format_rate, kind_plural
from bot.reports.overview import (
    FILTER_LABELS,
    FILTERS,
    REVIEW_LABELS,
    STATE_LABELS,
    WARN_SHARE,
    cell_title,
    overview,
    rate_header,
)
from bot.services.reports import compile_country, compile_report, may_compile_country
from storage.models import VILLAGE_KINDS, Unit

COUNTRY = "country"  # the breadcrumb of the national view


@dataclass(frozen=True, slots=True)
class Crumb:
    name: str
    href: str | None  # None: the page itself


def period_href(unit_id: int | None, period: Period) -> str:
    query = {"period": period.key} if unit_id is None else {"unit": unit_id, "period": period.key}
    return "/console/period?" + urlencode(query)


def village_href(unit_id: int) -> str:
    return f"/console/village/{unit_id}"


def create_router(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/period", response_class=HTMLResponse)
    async def period_view(
        request: Request,
        staff: Annotated[StaffSession, Depends(console.staff)],
        unit: int | None = None,
        period: str | None = None,
        show: str = "all",
        chart: str | None = None,
    ) -> Response:
        app = console.app
        t = staff.t
        now = app.clock.now()
        today = local_today(app.clock)
        chosen, choices = period_choice(app, period)
        own = summary_areas(staff)
        async with app.read_only() as reads:
            # The country, for staff holding several areas that cover every province; staff with
            # one area (a province of a one-province test tree too) see that area.
            national = len(own) > 1 and await may_compile_country(reads, staff.actor, today)
            target: Unit | None = None
            if unit is not None:
                target = await unit_in_area(reads, staff, unit, Action.COMPILE_REPORT)
                if target.kind in VILLAGE_KINDS:  # a village has no sub-units: its own page
                    return RedirectResponse(village_href(target.id), status_code=303)
            elif not national:
                if not own:
                    raise HTTPException(403)
                target = own[0]
            try:
                if target is None:
                    compiled = await compile_country(
                        reads, staff.actor, chosen, content_dir=app.content_dir, forms=app.forms, now=now
                    )
                else:
                    compiled = await compile_report(
                        reads,
                        staff.actor,
                        target.id,
                        chosen,
                        content_dir=app.content_dir,
                        forms=app.forms,
                        now=now,
                    )
            except NotAllowed:
                raise HTTPException(404) from None
        view = overview(compiled, t, now)
        crumbs = breadcrumbs(staff, compiled.ancestors, compiled.unit, chosen, national, t("Whole country"))
        rate_keys = [r.key for r in RATES]
        shown_chart = chart if chart in rate_keys else rate_keys[0]
        return render(
            request,
            staff,
            "period.html",
            view=view,
            c=compiled,
            crumbs=crumbs,
            period=chosen,
            periods=choices,
            unit_id=compiled.unit.id if compiled.unit else None,
            others=[u for u in own if compiled.unit is None or u.id != compiled.unit.id]
            if len(own) > 1
            else [],
            show=show if show in FILTERS else "all",
            filters=[(f, t(FILTER_LABELS[f])) for f in FILTERS],
            state_labels={k: t(v) for k, v in STATE_LABELS.items()},
            review_labels={k: t(v) for k, v in REVIEW_LABELS.items()},
            rate_headers={r.key: rate_header(compiled, t, r) for r in RATES},
            chart=shown_chart,
            kinds=kind_plural(t, compiled.rows[0].unit.kind) if compiled.rows else "",
            warn_share=WARN_SHARE,
            # The column's heading says "per person": the cells give the amount only (1280 px).
            format_rate=lambda key, value: format_rate(t, key, value, per=False),
            cell_title=lambda cell: cell_title(t, cell),
            row_href=lambda u: village_href(u.id) if u.kind in VILLAGE_KINDS else period_href(u.id, chosen),
            period_href=period_href,
        )

    return router


def breadcrumbs(
    staff: StaffSession,
    ancestors: list[UnitRef],
    unit: UnitRef | None,
    period: Period,
    national: bool,
    country: str,
) -> list[Crumb]:
    """From the top of the staff's area down to `unit`: never above what they may see."""
    crumbs: list[Crumb] = []
    if national:
        crumbs.append(Crumb(country, period_href(None, period) if unit is not None else None))
    if unit is None:
        return crumbs
    held = {u.id for u in areas(staff, Action.COMPILE_REPORT)}
    inside = national
    for ref in ancestors:
        inside = inside or ref.id in held
        if inside:
            crumbs.append(Crumb(ref.name, period_href(ref.id, period)))
    crumbs.append(Crumb(unit.name, None))
    return crumbs
