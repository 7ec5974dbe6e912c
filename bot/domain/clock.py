"""The injected clock: logic never reads the system time directly (DESIGN.md, boundary 4)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(tz=VN_TZ)


class FixedClock:
    """A clock for tests: stays where it is put, moves when told."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at


def local_today(clock: Clock) -> date:
    """Today's date in Vietnam, whatever the server's timezone."""
    return clock.now().astimezone(VN_TZ).date()
