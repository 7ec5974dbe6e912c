"""/web: a one-time link to the staff console in the browser (bot/services/console_sessions.py)."""

from __future__ import annotations

from datetime import timedelta

from bot.conversations.engine import Context
from bot.domain.messages import Reply
from bot.domain.permissions import Action
from bot.domain.settings import Settings
from bot.services.actor import Actor
from bot.services.console_sessions import link_url, login_link


def base_url(settings: Settings) -> str:
    """Where browsers reach this app: PUBLIC_URL, else the local address it listens on."""
    if settings.public_url:
        return settings.public_url
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


async def console_link_reply(ctx: Context) -> Reply:
    t = ctx.t
    actor = Actor.of(ctx.contact, ctx.grants)
    if not actor.holds(Action.CONSOLE):
        return Reply(t("The web console is for commune and province officers."))
    minutes = ctx.settings.console_link_minutes
    token = await login_link(ctx.uow, actor, ctx.now, timedelta(minutes=minutes))
    return Reply(
        t(
            "Open this link in your browser to use the web console (it works once, for {minutes} minutes; do not share it):",
            minutes=minutes,
        )
        + "\n"
        + link_url(base_url(ctx.settings), token)
    )
