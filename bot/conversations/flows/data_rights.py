"""/dulieu (/dulieu): what the bot keeps about me, with a file of all of it; /xoadulieu
(/xoadulieu): withdraw consent and delete it, after a confirmation (bot/services/personal_data.py).
"""

from __future__ import annotations

from typing import Any, Literal

from bot.conversations.common import channel_name, describe_unit, role_label
from bot.conversations.engine import Context, Flow, FlowState, Step, ask, chosen, phase_table
from bot.conversations.flows.outreach_flows import topic_names
from bot.domain.clock import VN_TZ
from bot.domain.messages import Attachment, Incoming, Kind, Option, Reply
from bot.domain.parsing import parse_yes_no
from bot.domain.periods import Period
from bot.services.actor import Actor
from bot.services.personal_data import erase_personal_data, personal_data
from storage.models import OFFICER_ROLES

REPORTS_LISTED = 10


def _period(ctx: Context, key: str) -> str:
    try:
        return Period.parse(key).label(ctx.t)
    except ValueError:
        return key


async def my_data_reply(ctx: Context) -> Reply:
    """/dulieu: a summary in words, and everything in a JSON file."""
    t = ctx.t
    data = await personal_data(ctx.uow, Actor.of(ctx.contact, ctx.grants), ctx.contact, ctx.now)
    c = data.contact

    def day(d: Any) -> str:
        return t.date(d.astimezone(VN_TZ).date())

    lines = [
        t("What the bot keeps about you:"),
        "• " + t("Name in your chat app: {name}", name=c.display_name or t("(none)")),
        "• " + t("Language: {language}", language="Tiếng Việt" if c.locale == "vi" else "English"),
        "• "
        + (
            t("You agreed on {date}.", date=day(c.consent_at))
            if c.consent_at
            else t("You have not agreed (not registered).")
        ),
    ]
    chats = ", ".join(
        t("{channel} (since {date})", channel=channel_name(t, ch.channel), date=day(ch.since))
        for ch in data.chats
    )
    lines.append("• " + t("Chats: {chats}", chats=chats))
    active = [r for r in data.roles if r.revoked_at is None]
    for r in active:
        lines.append(f"• {role_label(t, r.role)}: {await describe_unit(ctx, r.unit)}")
    if data.stopped_at is not None:
        lines.append("• " + t("Messages stopped on {date}.", date=day(data.stopped_at)))
    elif active:
        lines.append("• " + t("Topics: {topics}", topics=topic_names(ctx, data.topics or [])))
    lines.append(
        "• "
        + t(
            "Messages the bot sent you (kept {days} days): {n}",
            days=t.number(ctx.settings.sent_message_retention_days),
            n=t.number(data.messages.count),
        )
    )
    lines.append("• " + t("Reports you sent: {n}", n=t.number(len(data.reports))))
    for report in data.reports[-REPORTS_LISTED:]:
        form = ctx.forms.get(report.form_key)
        title = form.title.get(t.locale) if form is not None else report.form_key
        lines.append(
            f"   – {title}, {report.unit_name}, {_period(ctx, report.period)} ({day(report.submitted_at)})"
        )
    lines += [
        "",
        t("The attached file lists all of it, with every figure of your reports."),
        t(
            "Why: to run the reports and the news you signed up for. Kept as long as you use the bot. To delete it, send /deletemydata."
        ),
    ]
    stamp = ctx.now.astimezone(VN_TZ).strftime("%Y-%m-%d")
    attachment = Attachment(f"du-lieu-ca-nhan-{stamp}.json", "application/json", data.as_json(), keep=False)
    return Reply("\n".join(lines), attachments=[attachment])


class EraseState(FlowState):
    phase: Literal["confirm"] = "confirm"


class EraseMyData(Flow[EraseState]):
    """/xoadulieu: say what goes and what stays, then delete on "yes"."""

    name = "erase_data"
    state_type = EraseState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        state = EraseState()
        lines = [
            t(
                "This withdraws your consent and deletes what the bot keeps about you: your name, your chats on every app, your roles and area, your topics, your unfinished dialogue and the messages kept for you."
            ),
            t(
                "The reports you sent stay, because they are official records of your village or commune: they will name your unit and role, not you."
            ),
        ]
        officer = [g for g in ctx.grants if g.role in OFFICER_ROLES]
        for g in officer:
            lines.append(
                t(
                    "You will no longer be {role} of {unit}: to report again you will need a new invite code.",
                    role=role_label(t, g.role),
                    unit=g.unit.name,
                )
            )
        lines.append(t("This cannot be undone. Delete your data?"))
        options = [Option("erase", t("Delete my data")), Option("keep", t("Keep my data"))]
        return Step([ask(state, "\n".join(lines), options)], state)

    async def _on_confirm(self, ctx: Context, state: EraseState, msg: Incoming) -> Step:
        """Delete my data: consent withdrawn and data deleted; keep: nothing changes."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick is None and msg.kind is Kind.TEXT:
            yn = parse_yes_no(msg.text)
            pick = None if yn is None else ("erase" if yn else "keep")
        if pick is None:
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        if pick == "keep":
            return Step([Reply(t("Nothing was deleted."))], None, ("menu", {}))
        await erase_personal_data(ctx.uow, Actor.of(ctx.contact, ctx.grants), ctx.contact, ctx.now)
        ctx.grants = []
        done = t(
            "Done: your consent is withdrawn and your data is deleted. The bot will not message you again. If you write to it later, it starts afresh."
        )
        return Step([Reply(done)])

    phases = phase_table({"confirm": _on_confirm})
