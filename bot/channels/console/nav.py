"""The header's links: a page's NavItem is shown to staff who hold its action."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.i18n import N_
from bot.domain.permissions import Action


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str  # msgid, marked with N_ where the item is written
    action: Action


# Add a page's link here (in the order of the header).
NAV: list[NavItem] = [
    NavItem("/console/period", N_("Period at a glance"), Action.COMPILE_REPORT),
    NavItem("/console/onboarding", N_("Onboarding"), Action.CREATE_INVITE),
    NavItem("/console/broadcasts", N_("Broadcasts"), Action.BROADCAST),
    NavItem("/console/downloads", N_("Downloads"), Action.COMPILE_REPORT),
]
