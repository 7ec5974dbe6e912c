"""Answers that commands give at once, without starting a dialogue."""

from __future__ import annotations

from bot.conversations.common import describe_unit, role_label
from bot.conversations.engine import Context
from bot.conversations.flows.outreach_flows import outreach_state
from bot.domain.messages import Reply
from bot.domain.permissions import Action, holds


async def whoami(ctx: Context) -> Reply:
    """/toi: roles, areas, language, and whether the weekly article and news come or were stopped."""
    t = ctx.t
    lines: list[str] = []
    for g in ctx.grants:
        lines.append(f"• {role_label(t, g.role)}: {await describe_unit(ctx, g.unit)}")
    if not lines:
        lines.append(t("You are not registered yet. Send /start."))
    else:
        lines.insert(0, t("Your roles and areas:"))
        if holds(ctx.grants, Action.REPORT):
            lines.append(t("You can send reports for these areas."))
    lines.append(t("Language: {language}", language="Tiếng Việt" if t.locale == "vi" else "English"))
    if ctx.grants and ctx.contact.consent_at is not None:  # outreach goes to those who agreed
        lines.append(await outreach_state(ctx))
    return Reply("\n".join(lines))
