"""Helpers for the report, reminder, scheduler and summary tests (no tests here).

Submissions are written the way the form runner writes them (a new version of the record for a
correction), so the read side is tested against the real write side's data.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from bot.domain.app import App
from bot.domain.clock import VN_TZ
from bot.domain.i18n import translator
from bot.domain.permissions import Grant, load_grants
from bot.messaging.outbox import attachments_of
from bot.reports.compiled import sum_fields
from storage.models import ChannelIdentity, Contact, OutboxMessage, Submission, Unit

BASE_VALUES: dict[str, Any] = {
    "households_total": 100,
    "population_total": 400,
    "lf_registered": 80,
    "lf_recognized": 70,
    "clans_total": 10,
    "lc_registered": 8,
    "lc_recognized": 6,
    "clan_boards": 4,
    "village_lc_status": "registered",
    "members_total": 100,
    "members_new": 5,
    "adults_total": 240,
    "lcit_registered": 120,
    "adults_learning_total": 200,
    "lcit_recognized": 96,
    "fund_raised_vnd": 8_000_000,
    "fund_disbursed_vnd": 5_000_000,
    "fund_balance_vnd": 3_000_000,
    "scholarship_count": 4,
    "scholarship_amount_vnd": 2_000_000,
    "award_count": 6,
    "award_amount_vnd": 1_200_000,
    "clc_sessions": 3,
    "clc_attendance": 90,
    "notes": None,
}


def vn(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


# Asked at year end only (content/forms/village_report.yaml ask_in): null in a half-year report.
YEAR_ONLY = ("lf_recognized", "lc_recognized", "adults_learning_total", "lcit_recognized")


def values(period: str = "2026", **overrides: Any) -> dict[str, Any]:
    """A village report's values; in a half-year report the year-end figures are null unless
    given (as an older version of the form stored them)."""
    base = dict(BASE_VALUES)
    if "-H" in period:
        base |= {key: None for key in YEAR_ONLY}
        if base["village_lc_status"] == "recognized":
            base["village_lc_status"] = "registered"
    return {**base, **overrides}


async def submit(app: App, unit: Unit, period: str, at: datetime, **overrides: Any) -> Submission:
    """A village report (or its correction: the next version of the same record)."""
    async with app.uow() as uow:
        saved = await uow.submissions.add_version(
            Submission(
                form_key="village_report",
                record_key=f"{unit.id}:{period}",
                unit_id=unit.id,
                period=period,
                values=values(period, **overrides),
                submitted_at=at,
                channel="test",
                version=0,
            )
        )
        await uow.commit()
    return saved


# A commune's own report (content/forms/commune_report.yaml) that breaks no rule.
COMMUNE_VALUES: dict[str, Any] = {
    "units_total": 8,
    "units_registered": 7,
    "units_recognized": 6,
    "branches_total": 3,
    "branch_members": 150,
    "fund_raised_vnd": 10_000_000,
    "fund_disbursed_vnd": 4_000_000,
    "fund_balance_vnd": 6_000_000,
    "commune_lc_rating": "fair",
    "clc_classes": 12,
    "clc_learners": 340,
    "trained_officers": 15,
    "trained_members": 80,
    "awards_collective": 2,
    "awards_individual": 9,
    "notes": None,
}


# Asked at year end only (content/forms/commune_report.yaml ask_in): null in a half-year report.
COMMUNE_YEAR_ONLY = ("units_recognized", "commune_lc_rating")


def commune_values(period: str = "2026", **overrides: Any) -> dict[str, Any]:
    """A commune report's values; in a half-year report the year-end figures are null unless
    given."""
    base = dict(COMMUNE_VALUES)
    if "-H" in period:
        base |= {key: None for key in COMMUNE_YEAR_ONLY}
    return {**base, **overrides}


async def submit_commune_report(
    app: App, unit: Unit, period: str, at: datetime, **overrides: Any
) -> Submission:
    """A commune's own report (or its correction: the next version of the same record)."""
    async with app.uow() as uow:
        saved = await uow.submissions.add_version(
            Submission(
                form_key="commune_report",
                record_key=f"{unit.id}:{period}",
                unit_id=unit.id,
                period=period,
                values=commune_values(period, **overrides),
                submitted_at=at,
                channel="test",
                version=0,
            )
        )
        await uow.commit()
    return saved


async def submit_activity(
    app: App,
    unit: Unit,
    held: date,
    *,
    participants: int = 40,
    sessions: int = 1,
    female: int = 20,
    llw: bool = False,
    at: datetime | None = None,
) -> None:
    period = str(held.year)  # activities are filed under their year (content/schedules.yaml)
    vals = {
        "activity_date": held.isoformat(),
        "end_date": None,
        "activity_type": "thematic_session",
        "topic_area": "law",
        "organizer": "association",
        "sessions": sessions,
        "participants": participants,
        "participants_female": female,
        "participants_ethnic_minority": None,
        "cost_vnd": None,
        "funding_source": None,
        "notes": None,
        "is_lifelong_learning_week": llw,
    }
    async with app.uow() as uow:
        await uow.submissions.add_version(
            Submission(
                form_key="activity_report",
                record_key=uuid.uuid4().hex,
                unit_id=unit.id,
                period=period,
                values=vals,
                submitted_at=at or vn(held.year, held.month, held.day, 20),
                channel="test",
                version=0,
            )
        )
        await uow.commit()


async def contact_id(app: App, external_id: str, channel: str = "test") -> int:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity(channel, external_id)
        assert contact is not None
        return contact.id


async def grants_of(app: App, external_id: str) -> list[Grant]:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", external_id)
        assert contact is not None
        grants = await load_grants(uow, contact.id)
        uow.session.expunge_all()  # keep them loaded: leaving the unit of work rolls back and expires
        return grants


async def add_identity(app: App, external_id: str, channel: str, other_id: str) -> None:
    """Give a test contact a second channel (a Zalo account beside the test one)."""
    cid = await contact_id(app, external_id)
    async with app.uow() as uow:
        uow.session.add(
            ChannelIdentity(contact_id=cid, channel=channel, external_id=other_id, created_at=app.clock.now())
        )
        await uow.commit()


async def outbox(app: App) -> list[OutboxMessage]:
    async with app.db.sessions() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def outbox_to(app: App, external_id: str, channel: str = "test") -> list[dict[str, Any]]:
    return [m.payload for m in await outbox(app) if m.external_id == external_id and m.channel == channel]


async def files_of(app: App, payload: dict[str, Any]) -> dict[str, bytes]:
    async with app.read_only() as reads:
        return {a.filename.rsplit(".", 1)[-1]: a.data for a in await attachments_of(reads.files, payload)}


async def set_locale(app: App, external_id: str, locale: str) -> None:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", external_id)
        assert contact is not None
        (await uow.session.get(Contact, contact.id)).locale = locale  # type: ignore[union-attr]
        await uow.commit()


def village_sum_fields(app: App) -> tuple[str, ...]:
    return sum_fields(app.forms)


VI = translator("vi")
EN = translator("en")
