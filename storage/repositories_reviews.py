"""Queries of the review of reports (storage.models_reviews): the acts, and the latest version
of each record of an area waiting for them. Like every repository it flushes, never commits;
it only reads apart from `add`, so the read-only unit of work carries it too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Contact, RoleGrant, Submission, Unit
from storage.models_reviews import APPROVED, RETURNED, Review

_IN_CHUNK = 5000


class ReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, review: Review) -> Review:
        self.s.add(review)
        await self.s.flush()
        return review

    async def submission(self, submission_id: int) -> Submission | None:
        return await self.s.get(Submission, submission_id)

    async def previous_version(self, submission: Submission) -> Submission | None:
        """The version a submission corrects (None for a first version)."""
        q = select(Submission).where(
            Submission.form_key == submission.form_key,
            Submission.record_key == submission.record_key,
            Submission.version == submission.version - 1,
        )
        return (await self.s.execute(q)).scalar_one_or_none()

    async def of_record(self, form_key: str, record_key: str) -> list[Review]:
        """Every act on one record, oldest first."""
        q = (
            select(Review)
            .where(Review.form_key == form_key, Review.record_key == record_key)
            .order_by(Review.id)
        )
        return list((await self.s.execute(q)).scalars())

    async def decisions(self, submission_ids: Sequence[int]) -> dict[int, Review]:
        """The latest approval or return of each of these versions (absent: waiting)."""
        out: dict[int, Review] = {}
        wanted = sorted(set(submission_ids))
        for i in range(0, len(wanted), _IN_CHUNK):
            q = (
                select(Review)
                .where(
                    Review.submission_id.in_(wanted[i : i + _IN_CHUNK]),
                    Review.decision.in_((APPROVED, RETURNED)),
                )
                .order_by(Review.id)
            )
            for row in (await self.s.execute(q)).scalars():
                assert row.submission_id is not None
                out[row.submission_id] = row  # later rows replace earlier ones
        return out

    async def count_units_by_parent(
        self, area_path: str, unit_kinds: Sequence[str], period: Any
    ) -> dict[int, int]:
        """How many units of `unit_kinds`, valid in `period` (a bot.domain.periods.Period), each
        parent inside the subtree at `area_path` has."""
        q = (
            select(Unit.parent_id, func.count())
            .where(
                Unit.kind.in_(list(unit_kinds)),
                Unit.path.like(_escaped(area_path) + "%", escape="\\"),
                or_(Unit.valid_to.is_(None), Unit.valid_to >= period.start),
                or_(Unit.valid_from.is_(None), Unit.valid_from <= period.end),
            )
            .group_by(Unit.parent_id)
        )
        return {int(p): int(n) for p, n in (await self.s.execute(q)).all() if p is not None}

    async def waiting(
        self, form_keys: Sequence[str], period: str, area_path: str, unit_kinds: Sequence[str]
    ) -> list[tuple[int, int, str]]:
        """(parent id, unit id, unit name) of the units inside `area_path` whose latest version
        for `period` waits for review (no approval or return); by unit path. Lean: no values."""
        newer = aliased(Submission)
        q = (
            select(Unit.parent_id, Unit.id, Unit.name)
            .select_from(Submission)
            .join(Unit, Unit.id == Submission.unit_id)
            .where(
                Submission.form_key.in_(list(form_keys)),
                Submission.period == period,
                Unit.kind.in_(list(unit_kinds)),
                Unit.path.like(_escaped(area_path) + "%", escape="\\"),
                ~exists().where(
                    newer.form_key == Submission.form_key,
                    newer.record_key == Submission.record_key,
                    newer.version > Submission.version,
                ),
                ~exists().where(
                    Review.submission_id == Submission.id, Review.decision.in_((APPROVED, RETURNED))
                ),
            )
            .order_by(Unit.path)
        )
        return [(int(p), int(u), str(n)) for p, u, n in (await self.s.execute(q)).all() if p is not None]

    async def latest_versions(
        self, form_keys: Sequence[str], period: str, area_path: str, unit_kinds: Sequence[str]
    ) -> list[tuple[Submission, Unit]]:
        """The latest version of each record of `form_keys` for `period`, filed by units of
        `unit_kinds` inside the subtree at `area_path`; by unit path."""
        newer = aliased(Submission)
        q = (
            select(Submission, Unit)
            .join(Unit, Unit.id == Submission.unit_id)
            .where(
                Submission.form_key.in_(list(form_keys)),
                Submission.period == period,
                Unit.kind.in_(list(unit_kinds)),
                Unit.path.like(_escaped(area_path) + "%", escape="\\"),
                ~exists().where(
                    newer.form_key == Submission.form_key,
                    newer.record_key == Submission.record_key,
                    newer.version > Submission.version,
                ),
            )
            .order_by(Unit.path, Submission.form_key)
        )
        return [(s, u) for s, u in (await self.s.execute(q)).all()]

    # ---- one unit's history (the staff console's village page) ---------------------------------
    async def of_unit(self, unit_id: int) -> list[Submission]:
        """Every version of every record the unit filed, by form, record and version."""
        q = (
            select(Submission)
            .where(Submission.unit_id == unit_id)
            .order_by(Submission.form_key, Submission.record_key, Submission.version)
        )
        return list((await self.s.execute(q)).scalars())

    async def of_records(self, form_keys: Sequence[str], record_keys: Sequence[str]) -> list[Review]:
        """Every act on these records (a pair is kept when both keys are listed), oldest first."""
        out: list[Review] = []
        wanted = sorted(set(record_keys))
        for i in range(0, len(wanted), _IN_CHUNK):
            q = (
                select(Review)
                .where(
                    and_(
                        Review.form_key.in_(sorted(set(form_keys))),
                        Review.record_key.in_(wanted[i : i + _IN_CHUNK]),
                    )
                )
                .order_by(Review.id)
            )
            out += (await self.s.execute(q)).scalars()
        return sorted(out, key=lambda r: r.id)

    async def contact_names(self, contact_ids: Sequence[int]) -> dict[int, str | None]:
        """The display names of these contacts (absent: the contact was deleted)."""
        wanted = sorted(set(contact_ids))
        if not wanted:
            return {}
        q = select(Contact.id, Contact.display_name).where(Contact.id.in_(wanted))
        return {int(i): n for i, n in (await self.s.execute(q)).all()}

    async def roles_ever(
        self, contact_ids: Sequence[int]
    ) -> list[tuple[int, str, str, datetime, datetime | None]]:
        """(contact id, role, unit path, granted, revoked) of every role these contacts held,
        revoked ones included: the role a report was filed or reviewed in."""
        wanted = sorted(set(contact_ids))
        if not wanted:
            return []
        q = (
            select(
                RoleGrant.contact_id, RoleGrant.role, Unit.path, RoleGrant.granted_at, RoleGrant.revoked_at
            )
            .join(Unit, Unit.id == RoleGrant.unit_id)
            .where(RoleGrant.contact_id.in_(wanted))
            .order_by(RoleGrant.id)
        )
        return [(int(c), str(r), str(p), g, v) for c, r, p, g, v in (await self.s.execute(q)).all()]


def _escaped(prefix: str) -> str:
    """A path prefix for LIKE, its wildcards escaped."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
