"""/duyet (/review): the reviewer's list of the period's reports, one report, approve or return.

A commune officer sees the reports of the commune's villages, province staff the communes' own
reports and, for each commune, how far the review of its villages has come. The period is the
open one (`Schedules.open_period`). For a report: its figures and what changed from the version
before; then *duyệt* (approve) or *trả lại* (return, with a typed reason). After the lock a
reviewer can reopen one unit. Every act is a service of bot/services/reviews.py.
"""

from __future__ import annotations

from typing import Any, Literal

from bot.conversations.engine import (
    BACK_WORDS,
    CANCEL_WORDS,
    Context,
    Flow,
    FlowState,
    StateLost,
    Step,
    ask,
    chosen,
    phase_table,
    word_of,
)
from bot.conversations.widgets.unit_picker import UNIT_PREFIX, unit_options
from bot.domain.forms.model import Form
from bot.domain.forms.rules import format_value
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import fold
from bot.domain.periods import Period
from bot.domain.permissions import NotAllowed
from bot.domain.schedules import load_schedules
from bot.reports.review_queue import reviewed
from bot.services.actor import Actor
from bot.services.reviews import (
    REASON_MIN,
    ReviewError,
    ToReview,
    approval_progress,
    approve,
    locked_units,
    reopen,
    reports_to_review,
    return_report,
    reviewer_areas,
)
from storage.models import COMMUNE, Unit
from storage.models_reviews import APPROVED, RETURNED, WAITING

# The form whose default period /duyet opens on, and whose villages the province's progress counts.
VILLAGE_FORM = "village_report"
LIST_LIMIT = 20
PROGRESS_LIMIT = 15


class ReviewState(FlowState):
    phase: Literal["area", "pick", "decide", "reason", "reopen"] = "pick"
    area_id: int | None = None
    period: str = ""
    submission_id: int | None = None


class Review(Flow[ReviewState]):
    name = "review"
    state_type = ReviewState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        areas = list({u.id: u for u in reviewer_areas(self._actor(ctx))}.values())
        if not areas:
            return Step(
                [
                    Reply(
                        t(
                            "Reports are reviewed by commune officers (their villages' reports) and province staff (their communes' reports). Send /me to see your role."
                        )
                    )
                ]
            )
        period, _ = load_schedules(ctx.app_content_dir).open_period(VILLAGE_FORM, ctx.today)
        state = ReviewState(period=period.key)
        if len(areas) == 1:
            state.area_id = areas[0].id
            return await self._list(ctx, state)
        state.phase = "area"
        return Step([ask(state, t("Review the reports of which unit?"), unit_options(areas))], state)

    # ---- the list ---------------------------------------------------------------------------
    async def _list(self, ctx: Context, state: ReviewState, intro: str | None = None) -> Step:
        t = ctx.t
        area = await self._area(ctx, state)
        period = Period.parse(state.period)
        try:
            items = await reports_to_review(ctx.uow, self._actor(ctx), self._forms(ctx), period, area)
        except NotAllowed:  # the role was taken away while the dialogue was open
            return Step([Reply(t("You can no longer review the reports of {unit}.", unit=area.name))])
        count = {s: sum(1 for i in items if i.state == s) for s in (WAITING, APPROVED, RETURNED)}
        lines = [intro] if intro else []
        lines.append(t("📋 Reports to review — {unit}, {period}:", unit=area.name, period=period.label(t)))
        filers = await self._filers(ctx, area, period)
        lines.append(
            t(
                "{waiting} waiting, {approved} approved, {returned} returned, {missing} not sent yet.",
                waiting=t.number(count[WAITING]),
                approved=t.number(count[APPROVED]),
                returned=t.number(count[RETURNED]),
                missing=t.number(max(len(filers) - len(items), 0)),
            )
        )
        returned = [i.unit.name for i in items if i.state == RETURNED]
        if returned:
            lines.append(t("Returned, waiting for their correction: {units}.", units=", ".join(returned)))
        lines += await self._progress(ctx, area, period)
        waiting = [i for i in items if i.state == WAITING]
        options = [Option(f"s:{i.submission.id}", self._item_label(ctx, i)) for i in waiting[:LIST_LIMIT]]
        if waiting:
            lines.append(t("Choose a report to review:"))
        else:
            lines.append(t("Nothing is waiting for your review."))
        schedules = load_schedules(ctx.app_content_dir)
        for form in self._forms(ctx):
            if await locked_units(
                ctx.uow, self._actor(ctx), form, period, area, now=ctx.now, schedules=schedules
            ):
                options.append(Option("reopen", t("Reopen a locked report")))
                break
        if not options:  # nothing to choose: the dialogue ends with the list
            return Step([Reply("\n".join(lines))])
        options.append(Option("done", t("Done")))
        state.phase, state.submission_id = "pick", None
        return Step([ask(state, "\n".join(lines), options)], state)

    def _item_label(self, ctx: Context, item: ToReview) -> str:
        t = ctx.t
        if item.submission.version > 1:
            return t("{unit} (version {version})", unit=item.unit.name, version=item.submission.version)
        return item.unit.name

    async def _filers(self, ctx: Context, area: Unit, period: Period) -> list[Unit]:
        """The units directly below `area` that file a reviewed form."""
        kinds = sorted({k for f in self._forms(ctx) for k in f.unit_kinds})
        return await ctx.uow.units.children(area.id, kinds, on=period.end) if kinds else []

    async def _progress(self, ctx: Context, area: Unit, period: Period) -> list[str]:
        """Above a commune: how far each commune has come reviewing its villages."""
        form = ctx.forms.get(VILLAGE_FORM)
        if area.kind == COMMUNE or form is None:
            return []
        t = ctx.t
        rows = await approval_progress(ctx.uow, self._actor(ctx), form, period, area)
        if not rows:
            return []
        lines = [t("Villages' reports approved by each commune:")]
        for p in rows[:PROGRESS_LIMIT]:
            lines.append(
                t(
                    "• {unit}: {approved} of {expected} approved, {waiting} waiting, {returned} returned",
                    unit=p.unit.name,
                    approved=t.number(p.approved),
                    expected=t.number(p.expected),
                    waiting=t.number(p.waiting),
                    returned=t.number(p.returned),
                )
            )
        if len(rows) > PROGRESS_LIMIT:
            lines.append(t("and {n} more", n=t.number(len(rows) - PROGRESS_LIMIT)))
        return lines

    async def _on_area(self, ctx: Context, state: ReviewState, msg: Incoming) -> Step:
        """One of the units the officer reviews for, then its list."""
        pick = chosen(state, msg)
        areas = {u.id: u for u in reviewer_areas(self._actor(ctx))}
        picked = pick[len(UNIT_PREFIX) :] if pick and pick.startswith(UNIT_PREFIX) else ""
        if not picked.isdigit() or int(picked) not in areas:
            return await self._choices_only(ctx, state)
        state.area_id = int(picked)
        return await self._list(ctx, state)

    async def _on_pick(self, ctx: Context, state: ReviewState, msg: Incoming) -> Step:
        """A waiting report (its button, or part of its unit's name), reopen, or done."""
        pick = chosen(state, msg)
        if pick == "done":
            return Step([Reply(ctx.t("Done."))], None, ("menu", {"quiet": True}))
        if pick == "reopen":
            return await self._ask_reopen(ctx, state)
        if pick is None and msg.kind is Kind.TEXT:
            typed = fold(msg.text)
            matches = [
                i
                for i, label in (state.last_prompt.options if state.last_prompt else [])
                if i.startswith("s:") and typed and typed in fold(label)
            ]
            pick = matches[0] if len(matches) == 1 else None
        if pick is None or not pick.startswith("s:"):
            return await self._choices_only(ctx, state)
        state.submission_id = int(pick[2:])
        return await self._show(ctx, state)

    # ---- one report -----------------------------------------------------------------------
    async def _show(self, ctx: Context, state: ReviewState) -> Step:
        t = ctx.t
        assert state.submission_id is not None
        s = await ctx.uow.reviews.submission(state.submission_id)
        form = ctx.forms.get(s.form_key) if s is not None else None
        unit = await ctx.uow.units.get(s.unit_id) if s is not None else None
        if s is None or form is None or unit is None:
            return await self._list(ctx, state, t("This report is no longer available."))
        period = Period.parse(s.period)
        lines = [
            t(
                "{form} — {unit} — {period}, version {version}, sent on {date}:",
                form=form.title.get(t.locale),
                unit=unit.name,
                period=period.label(t),
                version=s.version,
                date=t.date(s.submitted_at.astimezone(ctx.now.tzinfo).date()),
            )
        ]
        for f in form.fields:
            value = s.values.get(f.key)
            if value is not None and value != "":
                lines.append(f"• {f.label.get(t.locale)}: {format_value(f, value, t.locale)}")
        before = await ctx.uow.reviews.previous_version(s)
        if before is not None:
            changes = [
                f"• {f.label.get(t.locale)}: {format_value(f, before.values.get(f.key), t.locale)}"
                f" → {format_value(f, s.values.get(f.key), t.locale)}"
                for f in form.fields
                if before.values.get(f.key) != s.values.get(f.key)
            ]
            lines.append(
                t("Changes from version {version}:", version=before.version)
                if changes
                else t("No changes from version {version}.", version=before.version)
            )
            lines += changes
        lines.append(t("Approve this report, or return it for correction?"))
        options = [
            Option("approve", t("Approve")),
            Option("return", t("Return")),
            Option("list", t("Back to the list")),
        ]
        state.phase = "decide"
        return Step([ask(state, "\n".join(lines), options)], state)

    async def _on_decide(self, ctx: Context, state: ReviewState, msg: Incoming) -> Step:
        """Approve (duyệt), return (trả lại: then the reason), or back to the list."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "list" or word_of(msg) in BACK_WORDS:
            return await self._list(ctx, state)
        if pick == "return":
            state.phase = "reason"
            text = t(
                "Why is it returned? Type the reason: the village officer reads it and corrects the report."
            )
            return Step([ask(state, text, [Option("back", t("Back"))])], state)
        if pick != "approve":
            return await self._choices_only(ctx, state)
        assert state.submission_id is not None
        try:
            done = await approve(ctx.uow, self._actor(ctx), state.submission_id, now=ctx.now)
        except (ReviewError, NotAllowed) as err:
            return await self._list(ctx, state, self._problem(ctx, err))
        note = t(
            "✅ Approved: {unit}, {period} (version {version}).",
            unit=done.unit.name,
            period=Period.parse(done.submission.period).label(t),
            version=done.submission.version,
        )
        return await self._list(ctx, state, note)

    async def _on_reason(self, ctx: Context, state: ReviewState, msg: Incoming) -> Step:
        """The reason typed, and the report goes back to its officers; or back to the report."""
        t = ctx.t
        if chosen(state, msg) == "back" or word_of(msg) in BACK_WORDS:
            return await self._show(ctx, state)
        if msg.kind is not Kind.TEXT or len(" ".join(msg.text.split())) < REASON_MIN:
            text = t("Please type the reason in a few words (at least {n} characters).", n=REASON_MIN)
            return Step([Reply(text)] + await self.reprompt(ctx, state), state)
        assert state.submission_id is not None
        try:
            done = await return_report(
                ctx.uow, self._actor(ctx), state.submission_id, msg.text, now=ctx.now, forms=ctx.forms
            )
        except (ReviewError, NotAllowed) as err:
            return await self._list(ctx, state, self._problem(ctx, err))
        period = Period.parse(done.submission.period).label(t)
        note = t(
            "↩️ Returned: {unit}, {period} (version {version}).",
            unit=done.unit.name,
            period=period,
            version=done.submission.version,
        )
        if done.notified:
            note += " " + t("Its officers were told the reason and can correct it.")
        else:
            note += " " + t(
                "No officer of {unit} uses the bot yet: please tell them yourself.", unit=done.unit.name
            )
        return await self._list(ctx, state, note)

    # ---- reopening ----------------------------------------------------------------------------
    async def _ask_reopen(self, ctx: Context, state: ReviewState) -> Step:
        t = ctx.t
        area = await self._area(ctx, state)
        period = Period.parse(state.period)
        schedules = load_schedules(ctx.app_content_dir)
        options = []
        for form in self._forms(ctx):
            for unit in await locked_units(
                ctx.uow, self._actor(ctx), form, period, area, now=ctx.now, schedules=schedules
            ):
                options.append(Option(f"r:{form.key}:{unit.id}", unit.name))
        if not options:
            return await self._list(ctx, state, t("No report is locked."))
        options.append(Option("list", t("Back to the list")))
        state.phase = "reopen"
        text = t(
            "{period} is locked. Which unit may change its report again (until it sends a new version)?",
            period=period.label(t),
        )
        return Step([ask(state, text, options)], state)

    async def _on_reopen(self, ctx: Context, state: ReviewState, msg: Incoming) -> Step:
        """The locked unit to reopen, or back to the list."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "list" or word_of(msg) in BACK_WORDS:
            return await self._list(ctx, state)
        if pick is None or not pick.startswith("r:"):
            return await self._choices_only(ctx, state)
        _, form_key, unit_id = pick.split(":")
        period = Period.parse(state.period)
        try:
            await reopen(
                ctx.uow,
                self._actor(ctx),
                ctx.forms[form_key],
                int(unit_id),
                period,
                now=ctx.now,
                content_dir=ctx.app_content_dir,
            )
        except (ReviewError, NotAllowed, KeyError) as err:
            return await self._list(ctx, state, self._problem(ctx, err))
        unit = await ctx.uow.units.get(int(unit_id))
        note = t(
            "🔓 Reopened: {unit} can change its {period} report again, until it sends a new version.",
            unit=unit.name if unit else unit_id,
            period=period.label(t),
        )
        return await self._list(ctx, state, note)

    # ---- plumbing -------------------------------------------------------------------------------
    async def resume(self, ctx: Context, state: ReviewState, msg: Incoming) -> Step:
        if word_of(msg) in CANCEL_WORDS:
            return Step([Reply(ctx.t("Cancelled."))], None, ("menu", {"quiet": True}))
        return await super().resume(ctx, state, msg)

    def leave_warning(self, ctx: Context, state: ReviewState) -> str:
        return ctx.t("You are reviewing reports. What you approved or returned is kept.")

    async def _choices_only(self, ctx: Context, state: ReviewState) -> Step:
        return Step(
            [Reply(ctx.t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
        )

    def _problem(self, ctx: Context, err: Exception) -> str:
        t = ctx.t
        code = err.code if isinstance(err, ReviewError) else ""
        if code == "superseded":
            return t("A newer version of this report has arrived: it is in the list below.")
        if code in ("not_locked", "already_open"):
            return t("This report is not locked: its officers can still change it.")
        if code == "reviewed":
            return t("This version was already reviewed.")
        return t("You can no longer review this report.")

    def _actor(self, ctx: Context) -> Actor:
        return Actor.of(ctx.contact, ctx.grants)

    def _forms(self, ctx: Context) -> list[Form]:
        return [f for f in ctx.forms.values() if isinstance(f, Form) and reviewed(f)]

    async def _area(self, ctx: Context, state: ReviewState) -> Unit:
        unit = await ctx.uow.units.get(state.area_id) if state.area_id is not None else None
        if unit is None:
            raise StateLost(f"no unit {state.area_id} to review")
        return unit

    phases = phase_table(
        {
            "area": _on_area,
            "pick": _on_pick,
            "decide": _on_decide,
            "reason": _on_reason,
            "reopen": _on_reopen,
        }
    )
