"""Reports waiting for review, for the notices that point reviewers at them (digest, escalation).

The review itself is bot/services/reviews.py; this is the read side the scheduled messages share.
A reviewer reviews the reports of the units directly below their own (a commune officer the
commune's villages, province staff the communes' own reports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.periods import Period
from bot.reports.aggregate import UnitRef
from storage.uow import Reads


def reviewed(form: Any) -> bool:
    """Whether a form's reports are reviewed: one record per unit and period, and not a form
    kept for ad hoc requests (their answers go straight to the staff who asked)."""
    return getattr(form, "record", None) == "per_period" and not getattr(form, "for_requests", False)


def reviewed_forms(forms: Mapping[str, Any]) -> list[Any]:
    """The forms whose reports are reviewed."""
    return [f for f in forms.values() if reviewed(f)]


async def waiting_for_review(reads: Reads, area: UnitRef, period: Period, forms: Sequence[Any]) -> list[str]:
    """Names of the units directly below `area` whose report for `period` waits for review."""
    kinds = sorted({k for f in forms for k in f.unit_kinds})
    if not forms or not kinds:
        return []
    rows = await reads.reviews.waiting([f.key for f in forms], period.key, area.path, kinds)
    return [name for parent_id, _, name in rows if parent_id == area.id]


async def waiting_by_reviewed_unit(
    reads: Reads, form_key: str, kinds: Sequence[str], period: Period
) -> dict[int, list[str]]:
    """Everywhere: the unit above (its id) → names of its units whose report waits for review."""
    out: dict[int, list[str]] = {}
    for parent_id, _, name in await reads.reviews.waiting([form_key], period.key, "/", kinds):
        out.setdefault(parent_id, []).append(name)
    return out
