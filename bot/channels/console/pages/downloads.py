"""GET /console/downloads (issue 12, "Downloads"): the compiled report's files for any unit and
period of the staff's area, and the raw latest submissions as CSV.

The files are the chat's /baocaotonghop files, made by the same functions (bot.services.reports
.compile_report, bot.reports.compiled.render for .xlsx and .docx, bot.reports.chart for the
charts: one PNG per indicator, as chart.py draws them, so one link each). The CSV is
bot.services.reports.submissions_csv. Every file is a GET
`/console/downloads/file?unit=…&period=…&kind=xlsx|docx|chart|csv` (chart: `&chart=KEY`; csv:
`&form=KEY`); a unit outside the area answers 404, like one that does not exist.

No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies.
"""

import asyncio
import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from bot.channels.console.auth import Console, StaffSession, unit_in_area
from bot.channels.console.choices import parse_period, period_choice, summary_areas
from bot.channels.console.templating import render as render_page
from bot.domain.clock import local_today
from bot.domain.i18n import Translator
from bot.domain.parsing import fold
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed
from bot.reports import SUMMARY_KINDS
from bot.reports.aggregate import VILLAGE_FORM, Compiled
from bot.reports.chart import CHART_RATES
from bot.reports.commune_figures import COMMUNE_FORM
from bot.reports.compiled import file_stem, render
from bot.reports.document import Profile
from bot.reports.labels import indicator_label
from bot.reports.profile import unit_profile
from bot.reports.submissions_csv import CONTENT_TYPE as CSV_CONTENT_TYPE
from bot.services.reports import compile_report, submissions_csv
from storage.models import PROVINCE, Unit

KINDS = ("xlsx", "docx", "chart", "csv")
CSV_FORMS = (VILLAGE_FORM, COMMUNE_FORM)  # the reports whose raw lines can be downloaded


@dataclass(frozen=True, slots=True)
class Place:
    """A unit of the select (read before its session closes); depth 1: a commune of a province."""

    id: int
    name: str
    depth: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    kind: str
    label: str
    href: str
    test_id: str


def _attachment(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content=data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


def create_router(console: Console) -> APIRouter:
    router = APIRouter()
    app = console.app

    def href(unit_id: int, period: Period, kind: str, **extra: str) -> str:
        query = urlencode({"unit": unit_id, "period": period.key, "kind": kind, **extra})
        return f"/console/downloads/file?{query}"

    @router.get("/downloads")
    async def downloads(
        request: Request,
        staff: Annotated[StaffSession, Depends(console.staff)],
        unit: int | None = None,
        period: str | None = None,
    ) -> Response:
        console.require(staff, Action.COMPILE_REPORT)
        t = staff.t
        chosen, choices = period_choice(app, period)
        own = summary_areas(staff)
        if not own:
            raise HTTPException(403)
        async with app.read_only() as reads:
            target = own[0] if unit is None else await unit_in_area(reads, staff, unit, Action.COMPILE_REPORT)
            if target.kind not in SUMMARY_KINDS:
                raise HTTPException(404)
            here = Place(target.id, target.name)
            # The select: each area, and under a province its communes.
            options: list[Place] = []
            for area in own:
                options.append(Place(area.id, area.name))
                if area.kind == PROVINCE:
                    below = await reads.units.children(area.id, SUMMARY_KINDS, on=local_today(app.clock))
                    options += [Place(u.id, u.name, 1) for u in sorted(below, key=lambda u: u.name)]
        if all(p.id != here.id for p in options):
            options.append(Place(here.id, here.name, 1))
        links = [
            Link("xlsx", t("Compiled report (.xlsx)"), href(here.id, chosen, "xlsx"), "download-xlsx"),
            Link("docx", t("Compiled report (.docx)"), href(here.id, chosen, "docx"), "download-docx"),
        ]
        charts = [
            Link(
                "chart",
                indicator_label(t, key),
                href(here.id, chosen, "chart", chart=key),
                f"download-chart-{key}",
            )
            for key in CHART_RATES
        ]
        csvs = [
            Link(
                "csv",
                app.forms[key].title.get(t.locale),
                href(here.id, chosen, "csv", form=key),
                f"download-csv-{key}",
            )
            for key in CSV_FORMS
            if key in app.forms
        ]
        return render_page(
            request,
            staff,
            "downloads.html",
            unit=here,
            options=options,
            period=chosen,
            periods=choices,
            links=links,
            charts=charts,
            csvs=csvs,
        )

    async def compiled(staff: StaffSession, unit_id: int, period: Period) -> tuple[Compiled, Profile]:
        async with app.read_only() as reads:
            target = await unit_in_area(reads, staff, unit_id, Action.COMPILE_REPORT)
            try:
                c = await compile_report(
                    reads,
                    staff.actor,
                    target.id,
                    period,
                    content_dir=app.content_dir,
                    forms=app.forms,
                    now=app.clock.now(),
                )
            except NotAllowed:
                raise HTTPException(404) from None
            return c, await unit_profile(reads, target.id)

    @router.get("/downloads/file")
    async def download(
        staff: Annotated[StaffSession, Depends(console.staff)],
        unit: int,
        period: str,
        kind: str,
        chart: str | None = None,
        form: str = VILLAGE_FORM,
    ) -> Response:
        console.require(staff, Action.COMPILE_REPORT)
        if kind not in KINDS:
            raise HTTPException(404)
        when = parse_period(period, None)
        if kind == "csv":
            if form not in CSV_FORMS or form not in app.forms:
                raise HTTPException(404)
            async with app.read_only() as reads:
                target = await unit_in_area(reads, staff, unit, Action.COMPILE_REPORT)
                try:
                    data = await submissions_csv(
                        reads, staff.actor, target.id, when, app.forms[form], content_dir=app.content_dir
                    )
                except NotAllowed:
                    raise HTTPException(404) from None
                name = _csv_name(target, when, form)
            return _attachment(data, CSV_CONTENT_TYPE, name)
        if kind == "chart" and chart not in CHART_RATES:
            raise HTTPException(404)
        c, profile = await compiled(staff, unit, when)
        return await asyncio.to_thread(_render_file, c, staff.t, kind, chart, profile)

    return router


def _csv_name(unit: Unit, period: Period, form_key: str) -> str:
    """'so-lieu-phuong-thuc-phan-2026-village-report.csv': ASCII, like the compiled files' names."""
    name = re.sub(r"[^a-z0-9]+", "-", fold(unit.name)).strip("-")
    return f"so-lieu-{name}-{period.key}-{form_key.replace('_', '-')}.csv"


def _render_file(c: Compiled, t: Translator, kind: str, chart_key: str | None, profile: Profile) -> Response:
    """The file, drawn by the chat's renderers (CPU work: called in a worker thread). The chat
    sends every chart at once (chart.render_charts); here each is its own link, drawn alone."""
    if kind in ("xlsx", "docx"):
        (made,) = render(c, t, (kind,), profile)
        return _attachment(made.data, made.content_type, made.filename)
    assert chart_key is not None
    from bot.reports import chart

    png = chart.png_of(chart.build_figure(c, t, chart_key))
    return _attachment(png, chart.CONTENT_TYPE, f"{file_stem(c)}-{chart.slug(t, chart_key)}.png")
