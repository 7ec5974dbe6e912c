"""Who is asking: the console's session cookie, its CSRF token, and the area it may see.

`Console.staff` is the dependency of every page: the cookie's session (bot/services
/console_sessions.py), with the contact and their roles as they are now, and Action.CONSOLE held.
`Console.staff_post` adds the CSRF check every POST needs. The cookie is HttpOnly, SameSite=Strict
and, when PUBLIC_URL is https, Secure.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from bot.domain.app import App
from bot.domain.i18n import SUPPORTED, Translator
from bot.domain.permissions import Action, area
from bot.services.actor import Actor
from bot.services.console_sessions import staff_of
from storage.models import Contact, Unit
from storage.uow import Reads

COOKIE = "khuyenhoc_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class NotLoggedIn(Exception):
    """No live session: the page says to send /web in the chat (401)."""


class Forbidden(Exception):
    """Logged in, without the role the page needs (403)."""


@dataclass(frozen=True, slots=True)
class StaffSession:
    """The staff member behind a request."""

    contact: Contact
    actor: Actor
    locale: str
    t: Translator
    csrf: str
    cookie: str

    def holds(self, action: Action) -> bool:
        return self.actor.holds(action)


def areas(staff: StaffSession, action: Action) -> list[Unit]:
    """The units (each with its subtree) where the staff member may take `action`."""
    return area(staff.actor.grants, action)


async def unit_in_area(reads: Reads, staff: StaffSession, unit_id: int, action: Action) -> Unit:
    """The unit, when the staff member may take `action` on it; else 404, the same answer as for
    a unit that does not exist, so that ids outside the area reveal nothing."""
    unit = await reads.units.get(unit_id)
    if unit is None or not staff.actor.may(action, unit):
        raise HTTPException(status_code=404)
    return unit


class Console:
    """The console's shared parts: the app, and the dependencies its pages declare."""

    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def secure_cookies(self) -> bool:
        return (self.app.settings.public_url or "").startswith("https://")

    def cookie_args(self) -> dict[str, Any]:
        return {
            "httponly": True,
            "secure": self.secure_cookies,
            "samesite": "strict",
            "path": "/console",
            "max_age": self.app.settings.console_session_hours * 3600,
        }

    async def _session(self, request: Request) -> StaffSession:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            raise NotLoggedIn
        async with self.app.read_only() as reads:
            found = await staff_of(reads, cookie, self.app.clock.now())
        if found is None:
            raise NotLoggedIn
        locale = found.session.locale or found.contact.locale
        locale = locale if locale in SUPPORTED else "vi"
        staff = StaffSession(
            contact=found.contact,
            actor=found.actor,
            locale=locale,
            t=Translator(locale),
            csrf=found.session.csrf,
            cookie=cookie,
        )
        if not staff.holds(Action.CONSOLE):
            raise Forbidden
        return staff

    async def staff(self, request: Request) -> StaffSession:
        """The dependency of GET pages."""
        return await self._session(request)

    async def staff_post(self, request: Request) -> StaffSession:
        """The dependency of POST routes: the session, and its CSRF token in the form or header."""
        staff = await self._session(request)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, staff.csrf):
            raise HTTPException(status_code=403, detail="csrf")
        return staff

    def require(self, staff: StaffSession, action: Action) -> None:
        """403 unless the staff member holds `action` somewhere."""
        if not staff.holds(action):
            raise Forbidden
