"""Ad hoc requests (báo cáo đột xuất, seed 000 line 97) as the rest of the bot sees them.

A request is answered like any report, so it is given the three things a report has:

- a form (`request_form`): the form of content/forms/ it names, or the questions typed in the
  chat, checked by the same loader; either way keyed `request_<id>`, so that its answers are
  submissions of their own (versions, rules and compiled sums as for every form);
- a period (`request_period`): the year of its due date, under which the answers are stored;
- a deadline (`request_deadline`): a `Deadline` like those of content/schedules.yaml, limited to
  the request's area, so that the daily reminders reach the officers who have not answered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from bot.domain.forms.loader import form_from_definition
from bot.domain.forms.model import Form
from bot.domain.periods import Period
from bot.domain.schedules import Deadline, RequestTimes
from storage.models import COMMUNE, COMMUNE_OFFICER, DISTRICT, PROVINCE, VILLAGE_KINDS, VILLAGE_OFFICER
from storage.models_requests import ReportRequest

# The officers a request may ask, and the units they answer for.
AUDIENCE_KINDS: Mapping[str, tuple[str, ...]] = {
    VILLAGE_OFFICER: VILLAGE_KINDS,
    COMMUNE_OFFICER: (COMMUNE,),
}
# How deep each kind of unit lies: an audience is reached in an area at its own level or above.
LEVELS: Mapping[str, int] = {PROVINCE: 0, DISTRICT: 1, COMMUNE: 2, **dict.fromkeys(VILLAGE_KINDS, 3)}
MAX_QUESTIONS = 5  # typed in the chat: a few counts, no more (the issue: "up to five")
QUESTION_CHARS = 200
TITLE_CHARS = 120
QUESTION_MAX = 10_000_000  # a typed question's answer is a count
MAX_DAYS_AHEAD = 90
PERIOD_KIND = "year"
REPLY_COMMAND = "traloi"  # bot/handlers/command_table.py: /traloi <id> opens the answer


def reaches(area_kind: str, audience: str) -> bool:
    """Whether an area of this kind can hold officers of the audience (a village holds no commune
    officer)."""
    kinds = AUDIENCE_KINDS.get(audience, ())
    return bool(kinds) and LEVELS.get(area_kind, 99) <= min(LEVELS.get(k, 99) for k in kinds)


def request_form_key(request_id: int) -> str:
    return f"request_{request_id}"


def reply_command(request_id: int) -> str:
    return f"/{REPLY_COMMAND} {request_id}"


def typed_definition(title: str, questions: Sequence[str], unit_kinds: Sequence[str]) -> dict[str, Any]:
    """The questions typed in the chat as a form definition: each a whole number ≥ 0."""
    return {
        "key": "request",
        "title": {"vi": title, "en": title},
        "unit_kinds": list(unit_kinds),
        "period_kinds": [PERIOD_KIND],
        "record": "per_period",
        "for_requests": True,
        "fields": [
            {"key": f"q{i}", "type": "integer", "label": {"vi": q, "en": q}, "min": 0, "max": QUESTION_MAX}
            for i, q in enumerate(questions, 1)
        ],
    }


def request_form(request: ReportRequest, forms: Mapping[str, Form]) -> Form | None:
    """The form the officers answer, keyed `request_<id>`; None when its form left content/."""
    if request.definition is not None:
        base = form_from_definition(request.definition, f"request {request.id}")
    else:
        found = forms.get(request.form_key or "")
        if found is None:
            return None
        base = found
    return dataclasses.replace(base, key=request_form_key(request.id))


def request_period(request: ReportRequest) -> Period:
    return Period(PERIOD_KIND, request.due_date.year)


def is_open(request: ReportRequest, today: date, times: RequestTimes) -> bool:
    """Answers are taken until the due date plus the grace of content/schedules.yaml."""
    return today <= request.due_date + timedelta(days=times.open_days_after_due)


def request_deadline(request: ReportRequest, form: Form, times: RequestTimes) -> Deadline:
    """The request as a deadline: the units of its audience inside its area, due on its date."""
    return Deadline(
        id=request_form_key(request.id),
        form=request_form_key(request.id),
        period_kind=PERIOD_KIND,
        title=form.title,
        expected=AUDIENCE_KINDS[request.audience],
        due=f"{request.due_date.month:02d}-{request.due_date.day:02d}",
        remind_before_days=times.remind_before_days,
        escalate_after_days=(),
        report_after_days=None,
        open_days_after_due=times.open_days_after_due,
        area=request.area_path,
        command=reply_command(request.id),
    )
