"""The review of reports (DOMAIN.md, "Review and approval"): one row per act, never updated.

A commune officer approves or returns each version of a village report; province staff do the
same for a commune's own report. A version no act has touched is *waiting*; a new version of a
record is waiting again, whatever happened to the one before. The state of a version is its
latest `approved` or `returned` row. A `reopened` row lets the unit's officers change a period
that is locked (after its deadline and grace days): it is tied to the version that was current
when it was written (None when the record had none), so the next version closes it again.

Import Base from storage.models; storage.schema imports this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

APPROVED = "approved"
RETURNED = "returned"
REOPENED = "reopened"
DECISIONS = (APPROVED, RETURNED, REOPENED)
# The review state of a version: one of these; "waiting" when no decision touched it.
WAITING = "waiting"
REVIEW_STATES = (WAITING, APPROVED, RETURNED)


class Review(Base):
    """One review act on one record: approve or return a version, or reopen a locked period."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_record", "form_key", "record_key", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_key: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(128))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    period: Mapped[str] = mapped_column(String(16))
    # The version acted on (approved, returned), or current when a period was reopened (None:
    # the record had no version yet).
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # why a report was returned (or reopened)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    at: Mapped[datetime]
