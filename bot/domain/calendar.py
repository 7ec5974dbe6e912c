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


# ---- dated notices: the recognition calendar (content/campaigns/*.yaml with `notices:`) ----------

CAMPAIGNS_DIR = Path("campaigns")


class CalendarError(ValueError):
    """A campaign file's `notices:` are not as described at the top of the file."""


@dataclass(frozen=True, slots=True)
class CalendarNotice:
    """A message sent once a year to an audience of officers, on a day of the movement's
    calendar (registering for the titles in January–February, recognition in November)."""

    campaign: str
    key: str
    start: str  # "MM-DD": sent from this day on…
    until: str  # …while this day has not passed (a day the bot was down is caught up)
    audience: str  # a name of bot.messaging.recipients.CALENDAR_AUDIENCES
    text_vi: str  # may use {year} and {due} (the next due date of `deadline`)
    text_en: str
    deadline: str | None = None  # an id of content/schedules.yaml
    command: str | None = None  # a command of the command table, offered as a button
    button_vi: str | None = None
    button_en: str | None = None

    def window(self, year: int) -> tuple[date, date]:
        return _md(year, self.start), _md(year, self.until)

    def text(self, locale: str) -> str:
        return self.text_en if locale == "en" else self.text_vi

    def button(self, locale: str) -> str | None:
        return self.button_en if locale == "en" else self.button_vi


def _month_day(value: Any, where: str) -> str:
    text = str(value or "")
    try:
        _md(2024, text)  # a leap year: 02-29 is a day
    except ValueError:
        raise CalendarError(f"{where}: expected a day as MM-DD, not {value!r}") from None
    return text


def _texts(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, dict) or not value.get("vi") or not value.get("en"):
        raise CalendarError(f"{where}: needs both vi and en")
    return str(value["vi"]), str(value["en"])


def parse_notices(campaign: str, data: dict[str, Any]) -> tuple[CalendarNotice, ...]:
    out: list[CalendarNotice] = []
    for i, entry in enumerate(data.get("notices") or ()):
        where = f"{campaign} notices[{i}]"
        if not isinstance(entry, dict) or not entry.get("key") or not entry.get("audience"):
            raise CalendarError(f"{where}: needs key and audience")
        start, until = _month_day(entry.get("from"), where), _month_day(entry.get("until"), where)
        if _md(2024, until) < _md(2024, start):
            raise CalendarError(f"{where}: until comes before from")
        vi, en = _texts(entry.get("text"), f"{where} text")
        button = _texts(entry["button"], f"{where} button") if entry.get("button") else (None, None)
        out.append(
            CalendarNotice(
                campaign=campaign,
                key=str(entry["key"]),
                start=start,
                until=until,
                audience=str(entry["audience"]),
                text_vi=vi,
                text_en=en,
                deadline=str(entry["deadline"]) if entry.get("deadline") else None,
                command=str(entry["command"]) if entry.get("command") else None,
                button_vi=button[0],
                button_en=button[1],
            )
        )
    if len({n.key for n in out}) != len(out):
        raise CalendarError(f"{campaign}: notice keys must be unique")
    return tuple(out)


@lru_cache(maxsize=8)
def calendar_notices(content_dir: Path) -> tuple[CalendarNotice, ...]:
    """Every dated notice of content/campaigns/*.yaml (cached: content changes need a restart)."""
    out: list[CalendarNotice] = []
    for path in sorted((Path(content_dir) / CAMPAIGNS_DIR).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and data.get("notices"):
            out += parse_notices(str(data.get("key") or path.stem), data)
    return tuple(out)
