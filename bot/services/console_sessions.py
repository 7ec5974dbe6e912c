"""Logging in to the staff console from the chat: /web → a one-time link → a browser session.

No passwords: the chat already knows who the officer is. `login_link` makes a link for the
contact who asked (only staff: Action.CONSOLE); `open_session` uses it up and starts a session;
`staff_of` finds the session behind a cookie with the contact and their roles as they are now, so
a role revoked in the chat stops working in the browser at the next request. Every login and
logout is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.permissions import Action, Grant, holds, load_grants
from bot.services.actor import Actor
from storage.models import Contact
from storage.models_console import ConsoleSession
from storage.readonly import ReadOnlyUnitOfWork
from storage.uow import UnitOfWork

LOGIN_PATH = "/console/login"


async def login_link(uow: UnitOfWork, actor: Actor, now: datetime, ttl: timedelta) -> str:
    """A new one-time token for the actor (NotAllowed without Action.CONSOLE)."""
    actor.require_any(Action.CONSOLE)
    assert actor.contact is not None  # the operator has no chat to receive a link in
    token = await uow.console.new_link(actor.contact.id, now, ttl)
    actor.audit(uow, now, "console.link")
    return token


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{LOGIN_PATH}?token={token}"


@dataclass(frozen=True, slots=True)
class Opened:
    cookie: str  # the session token, for the cookie only
    csrf: str


async def open_session(uow: UnitOfWork, token: str, now: datetime, lifetime: timedelta) -> Opened | None:
    """Use up the link `token` and start a session; None when the link is unknown, used or expired,
    or its contact no longer holds a role that may use the console."""
    contact_id = await uow.console.take_link(token, now)
    if contact_id is None:
        return None
    grants = await load_grants(uow, contact_id)
    if not holds(grants, Action.CONSOLE):
        uow.audit.add(now, "console.login_refused", contact_id)
        return None
    cookie, csrf = await uow.console.new_session(contact_id, now, lifetime)
    uow.audit.add(now, "console.login", contact_id)
    return Opened(cookie, csrf)


@dataclass(frozen=True, slots=True)
class Staff:
    """Who a console request comes from."""

    session: ConsoleSession
    contact: Contact
    grants: tuple[Grant, ...]

    @property
    def actor(self) -> Actor:
        return Actor.of(self.contact, self.grants)


async def staff_of(reads: ReadOnlyUnitOfWork, cookie: str, now: datetime) -> Staff | None:
    """The live session of `cookie` with its contact and current roles; None when there is none."""
    session = await reads.console.session(cookie, now)
    if session is None:
        return None
    contact = await reads.contacts.get(session.contact_id)
    if contact is None:
        return None
    grants = tuple(await load_grants(reads, session.contact_id))
    reads.keep_loaded()  # the rows are used after the read-only block closes
    return Staff(session, contact, grants)


async def end_session(uow: UnitOfWork, cookie: str, now: datetime) -> bool:
    """Log out: the session's cookie opens nothing any more."""
    contact_id = await uow.console.end(cookie, now)
    if contact_id is None:
        return False
    uow.audit.add(now, "console.logout", contact_id)
    return True


async def set_language(uow: UnitOfWork, cookie: str, locale: str) -> None:
    await uow.console.set_locale(cookie, locale)
