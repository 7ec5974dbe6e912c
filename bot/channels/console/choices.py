"""What the console's pages choose from: the period (the chat's default rule) and the staff's
areas with compiled reports. One place, so that the period view and the downloads agree."""

from __future__ import annotations

from fastapi import HTTPException

from bot.channels.console.auth import StaffSession, areas
from bot.domain.app import App
from bot.domain.clock import local_today
from bot.domain.periods import Period
from bot.domain.permissions import Action
from bot.domain.schedules import load_schedules
from bot.reports import SUMMARY_KINDS
from bot.reports.aggregate import VILLAGE_FORM
from storage.models import Unit


def parse_period(raw: str | None, default: Period | None) -> Period:
    """The period typed in the address; `default` when none is (400 when there is neither, or
    the text is not a period)."""
    if not raw:
        if default is None:
            raise HTTPException(400, "no period")
        return default
    try:
        return Period.parse(raw)
    except ValueError:
        raise HTTPException(400, "not a period") from None


def period_choice(app: App, raw: str | None) -> tuple[Period, list[Period]]:
    """The period shown — the one in the address, else the chat's default (/baocaotonghop: the
    first of `recent_periods`) — and the periods its select offers (an older one typed in the
    address among them)."""
    choices = load_schedules(app.content_dir).recent_periods(VILLAGE_FORM, local_today(app.clock))
    chosen = parse_period(raw, choices[0])
    return chosen, choices if chosen in choices else [*choices, chosen]


def summary_areas(staff: StaffSession) -> list[Unit]:
    """The staff's areas that have compiled reports (their commune, their province), widest first."""
    return sorted(
        (u for u in areas(staff, Action.COMPILE_REPORT) if u.kind in SUMMARY_KINDS),
        key=lambda u: (len(u.path), u.name),
    )
