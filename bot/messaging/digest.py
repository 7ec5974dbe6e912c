"""The weekly digest, Mondays 07:00 Vietnam time, to each commune officer and province staff member.

What came in last week (reports and corrections), who is still missing for the open period,
the reports waiting for the officer's review (/duyet), the activities held last week (count,
attendances), and a short ranking (thi đua) of the villages or communes by progress against
their targets. Not an official requirement: the bot's
own service to officers (DOMAIN.md), so it stays short.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from bot.domain.app import App
from bot.domain.clock import VN_TZ
from bot.domain.i18n import Translator, translator
from bot.domain.periods import Period
from bot.domain.schedules import Deadline, load_schedules
from bot.messaging.jobs import Job, scheduled_for
from bot.messaging.outbox import enqueue, notice_key, noticed_units, to_each_channel
from bot.messaging.recipients import COMPILED_REPORT_ROLES, officers
from bot.reports.aggregate import (
    VILLAGE_FORM,
    Activities,
    Compiled,
    Received,
    UnitRef,
    activities_between,
    received_between,
    score,
)
from bot.reports.compiled import compile_unit
from bot.reports.labels import kind_plural
from bot.reports.review_queue import reviewed_forms, waiting_for_review
from storage.models_outreach import KIND_DIGEST as DIGEST

log = logging.getLogger(__name__)

SUBJECT = "weekly"
NAMES = 10
RANKED = 5
# Wrong invite codes concerning an area in a week from which its officers hear about them.
REPEATED_INVITE_FAILURES = 3


def last_week(now: datetime) -> tuple[date, date]:
    """Monday and Sunday of the week before the one `now` falls in (Vietnam time)."""
    today = now.astimezone(VN_TZ).date()
    monday = today - timedelta(days=today.weekday())
    return monday - timedelta(days=7), monday - timedelta(days=1)


def _list(t: Translator, items: list[str], limit: int = NAMES) -> str:
    text = ", ".join(items[:limit])
    if len(items) > limit:
        text += " " + t("and {n} more", n=t.number(len(items) - limit))
    return text


def digest_text(
    t: Translator,
    area: UnitRef,
    first_day: date,
    last_day: date,
    received: list[Received],
    activities: Activities,
    compiled: Compiled,
    deadline: Deadline | None,
    to_review: Sequence[str] = (),
) -> str:
    """`to_review`: the units whose reports of the open period wait for this officer's review."""
    lines = [
        t(
            "📰 Weekly digest {start}–{end} — {unit}",
            start=t.date(first_day),
            end=t.date(last_day),
            unit=area.name,
        )
    ]
    new = [r for r in received if r.version == 1]
    corrected = [r for r in received if r.version > 1]
    if new or corrected:
        line = t("• Reports received: {count}", count=t.number(len(new)))
        if new:
            line += " (" + _list(t, [r.unit.name for r in new]) + ")"
        if corrected:
            line += "; " + t("corrections: {count}", count=t.number(len(corrected)))
        lines.append(line)
    else:
        lines.append(t("• No reports received last week."))

    period = compiled.period
    what = f"{deadline.title.get(t.locale)}, {period.label(t)}" if deadline else period.label(t)
    due = f" ({t('due {date}', date=t.date(deadline.due_date(period)))})" if deadline else ""
    total = compiled.total
    if total.expected and total.reported >= total.expected:
        lines.append(t("• Everyone has sent {what}.", what=what))
    elif total.expected:
        if compiled.leaf_rows:
            missing = [u.name for u in compiled.missing]
        else:
            missing = [
                t(
                    "{unit}: {missing} of {expected} missing",
                    unit=r.unit.name,
                    missing=t.number(r.figures.expected - r.figures.reported),
                    expected=t.number(r.figures.expected),
                )
                for r in compiled.rows
                if r.figures.reported < r.figures.expected
            ]
        kinds = kind_plural(
            t, compiled.rows[0].unit.kind if compiled.leaf_rows and compiled.rows else "village"
        )
        lines.append(
            t(
                "• Not yet sent {what}{due}: {missing} of {expected} {kinds} — {units}",
                what=what,
                due=due,
                missing=t.number(total.expected - total.reported),
                expected=t.number(total.expected),
                kinds=kinds,
                units=_list(t, missing),
            )
        )

    if to_review:
        lines.append(
            t(
                "• Waiting for your review: {count} reports — {units}. Send /review to approve or return them.",
                count=t.number(len(to_review)),
                units=_list(t, list(to_review)),
            )
        )

    if activities.count:
        lines.append(
            t(
                "• Activities held last week: {count}, {participants} attendances.",
                count=t.number(activities.count),
                participants=t.number(activities.participants),
            )
        )
    else:
        lines.append(t("• No activities reported for last week."))

    ranked = sorted(
        ((s, r.unit.name) for r in compiled.rows if (s := score(r.figures, r.targets, period)) is not None),
        key=lambda x: (-x[0], x[1]),
    )[:RANKED]
    if len(ranked) >= 2:
        lines.append(t("📊 Progress towards the targets ({period}):", period=period.label(t)))
        lines += [f"{i}. {name} — {t.percent(s)}" for i, (s, name) in enumerate(ranked, start=1)]
    return "\n".join(lines)


def invite_failures_line(t: Translator, failures: int) -> str | None:
    """A line when wrong invite codes concerning the area came again and again last week
    (someone struggling with a code, or guessing: bot/services/invites.py)."""
    if failures < REPEATED_INVITE_FAILURES:
        return None
    return t(
        "• Wrong invite codes typed last week for your area: {count}. If an officer cannot get in, give them a new code; if nobody should be trying, tell the administrator.",
        count=t.number(failures),
    )


async def send_weekly_digest(app: App) -> int:
    """The Monday job: one digest per officer and area, never twice for the same week."""
    now = scheduled_for(app)
    first_day, last_day = last_week(now)
    week = Period.containing("week", first_day)
    start = datetime.combine(first_day, time(0), tzinfo=VN_TZ)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=VN_TZ)
    period, deadline = load_schedules(app.content_dir).open_period(VILLAGE_FORM, now.astimezone(VN_TZ).date())
    queued = 0
    async with app.read_only() as reads:
        recipients = [
            r
            for r in await officers(
                reads, list(COMPILED_REPORT_ROLES.values()), unit_kinds=list(COMPILED_REPORT_ROLES)
            )
            if COMPILED_REPORT_ROLES.get(r.unit.kind) == r.role
        ]
        failed_codes = await reads.invite_tries.by_unit_path(start, end)
    cache: dict[int, tuple[list[Received], Activities, Compiled, list[str]]] = {}
    reviewed = reviewed_forms(app.forms)
    failed: set[int] = set()  # units whose digest failed: logged and skipped, nobody else waits
    for r in recipients:
        if r.unit.id in failed:
            continue
        try:
            async with app.read_only() as reads:  # heavy reads: no write lock, off the event loop
                if await noticed_units(reads, DIGEST, SUBJECT, week.key, r.contact_id, [r.unit.id]):
                    continue
                if r.unit.id not in cache:
                    cache[r.unit.id] = (
                        await received_between(reads, r.unit, start, end),
                        await activities_between(reads, r.unit, first_day, last_day),
                        await compile_unit(
                            reads, r.unit, period, content_dir=app.content_dir, forms=app.forms, now=now
                        ),
                        await waiting_for_review(reads, r.unit, period, reviewed),
                    )
            received, activities, compiled, to_review = cache[r.unit.id]
            t = translator(r.locale)
            text = digest_text(
                t, r.unit, first_day, last_day, received, activities, compiled, deadline, to_review
            )
            failures = sum(n for path, n in failed_codes if path.startswith(r.unit.path))
            if (line := invite_failures_line(t, failures)) is not None:
                text += "\n" + line
            key = notice_key(DIGEST, SUBJECT, week.key, r.unit.id)
            async with app.uow() as uow:
                messages = to_each_channel(r, {"text": text, "options": []}, [key])
                queued += len(await enqueue(uow, messages, kind=DIGEST, now=now))
                await uow.commit()
        except Exception:
            log.exception("weekly digest %s of unit %s not sent: skipped", week.key, r.unit.id)
            failed.add(r.unit.id)
    log.info("weekly digest %s: %d messages queued, %d unit(s) skipped", week.key, queued, len(failed))
    return queued


JOBS = (Job("weekly_digest", send_weekly_digest, "0 7 * * mon"),)
