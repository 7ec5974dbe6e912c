"""Tables added for the reports work: the scheduler's lease and job runs, and report files.

Import Base from storage.models; storage.schema imports this module.

- `scheduler_leases`: one row per lease name. The instance whose `holder` is written there and
  whose `expires_at` lies in the future is the only one that runs scheduled jobs; it renews the
  row well before expiry, and another instance takes over an expired row.
- `scheduler_job_runs`: one row per (job, scheduled time), inserted before the job runs. The
  unique key is the fence that keeps a job from running twice for the same slot, even when a
  paused old leader wakes up after a new one took over.
- `report_files`: rendered files (.xlsx, .png, .csv) stored once by content hash; outbox payloads
  refer to them by id ({"filename", "content_type", "file_id"}) instead of carrying the bytes, so
  the report a hundred officers receive is kept once. `kept_files` (storage/models_files.py)
  lets a web chat user download one again; the retention job deletes what is no longer used.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class SchedulerLease(Base):
    """Who runs the jobs now, and until when (unless renewed)."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class JobRun(Base):
    """One scheduled run of one job: claimed (inserted) first, then finished or failed."""

    __tablename__ = "scheduler_job_runs"
    __table_args__ = (UniqueConstraint("job", "scheduled_for"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    scheduled_for: Mapped[datetime]
    holder: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    result: Mapped[int | None] = mapped_column(Integer)  # what the job counted (messages queued…)
    error: Mapped[str | None] = mapped_column(Text)


class ReportFile(Base):
    """A rendered report file, kept once whoever receives it."""

    __tablename__ = "report_files"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    # Last stored again (the same bytes for another message): the retention job deletes a file
    # unused for kept_file_days that no kept file holds (storage/models_files.py).
    used_at: Mapped[datetime | None]
