"""Outreach to members and officers: subscriptions (/chude, /dung, /batdau), the newest item
(/tin), the weekly tip, the Lifelong Learning Week campaign and the calendar's dated notices
(the recognition calendar: registering for the titles in January–February, recognition in
November — content/campaigns/recognition.yaml).

Service functions take the caller's unit of work and `now`; the job functions
at the end (`send_weekly_tips`, `run_lifelong_learning_week_campaign`) each take the App, open
their own units of work and return how many messages they queued. The scheduler may call them
as often as it likes (hourly is fine): every message a job queues is recorded as a notice keyed
by what it is ("tip:2026-11-22", "llw:2026:day:3"), so a job that runs twice, or dies halfway
and runs again, queues each message once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.domain.app import App
from bot.domain.calendar import (
    CAMPAIGN_FILE,
    CalendarNotice,
    Week,
    calendar_notices,
    lifelong_learning_week,
)
from bot.domain.clock import VN_TZ
from bot.domain.i18n import Translator, translator
from bot.domain.schedules import load_schedules
from bot.messaging.content import item_text, suits
from bot.messaging.jobs import Job
from bot.messaging.outbox import Outgoing, enqueue, send_outbox
from bot.messaging.recipients import (
    CALENDAR_AUDIENCES,
    CAMPAIGN_OFFICER_ROLES,
    CAMPAIGN_REPORTER_ROLES,
    reachable,
)
from storage.models import MEMBER, Contact
from storage.models_outreach import KIND_CAMPAIGN, KIND_TIP, OUTREACH_KINDS, ContentItem, Subscription
from storage.uow import Reads, UnitOfWork

CHUNK = 1000
LLW = "lifelong_learning_week"


def footer(t: Translator) -> str:
    """How to stop: in every outreach message, because channels without buttons need words."""
    return t("Send /stop to stop these messages, /topics to choose topics.")


# ------------------------------------------------------------------------------ subscriptions


async def set_topics(uow: UnitOfWork, contact_id: int, topics: Sequence[str], now: datetime) -> Subscription:
    """Choose topics (empty: every topic). Choosing is no opt-out: a stop stays a stop."""
    sub = await uow.subscriptions.ensure(contact_id, now)
    sub.topics = sorted(set(topics))
    sub.updated_at = now
    return sub


async def stop_outreach(uow: UnitOfWork, contact_id: int, now: datetime) -> int:
    """/dung: nothing more is sent, including what is already queued. Returns rows cancelled."""
    sub = await uow.subscriptions.ensure(contact_id, now)
    if sub.stopped_at is None:
        sub.stopped_at = now
    sub.updated_at = now
    return await uow.outbox.cancel_queued(now, "opted out", contact_id=contact_id, kinds=OUTREACH_KINDS)


async def resume_outreach(uow: UnitOfWork, contact_id: int, now: datetime) -> bool:
    """/batdau: messages again. False when they were not stopped."""
    sub = await uow.subscriptions.ensure(contact_id, now)
    was_stopped = sub.stopped_at is not None
    sub.stopped_at = None
    sub.updated_at = now
    return was_stopped


# ------------------------------------------------------------------------------ items


def choose_item(candidates: Sequence[ContentItem], sent: dict[str, datetime]) -> ContentItem | None:
    """The first candidate never sent; when all were sent, the one sent longest ago.

    Candidates come newest first, so new articles go out before old ones.
    """
    for item in candidates:
        if item.item_key not in sent:
            return item
    if not candidates:
        return None
    return min(candidates, key=lambda i: (sent[i.item_key], i.item_key))


async def newest_item_for(
    reads: Reads, contact: Contact, roles: Sequence[str], topics: Sequence[str], today: date
) -> ContentItem | None:
    """/tin: the newest item in the contact's language for their roles and topics (any topic
    when none of theirs has an item)."""
    items = await reads.content.live(contact.locale)
    roles = list(roles) or [MEMBER]
    for wanted in (topics, ()):
        for item in items:
            if suits(item, today, roles, wanted):
                return item
    return None


def item_payload(item: ContentItem, t: Translator, icon: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": f"{icon} {item_text(item)}\n\n{footer(t)}", "item": item.item_key}
    if item.image:
        payload["image"] = item.image
    return payload


# ------------------------------------------------------------------------------ notices


@dataclass(frozen=True, slots=True)
class Target:
    """Someone a job may write to: their language, topics and the units of their roles."""

    contact_id: int
    locale: str
    topics: tuple[str, ...]
    unit_paths: tuple[str, ...]


Builder = Callable[[Target], dict[str, Any] | None]


async def _targets(reads: Reads, roles: Sequence[str], key: str, after: int, limit: int) -> list[Target]:
    """The next contacts (by id, after `after`) holding one of `roles`, who may receive outreach
    (bot/messaging/recipients.py), and have no notice `key` yet."""
    rows = await reads.recipients.outreach_without_notice(roles, key, after, limit)
    return [Target(*row) for row in rows]


async def queue_notices(
    uow: UnitOfWork, targets: Sequence[Target], key: str, build: Builder, *, kind: str, now: datetime
) -> int:
    """Queue a message (from `build`; None skips) to each target, under the notice `key`:
    even two jobs racing send each notice once (bot/messaging/outbox.py)."""
    where = await reachable(uow, [t.contact_id for t in targets])
    messages = []
    for target in targets:
        if target.contact_id not in where:
            continue
        payload = build(target)
        if payload is not None:
            messages.append(Outgoing(target.contact_id, *where[target.contact_id], payload, (key,)))
    queued = await enqueue(uow, messages, kind=kind, now=now)
    items = [(m.contact_id, str(m.payload["item"])) for m in queued if m.payload.get("item")]
    await uow.sent_items.record(items, now)
    return len(queued)


BuilderFactory = Callable[[UnitOfWork, list[Target]], Awaitable[Builder]]


async def _run_notice(
    app: App,
    roles: Sequence[str],
    key: str,
    factory: BuilderFactory,
    *,
    kind: str,
    keep: Callable[[Target], bool] | None = None,
) -> int:
    """Queue notice `key` to everyone with `roles` (and `keep`), a chunk per transaction."""
    total, after = 0, 0
    while True:
        async with app.uow() as uow:
            now = app.clock.now()
            targets = await _targets(uow, roles, key, after, CHUNK)
            if not targets:
                return total
            after = targets[-1].contact_id
            chosen = [t for t in targets if keep is None or keep(t)]
            build = await factory(uow, chosen)
            total += await queue_notices(uow, chosen, key, build, kind=kind, now=now)
            await uow.commit()


# ------------------------------------------------------------------------------ weekly tip


def tip_slot(now: datetime, weekday: int, hour: int) -> datetime:
    """The latest weekly slot (weekday 0 = Monday … 6 = Sunday, at `hour` in Vietnam) ≤ now."""
    local = now.astimezone(VN_TZ)
    slot_day = local.date() - timedelta(days=(local.weekday() - weekday) % 7)
    slot = datetime.combine(slot_day, time(hour), tzinfo=VN_TZ)
    return slot if slot <= local else slot - timedelta(days=7)


def tip_builder(items: list[ContentItem], sent: dict[int, dict[str, datetime]], today: date) -> Builder:
    def build(target: Target) -> dict[str, Any] | None:
        candidates = [
            i for i in items if i.language == target.locale and suits(i, today, [MEMBER], target.topics)
        ]
        item = choose_item(candidates, sent.get(target.contact_id, {}))
        return None if item is None else item_payload(item, translator(target.locale), "💡")

    return build


async def send_weekly_tips(app: App) -> int:
    """Job: each subscribed member gets this week's item (topics, language, no repeats until
    every suitable item was sent). Before the week's slot (default Sunday 19:00), or more than
    `weekly_tip_window_hours` after it, it does nothing. Returns the messages queued."""
    s = app.settings
    now = app.clock.now()
    slot = tip_slot(now, s.weekly_tip_weekday, s.weekly_tip_hour)
    if now - slot > timedelta(hours=s.weekly_tip_window_hours):
        return 0
    today = now.astimezone(VN_TZ).date()

    async def factory(uow: UnitOfWork, targets: list[Target]) -> Builder:
        items = await uow.content.live()
        sent = await uow.sent_items.sent([t.contact_id for t in targets])
        return tip_builder(items, sent, today)

    return await _run_notice(app, (MEMBER,), f"tip:{slot.date().isoformat()}", factory, kind=KIND_TIP)


# ------------------------------------------------------------------------------ the Week


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """The Week of one year with its reminders (days before) and report deadline."""

    year: int
    week: Week
    reminder_days: tuple[int, ...]
    deadline: date


def _campaign_data(content_dir: Path) -> dict[str, Any]:
    path = content_dir / CAMPAIGN_FILE
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


def campaign_plan(year: int, content_dir: Path) -> CampaignPlan:
    """Dates from content/campaigns/lifelong-learning-week.yaml (defaults: 14 and 3 days
    before; reports due 12 October)."""
    data = _campaign_data(content_dir)
    outreach = data.get("outreach") or {}
    entry = (data.get("years") or {}).get(year) or {}
    days = entry.get("reminder_days_before") or outreach.get("reminder_days_before") or [14, 3]
    deadline = str(entry.get("report_deadline") or outreach.get("report_deadline") or "10-12")
    month, day = (int(x) for x in deadline.split("-"))
    return CampaignPlan(
        year,
        lifelong_learning_week(year, content_dir),
        tuple(sorted({int(d) for d in days}, reverse=True)),
        date(year, month, day),
    )


def _theme(week: Week, locale: str) -> str | None:
    return week.theme_en if locale == "en" and week.theme_en else week.theme_vi


def _officer_text(plan: CampaignPlan, target: Target, kind: str, today: date) -> dict[str, Any]:
    t = translator(target.locale)
    week = plan.week
    start, end, deadline = t.date(week.start), t.date(week.end), t.date(plan.deadline)
    lines: list[str] = []
    if kind == "remind":
        lines.append(
            t(
                "📅 Lifelong Learning Week {year}: from {start} to {end}, in {days} days.",
                year=plan.year,
                start=start,
                end=end,
                days=(week.start - today).days,
            )
        )
        if theme := _theme(week, target.locale):
            lines.append(t("Theme: “{theme}”.", theme=theme))
        lines.append(
            t(
                "Plan your area's activities now: an opening ceremony, reading festivals, classes "
                "and thematic sessions, contests, honouring learning families and clans."
            )
        )
        lines.append(
            t(
                "Report each activity with /activity: activities dated inside the Week "
                "count for it automatically."
            )
        )
    elif kind == "report":
        if today == week.end:
            lines.append(t("🗓 Today is the last day of the Lifelong Learning Week {year}.", year=plan.year))
        else:
            lines.append(t("🗓 The Lifelong Learning Week {year} ended on {end}.", year=plan.year, end=end))
        lines.append(
            t(
                "Please report the Week's activities of your area with /activity, one report per "
                "activity: those dated {start}–{end} are counted for the Week automatically.",
                start=start,
                end=end,
            )
        )
        lines.append(t("Please send them by {deadline}.", deadline=deadline))
    else:
        lines.append(
            t(
                "⏰ The reports of the Lifelong Learning Week {year} are due on {deadline}, "
                "and we have no Week activity from your area yet. Please send them with /activity.",
                year=plan.year,
                deadline=deadline,
            )
        )
    lines += ["", footer(t)]
    payload: dict[str, Any] = {"text": "\n".join(lines)}
    if kind != "remind":  # a button (Zalo: the command to type) that opens the activity form
        payload["options"] = [{"id": "cmd:hoatdong", "label": t("Activity report")}]
    return payload


def _week_item_builder(
    items: list[ContentItem], sent: dict[int, dict[str, datetime]], day: int, today: date
) -> Builder:
    def build(target: Target) -> dict[str, Any] | None:
        ours = [
            i
            for i in items
            if i.language == target.locale
            and i.campaign == LLW
            and suits(i, today, [MEMBER], (), campaigns=True)
        ]
        seen = sent.get(target.contact_id, {})
        todays = [i for i in ours if i.campaign_day == day and i.item_key not in seen]
        others = [i for i in ours if i.item_key not in seen]
        pick = todays or others
        return item_payload(pick[0], translator(target.locale), "📚") if pick else None

    return build


async def _reported_paths(reads: Reads, plan: CampaignPlan) -> list[str]:
    """Units with an activity report flagged for this year's Week."""
    since = datetime.combine(plan.week.start - timedelta(days=30), time(), tzinfo=VN_TZ)
    paths = []
    for values, path in await reads.submissions.values_with_unit_paths("activity_report", since):
        day = str(values.get("activity_date") or "")
        if values.get("is_lifelong_learning_week") and day.startswith(str(plan.year)):
            paths.append(path)
    return paths


async def run_lifelong_learning_week_campaign(app: App) -> int:
    """Job: the Lifelong Learning Week around today (call it daily, or hourly).

    From `campaign_send_hour` (Vietnam time) on the day: reminders to officers 14 and 3 days
    before the Week (from the YAML), an item a day to members during the Week, the request to
    report the Week's activities on its last day, and on the deadline a reminder to the
    officers whose area has reported no Week activity yet. A day missed (the bot was down)
    is caught up while the next step has not begun. Returns the messages queued.
    """
    now = app.clock.now()
    local = now.astimezone(VN_TZ)
    if local.hour < app.settings.campaign_send_hour:
        return 0
    today = local.date()
    plan = campaign_plan(today.year, app.content_dir)
    week, year = plan.week, plan.year
    total = 0

    def officer_factory(kind: str) -> BuilderFactory:
        async def factory(uow: UnitOfWork, targets: list[Target]) -> Builder:
            return lambda target: _officer_text(plan, target, kind, today)

        return factory

    # Reminders: the 14-day one is due from 14 days before until the 3-day one is.
    for i, days in enumerate(plan.reminder_days):
        begins = week.start - timedelta(days=days)
        following = plan.reminder_days[i + 1] if i + 1 < len(plan.reminder_days) else 0
        if begins <= today < week.start - timedelta(days=following):
            total += await _run_notice(
                app,
                CAMPAIGN_OFFICER_ROLES,
                f"llw:{year}:remind:{days}",
                officer_factory("remind"),
                kind=KIND_CAMPAIGN,
            )
    if week.start <= today <= week.end:
        day = (today - week.start).days + 1

        async def items_factory(uow: UnitOfWork, targets: list[Target]) -> Builder:
            items = await uow.content.live()
            sent = await uow.sent_items.sent([t.contact_id for t in targets])
            return _week_item_builder(items, sent, day, today)

        total += await _run_notice(app, (MEMBER,), f"llw:{year}:day:{day}", items_factory, kind=KIND_CAMPAIGN)
    if week.end <= today < plan.deadline:
        total += await _run_notice(
            app, CAMPAIGN_REPORTER_ROLES, f"llw:{year}:report", officer_factory("report"), kind=KIND_CAMPAIGN
        )
    if plan.deadline <= today <= plan.deadline + timedelta(days=2):
        async with app.read_only() as reads:
            reported = await _reported_paths(reads, plan)

        def not_reported(target: Target) -> bool:
            return not any(r.startswith(p) for p in target.unit_paths for r in reported)

        total += await _run_notice(
            app,
            CAMPAIGN_REPORTER_ROLES,
            f"llw:{year}:deadline",
            officer_factory("deadline"),
            kind=KIND_CAMPAIGN,
            keep=not_reported,
        )
    return total


# ------------------------------------------------------------------------------ the calendar


def calendar_payload(notice: CalendarNotice, locale: str, year: int, due: date | None) -> dict[str, Any]:
    """A dated notice in the reader's language, with the stop footer and its button, if any."""
    t = translator(locale)
    text = notice.text(locale).format(year=year, due=t.date(due) if due else "")
    payload: dict[str, Any] = {"text": f"{text}\n\n{footer(t)}"}
    label = notice.button(locale)
    if notice.command and label:
        payload["options"] = [{"id": f"cmd:{notice.command}", "label": label}]
    return payload


def _next_due(app: App, deadline_id: str | None, today: date) -> date | None:
    """The next due date of a deadline of content/schedules.yaml (today's counts)."""
    if deadline_id is None:
        return None
    deadline = load_schedules(app.content_dir).deadline(deadline_id)
    due = deadline.periods_due_near(today, before=400, after=0)
    return deadline.due_date(due[0]) if due else None


async def run_calendar_notices(app: App) -> int:
    """Job: the dated notices of content/campaigns/*.yaml whose days include today, each once a
    year to each person of its audience (from `campaign_send_hour`, Vietnam time; a day missed
    is caught up while the notice's days last). Returns the messages queued."""
    now = app.clock.now()
    local = now.astimezone(VN_TZ)
    if local.hour < app.settings.campaign_send_hour:
        return 0
    today, total = local.date(), 0
    for notice in calendar_notices(app.content_dir):
        start, until = notice.window(today.year)
        if not start <= today <= until:
            continue
        due = _next_due(app, notice.deadline, today)

        def factory(notice: CalendarNotice = notice, due: date | None = due) -> BuilderFactory:
            async def build(uow: UnitOfWork, targets: list[Target]) -> Builder:
                return lambda target: calendar_payload(notice, target.locale, today.year, due)

            return build

        total += await _run_notice(
            app,
            CALENDAR_AUDIENCES[notice.audience],
            f"calendar:{notice.campaign}:{notice.key}:{today.year}",
            factory(),
            kind=KIND_CAMPAIGN,
        )
    return total


# ------------------------------------------------------------------------------ scheduling


# Every job is idempotent, so these times only decide how soon after its moment a message goes
# out; content/schedules.yaml `jobs:` may override them.
JOBS = (
    Job("outreach.weekly_tips", send_weekly_tips, "*/15 * * * *"),
    Job("outreach.lifelong_learning_week", run_lifelong_learning_week_campaign, "5 * * * *"),
    Job("outreach.calendar", run_calendar_notices, "10 * * * *"),
    Job("outbox.send", send_outbox, "every 30s"),
)
