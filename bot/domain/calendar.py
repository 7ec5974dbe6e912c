"""The movement's calendar as data: Lifelong Learning Week dates per year (content/campaigns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CAMPAIGN_FILE = Path("campaigns") / "lifelong-learning-week.yaml"


@dataclass(frozen=True, slots=True)
class Week:
    start: date
    end: date
    theme_vi: str | None = None
    theme_en: str | None = None


@lru_cache(maxsize=8)
def _campaign(content_dir: Path) -> dict[str, Any]:
    path = content_dir / CAMPAIGN_FILE
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


def _md(year: int, text: str) -> date:
    month, day = (int(x) for x in text.split("-"))
    return date(year, month, day)


def lifelong_learning_week(year: int, content_dir: Path) -> Week:
    data = _campaign(content_dir)
    default = data.get("default") or {}
    entry = (data.get("years") or {}).get(year) or {}
    start = entry.get("start") or default.get("start", "10-01")
    end = entry.get("end") or default.get("end", "10-07")
    theme = entry.get("theme") or {}
    return Week(_md(year, str(start)), _md(year, str(end)), theme.get("vi"), theme.get("en"))


def is_lifelong_learning_week(day: date, content_dir: Path) -> bool:
    week = lifelong_learning_week(day.year, content_dir)
    return week.start <= day <= week.end
