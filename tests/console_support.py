"""The staff console in tests: an HTTP client on the real ASGI app, logged in as a contact.

    async with console_client(app) as client:
        await log_in(client, app, "commune-officer")   # the contact's external id on channel "test"
        page = await client.get("/console/period")
        token = csrf_of(page.text)

`log_in` goes the way an officer does: the service makes the one-time link (what /web sends),
the client opens it and presses "Log in", and keeps the session cookie.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from bot.domain.app import App
from bot.domain.permissions import load_grants
from bot.runtime.http import create_http_app
from bot.services.actor import Actor
from bot.services.console_sessions import link_url, login_link

BASE = "http://testserver"


@asynccontextmanager
async def console_client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    api = create_http_app(app)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def login_url(app: App, external_id: str, channel: str = "test") -> str:
    """The one-time link /web would send to the contact (a path with its token)."""
    now = app.clock.now()
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity(channel, external_id)
        assert contact is not None, external_id
        actor = Actor.of(contact, await load_grants(uow, contact.id))
        token = await login_link(uow, actor, now, timedelta(minutes=app.settings.console_link_minutes))
        await uow.commit()
    return link_url("", token)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def log_in(client: httpx.AsyncClient, app: App, external_id: str, channel: str = "test") -> None:
    url = await login_url(app, external_id, channel)
    page = await client.get(url)
    assert page.status_code == 200, page.text
    done = await client.post("/console/login", data={"token": token_of(url)})
    assert done.status_code == 303, done.text
    assert "khuyenhoc_console" in client.cookies


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of a console page's forms."""
    found = _CSRF.search(html)
    assert found, "no csrf field on the page"
    return found.group(1)
