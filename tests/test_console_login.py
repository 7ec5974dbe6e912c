"""Logging in to the staff console from the chat (/web), its session cookie, CSRF and logging out
(issue 12, item 1). Through the real ASGI app and the real chat handler, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.permissions import NotAllowed, load_grants
from bot.services.actor import Actor
from bot.services.console_sessions import login_link
from storage.db import Database
from storage.models import COMMUNE_OFFICER, MEMBER, VILLAGE_OFFICER
from tests.console_support import console_client, csrf_of, log_in, login_url, token_of
from tests.support import START, Chat, make_app, make_contact, seed_tree


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url, FixedClock(START))
    tree = await seed_tree(app)
    await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "village", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "member", MEMBER, tree.village)
    await make_contact(app, "english", COMMUNE_OFFICER, tree.commune, locale="en")
    yield app
    await app.db.dispose()  # else the garbage collector closes its connections in a later test


async def test_web_in_the_chat_gives_a_link_that_logs_in_once(app: App) -> None:
    chat = Chat(app, "commune")
    await chat.say("/web")
    assert "http://127.0.0.1:8080/console/login?token=" in chat.text
    assert "10" in chat.text  # minutes
    url = chat.text.split("http://127.0.0.1:8080", 1)[1].split()[0]
    async with console_client(app) as client:
        page = await client.get(url)
        assert page.status_code == 200
        assert 'id="login"' in page.text  # a button: opening the link alone does not log in
        assert "khuyenhoc_console" not in client.cookies
        done = await client.post("/console/login", data={"token": token_of(url)})
        assert done.status_code == 303
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        assert "secure" not in cookie  # no https PUBLIC_URL
        home = await client.get("/console/", follow_redirects=True)
        assert home.status_code == 200
        assert 'data-testid="logout"' in home.text
    async with console_client(app) as other:  # the same link again, from another browser
        again = await other.post("/console/login", data={"token": token_of(url)})
        assert again.status_code == 401
        assert "Gửi /web" in again.text or "/web" in again.text
        assert "khuyenhoc_console" not in other.cookies


async def test_a_link_expires_after_its_minutes(app: App) -> None:
    url = await login_url(app, "commune")
    app.clock.advance(timedelta(minutes=app.settings.console_link_minutes, seconds=1))
    async with console_client(app) as client:
        late = await client.post("/console/login", data={"token": token_of(url)})
        assert late.status_code == 401
        assert (await client.get("/console/", follow_redirects=True)).status_code == 401


async def test_only_staff_get_a_link(app: App) -> None:
    for who in ("village", "member"):
        chat = Chat(app, who)
        await chat.say("/web")
        assert "/console/login" not in chat.text
        assert "xã và tỉnh" in chat.text  # "for commune and province officers"
        async with app.uow() as uow:
            contact = await uow.contacts.by_identity("test", who)
            assert contact is not None
            actor = Actor.of(contact, await load_grants(uow, contact.id))
            with pytest.raises(NotAllowed):
                await login_link(uow, actor, app.clock.now(), timedelta(minutes=10))


async def test_without_a_session_the_page_says_how_to_log_in(app: App) -> None:
    async with console_client(app) as client:
        page = await client.get("/console/", follow_redirects=True)
        assert page.status_code == 401
        assert "/web" in page.text
        client.cookies.set("khuyenhoc_console", "not-a-session", path="/console")
        assert (await client.get("/console/", follow_redirects=True)).status_code == 401


async def test_logout_needs_the_csrf_token_and_ends_the_session(app: App) -> None:
    async with console_client(app) as client:
        await log_in(client, app, "commune")
        home = await client.get("/console/", follow_redirects=True)
        token = csrf_of(home.text)
        assert (await client.post("/console/logout")).status_code == 403
        assert (await client.post("/console/logout", data={"csrf": "wrong"})).status_code == 403
        assert (await client.get("/console/", follow_redirects=True)).status_code == 200  # still logged in
        cookie = client.cookies["khuyenhoc_console"]
        out = await client.post("/console/logout", data={"csrf": token})
        assert out.status_code == 200
        assert 'data-testid="message-logged_out"' in out.text
        client.cookies.set("khuyenhoc_console", cookie, path="/console")  # a copy kept elsewhere
        assert (await client.get("/console/", follow_redirects=True)).status_code == 401
    async with app.uow() as uow:
        assert len(await uow.audit.actions("console.login")) == 1
        assert len(await uow.audit.actions("console.logout")) == 1


async def test_a_revoked_role_loses_the_console_at_once(app: App) -> None:
    async with console_client(app) as client:
        await log_in(client, app, "commune")
        assert (await client.get("/console/", follow_redirects=True)).status_code == 200
        async with app.uow() as uow:
            contact = await uow.contacts.by_identity("test", "commune")
            assert contact is not None
            for grant in await uow.contacts.roles(contact.id):
                grant.revoked_at = app.clock.now()
            await uow.commit()
        assert (await client.get("/console/", follow_redirects=True)).status_code == 403


async def test_the_session_expires(app: App) -> None:
    async with console_client(app) as client:
        await log_in(client, app, "commune")
        app.clock.advance(timedelta(hours=app.settings.console_session_hours, seconds=1))
        assert (await client.get("/console/", follow_redirects=True)).status_code == 401


async def test_language_follows_the_chat_and_can_be_switched(app: App) -> None:
    async with console_client(app) as client:
        await log_in(client, app, "english")
        home = await client.get("/console/", follow_redirects=True)
        assert "Log out" in home.text
        switched = await client.post(
            "/console/lang", data={"csrf": csrf_of(home.text), "locale": "vi", "back": "/console/"}
        )
        assert switched.status_code == 303
        assert "Đăng xuất" in (await client.get("/console/", follow_redirects=True)).text


async def test_cookies_are_secure_behind_https(db: Database) -> None:
    app = make_app(db.url, FixedClock(START), public_url="https://bot.example.org")
    try:
        tree = await seed_tree(app)
        await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
        chat = Chat(app, "commune")
        await chat.say("/web")
        assert "https://bot.example.org/console/login?token=" in chat.text
        url = await login_url(app, "commune")
        async with console_client(app) as client:
            done = await client.post("/console/login", data={"token": token_of(url)})
            assert done.status_code == 303
            assert "secure" in done.headers["set-cookie"].lower()
    finally:
        await app.db.dispose()


async def test_the_demo_prints_a_console_link_for_its_commune_officer(sqlite_db: Database) -> None:
    from bot.runtime.cli import DEMO_CHANNEL, DEMO_COMMUNE_OFFICER, _console_link, _seed_demo

    app = make_app(sqlite_db.url, FixedClock(START))
    try:
        await _seed_demo(app)
        await _seed_demo(app)  # a second `make demo` on the same database
        link = await _console_link(app, DEMO_CHANNEL, DEMO_COMMUNE_OFFICER)
        assert link.startswith("http://127.0.0.1:8080/console/login?token=")
        async with console_client(app) as client:
            done = await client.post("/console/login", data={"token": token_of(link)})
            assert done.status_code == 303
            home = await client.get("/console/", follow_redirects=True)
            assert home.status_code == 200
            assert "Nguyễn Thị Lan (demo)" in home.text
    finally:
        await app.db.dispose()


async def test_the_nightly_prune_deletes_expired_links_and_sessions(app: App) -> None:
    from sqlalchemy import func, select

    from bot.messaging.retention import prune_expired
    from storage.models_console import ConsoleLink, ConsoleSession

    async with console_client(app) as client:
        await log_in(client, app, "commune")  # a used link and a live session
    await login_url(app, "commune")  # an unused link

    async def rows() -> tuple[int, int]:
        async with app.uow() as uow:
            links = await uow.session.scalar(select(func.count()).select_from(ConsoleLink))
            sessions = await uow.session.scalar(select(func.count()).select_from(ConsoleSession))
            return int(links or 0), int(sessions or 0)

    await prune_expired(app)
    assert await rows() == (2, 1)  # nothing expired a day ago yet
    app.clock.advance(timedelta(hours=app.settings.console_session_hours) + timedelta(days=1, minutes=1))
    assert await prune_expired(app) == 3
    assert await rows() == (0, 0)


async def test_pages_go_compressed_to_browsers_that_accept_it(app: App) -> None:
    async with console_client(app) as client:
        await log_in(client, app, "commune")
        page = await client.get("/console/period", headers={"Accept-Encoding": "gzip"})
        assert page.status_code == 200
        assert page.headers["content-encoding"] == "gzip"
        assert "Đăng xuất" in page.text  # httpx inflates it
        plain = await client.get("/console/period", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers


async def test_a_login_posted_from_another_site_is_refused(app: App) -> None:
    url = await login_url(app, "commune")
    async with console_client(app) as client:
        elsewhere = await client.post(
            "/console/login", data={"token": token_of(url)}, headers={"Origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 403
        sandboxed = await client.post(
            "/console/login", data={"token": token_of(url)}, headers={"Origin": "null"}
        )
        assert sandboxed.status_code == 403
        assert "khuyenhoc_console" not in client.cookies
        ours = await client.post(
            "/console/login", data={"token": token_of(url)}, headers={"Origin": "http://testserver"}
        )
        assert ours.status_code == 303  # the link was not used up by the refused attempt


async def test_a_link_is_refused_when_the_staff_role_went_before_it_was_used(app: App) -> None:
    """An officer who is also a member, and loses the officer's role between /web and the click:
    the link opens nothing (it used to open a session that only answered 403)."""
    url = await login_url(app, "commune")
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", "commune")
        assert contact is not None
        village = await uow.units.get(int(contact.home_unit_id or 0))
        assert village is not None
        for grant in await uow.contacts.roles(contact.id):
            grant.revoked_at = app.clock.now()
        await uow.contacts.grant(contact.id, MEMBER, village.id, app.clock.now())
        await uow.commit()
    async with console_client(app) as client:
        refused = await client.post("/console/login", data={"token": token_of(url)})
        assert refused.status_code == 401
        assert "khuyenhoc_console" not in client.cookies
    async with app.uow() as uow:
        assert len(await uow.audit.actions("console.login_refused")) == 1
