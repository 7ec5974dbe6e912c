"""Ad hoc requests (báo cáo đột xuất, seed 000 line 97): the table and its queries.

A request asks the officers of one role (`audience`) inside one area for a short report by a
date. What it asks is a form of content/forms/ (`form_key`) or questions typed in the chat,
kept as a form definition (`definition`) that the same loader checks. The answers are ordinary
submissions of the form `request_<id>` (bot/domain/requests.py), so versions, rules and the
compiled figures work as for any report.

`RequestRepository` flushes but never commits, like every repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Submission, Unit

# The delivery kind of the message that brings a request (storage.models_outreach lists the others).
KIND_REQUEST = "request"


class ReportRequest(Base):
    """One ad hoc request: who asked whom, inside which area, what, and by when."""

    __tablename__ = "report_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))  # the area
    area_path: Mapped[str] = mapped_column(String(255), index=True)  # the area's path, "/1/57/"
    audience: Mapped[str] = mapped_column(String(32))  # the role asked: village_officer, commune_officer
    form_key: Mapped[str | None] = mapped_column(String(64))  # a form of content/forms/, or
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the questions typed in the chat
    title: Mapped[str] = mapped_column(String(255))
    due_date: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]  # cancelled by whoever follows it (audit: request.cancel)


def path_prefixes(path: str) -> list[str]:
    """'/1/57/4012/' → ['/1/', '/1/57/', '/1/57/4012/']: the paths of the unit and its ancestors."""
    parts = [p for p in path.strip("/").split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


class RequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, request: ReportRequest) -> ReportRequest:
        self.s.add(request)
        await self.s.flush()
        return request

    async def get(self, request_id: int) -> ReportRequest | None:
        return await self.s.get(ReportRequest, request_id)

    async def newest(self, author_id: int, area_paths: Sequence[str], limit: int = 5) -> list[ReportRequest]:
        """The newest requests sent by `author_id` or lying inside one of `area_paths`."""
        conditions = [ReportRequest.created_by_contact_id == author_id]
        conditions += [ReportRequest.area_path.like(path + "%") for path in area_paths]
        q = select(ReportRequest).where(or_(*conditions))
        q = q.order_by(ReportRequest.created_at.desc(), ReportRequest.id.desc()).limit(limit)
        return list((await self.s.execute(q)).scalars())

    async def due_between(self, first: date, last: date) -> list[ReportRequest]:
        """Requests standing (not cancelled) due from `first` to `last` (the reminders' look-ahead)."""
        q = select(ReportRequest).where(
            ReportRequest.due_date >= first,
            ReportRequest.due_date <= last,
            ReportRequest.cancelled_at.is_(None),
        )
        return list((await self.s.execute(q.order_by(ReportRequest.id))).scalars())

    async def addressed_to(
        self, holdings: Sequence[tuple[str, str]], due_from: date, limit: int = 10
    ) -> list[ReportRequest]:
        """Requests standing (not cancelled), due on or after `due_from`, asking `role` of an area
        containing the unit at `path`, for any (role, path) of `holdings`; the soonest due first."""
        if not holdings:
            return []
        conditions = [
            and_(ReportRequest.audience == role, ReportRequest.area_path.in_(path_prefixes(path)))
            for role, path in holdings
        ]
        q = select(ReportRequest).where(
            or_(*conditions), ReportRequest.due_date >= due_from, ReportRequest.cancelled_at.is_(None)
        )
        q = q.order_by(ReportRequest.due_date, ReportRequest.id).limit(limit)
        return list((await self.s.execute(q)).scalars())

    async def units_in(self, area_path: str, kinds: Sequence[str], on: date) -> list[Unit]:
        """The units of `kinds` inside the area (the area itself included), valid on `on`."""
        q = select(Unit).where(
            Unit.path.like(area_path + "%"),
            Unit.kind.in_(kinds),
            or_(Unit.valid_to.is_(None), Unit.valid_to >= on),
            or_(Unit.valid_from.is_(None), Unit.valid_from <= on),
        )
        return list((await self.s.execute(q.order_by(Unit.path))).scalars())

    async def replies(self, form_key: str) -> dict[int, Submission]:
        """The latest answer of each unit to the request whose form is `form_key`, by unit id."""
        q = select(Submission).where(Submission.form_key == form_key).order_by(Submission.version)
        latest: dict[int, Submission] = {}
        for row in (await self.s.execute(q)).scalars():
            latest[row.unit_id] = row
        return latest
