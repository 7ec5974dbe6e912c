"""The console's pages: each module's `create_router(console)`.

Add a page: write `pages/NAME.py` with `create_router(console: Console) -> APIRouter` (paths
under /console), append it to PAGES, and, if it has a header link, a NavItem to nav.NAV.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from bot.channels.console.auth import Console
from bot.channels.console.pages import broadcasts, downloads, onboarding, period, village

PAGES: list[Callable[[Console], APIRouter]] = [
    period.create_router,
    village.create_router,
    onboarding.create_router,
    downloads.create_router,
    broadcasts.create_router,
]
