"""Pieces several dialogues share: role and channel names, unit descriptions.

The main menu and the help are derived from the command table (bot.handlers.command_table);
a flow that needs the menu asks `ctx.menu`.
"""

from __future__ import annotations

from bot.conversations.engine import Context
from bot.domain.i18n import N_, Translator
from bot.domain.permissions import Action, roles_for
from storage.models import (
    ADMIN,
    COMMUNE_OFFICER,
    MEMBER,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    Unit,
)

ROLE_LABELS = {
    MEMBER: N_("Member"),
    VILLAGE_OFFICER: N_("Village officer"),
    COMMUNE_OFFICER: N_("Commune study-promotion officer"),
    PROVINCE_STAFF: N_("Province study-promotion staff"),
    ADMIN: N_("Administrator"),
}


CHANNEL_NAMES = {"telegram": N_("Telegram"), "zalo": N_("Zalo"), "webchat": N_("the web chat")}


def channel_name(t: Translator, channel: str) -> str:
    """'Zalo', 'Telegram', 'the web chat': a channel as people call it."""
    known = CHANNEL_NAMES.get(channel)
    return t(known) if known else channel


def role_label(t: Translator, role: str) -> str:
    return t(ROLE_LABELS.get(role, role))


async def describe_unit(ctx: Context, unit: Unit) -> str:
    """'Thôn Nà Rụa, Phường Thục Phán, Cao Bằng': the unit and its ancestors, nearest first."""
    chain = [unit, *reversed(await ctx.uow.units.ancestors(unit))]
    return ", ".join(u.name for u in chain)


def units_held_for(
    ctx: Context, action: Action, kinds: frozenset[str] | set[str] | tuple[str, ...]
) -> list[Unit]:
    """The units of `kinds` on which the person holds a role that may take `action`."""
    allowed = roles_for(action)
    return [g.unit for g in ctx.grants if g.role in allowed and g.unit.kind in kinds]
