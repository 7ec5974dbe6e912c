"""The staff console in a real headless Chromium, against the real HTTP app on a real socket
(issue 12, item 8): a province officer registers in the web chat, asks /web, follows the link,
and works through the console as at a desk, then logs out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.settings import Settings
from bot.runtime.bootstrap import bootstrap
from bot.runtime.http import create_http_app
from storage.migrate import upgrade
from tests.test_webchat_browser import CHROMIUM_ARGS, Conversation, Phone, serving

pytestmark = pytest.mark.browser

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
CONTENT = Path(__file__).resolve().parent.parent / "content"
DESK = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}
LINK = re.compile(r"https?://\S+(/console/login\?token=[A-Za-z0-9_-]+)")


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[App]:
    await asyncio.to_thread(upgrade, sqlite_url)
    application = bootstrap(
        Settings(database_url=sqlite_url, content_dir=str(CONTENT)), clock=FixedClock(NOW)
    ).app
    yield application
    await application.db.dispose()


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def link_from_the_chat(browser: Browser, site: str, code: str) -> str:
    """Register in the web chat with `code`, send /web, and read the link from the bot's answer."""
    phone = await Phone(browser).start()
    try:
        talk = Conversation(phone)
        await phone.page.goto(site)
        await phone.page.get_by_test_id("start-button").click()
        await talk.wait_for_reply(0)
        await talk.press("vi")
        await talk.press("yes")
        await talk.press("officer")
        await talk.type(code)
        text = await talk.type("/web")
        found = LINK.search(text)
        assert found, text
        assert phone.errors == []
        return found.group(1)
    finally:
        await phone.close()


async def no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


async def test_the_staff_console_walkthrough(app: App, browser: Browser) -> None:
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code
    from bot.services.units import seed_demo
    from storage.models import PROVINCE_STAFF

    async with app.uow() as uow:
        seed = await seed_demo(uow, app.content_dir, NOW)
        invite = await create_invite(uow, CONSOLE, seed.province, PROVINCE_STAFF, NOW, expiry_days=14)
        code = format_code(invite.code)
        await uow.commit()

    async with serving(create_http_app(app)) as site:
        link = await link_from_the_chat(browser, site, code)
        context = await browser.new_context(viewport=DESK, locale="vi-VN")  # type: ignore[arg-type]
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Every console error but the one expected: the 401 of the page after logging out.
        page.on(
            "console",
            lambda m: errors.append(m.text) if m.type == "error" and "status of 401" not in m.text else None,
        )

        await page.goto(site.rstrip("/") + link)
        await page.get_by_test_id("login").click()
        await expect(page.get_by_test_id("logout")).to_be_visible()
        await no_horizontal_scroll(page)

        # The same link a second time: it has been used.
        other = await browser.new_context()
        again = await other.new_page()
        await again.goto(site.rstrip("/") + link)
        await again.get_by_test_id("login").click()
        await expect(again.get_by_test_id("message-link")).to_be_visible()
        await other.close()

        await page.get_by_test_id("logout").click()
        await expect(page.get_by_test_id("message-logged_out")).to_be_visible()
        await page.goto(site.rstrip("/") + "/console/")
        await expect(page.get_by_test_id("message-login")).to_be_visible()
        assert errors == []
        await context.close()
