"""The staff console in a real headless Chromium, against the real HTTP app on a real socket
(issue 12, item 8): a province officer registers in the web chat, asks /web, follows the link,
and works through the console as at a desk, then logs out.
"""

from __future__ import annotations

import asyncio
import io
import math
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from playwright.async_api import Browser, Page, expect

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.invite_codes import telegram_start_link
from bot.domain.settings import Settings
from bot.messaging.outbox import send_outbox
from bot.reports.invite_slips import SLIPS_PER_PAGE
from bot.runtime.bootstrap import bootstrap
from bot.runtime.http import create_http_app
from storage.migrate import upgrade
from tests.test_webchat_browser import Conversation, Phone, serving

pytestmark = pytest.mark.browser

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
CONTENT = Path(__file__).resolve().parent.parent / "content"
DESK = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}
BOT = "KhuyenHocDemoBot"
NEWS = "Tuần lễ hưởng ứng học tập suốt đời 2026: mời bà con đến nhà văn hóa thôn dự buổi đọc sách chung."
LINK = re.compile(r"https?://\S+(/console/login\?token=[A-Za-z0-9_-]+)")


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[App]:
    await asyncio.to_thread(upgrade, sqlite_url)
    application = bootstrap(
        Settings(database_url=sqlite_url, content_dir=str(CONTENT), telegram_bot_username=BOT),
        clock=FixedClock(NOW),
    ).app
    yield application
    await application.db.dispose()


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


def qr_codes(pdf: bytes) -> tuple[set[str], int]:
    """The texts of every QR code on the PDF's pages, read from pictures as a phone camera would,
    and the number of pages."""
    import pypdfium2 as pdfium
    import zxingcpp

    doc = pdfium.PdfDocument(pdf)
    found: set[str] = set()
    for page in doc:
        found |= {r.text for r in zxingcpp.read_barcodes(page.render(scale=2.5).to_pil())}
    return found, len(doc)


async def no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


async def test_the_staff_console_walkthrough(app: App, browser: Browser) -> None:
    """The issue's walk-through, in one go as a province officer would do it at a desk."""
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code
    from bot.services.units import seed_demo
    from storage.models import PROVINCE_STAFF, VILLAGE_OFFICER
    from tests.test_reports_helpers import submit

    async with app.uow() as uow:
        seed = await seed_demo(uow, app.content_dir, NOW)
        staff_code = format_code(
            (await create_invite(uow, CONSOLE, seed.province, PROVINCE_STAFF, NOW, expiry_days=14)).code
        )
        returned, approved = seed.villages[0], seed.villages[1]
        officer_code = format_code(
            (await create_invite(uow, CONSOLE, returned, VILLAGE_OFFICER, NOW, expiry_days=14)).code
        )
        await uow.commit()
    await submit(app, returned, "2026", NOW)
    await submit(app, approved, "2026", NOW)

    async with serving(create_http_app(app)) as site:
        base = site.rstrip("/")
        # The village officer of the village whose report will be returned, in the web chat.
        village_phone = await Phone(browser).start()
        talk = Conversation(village_phone)
        await village_phone.page.goto(site)
        await village_phone.page.get_by_test_id("start-button").click()
        await talk.wait_for_reply(0)
        await talk.press("vi")
        await talk.press("yes")
        await talk.press("officer")
        await talk.type(officer_code)

        link = await link_from_the_chat(browser, site, staff_code)
        context = await browser.new_context(viewport=DESK, locale="vi-VN", accept_downloads=True)  # type: ignore[arg-type]
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Every console error but the one expected: the 401 of the page after logging out.
        page.on(
            "console",
            lambda m: errors.append(m.text) if m.type == "error" and "status of 401" not in m.text else None,
        )

        await page.goto(base + link)
        await page.get_by_test_id("login").click()
        await expect(page.get_by_test_id("logout")).to_be_visible()

        # The period at a glance: the province's communes; drill into the demo commune.
        await expect(page.get_by_test_id("period-table")).to_be_visible()
        await expect(page.get_by_test_id("progress-chart").first).to_be_visible()
        await no_horizontal_scroll(page)
        await page.get_by_test_id("unit-link").filter(has_text=seed.commune.name).click()
        await expect(page.get_by_test_id("breadcrumbs")).to_contain_text(seed.commune.name)
        table = page.get_by_test_id("period-table")
        for village in seed.villages:
            await expect(table).to_contain_text(village.name)
        await expect(page.get_by_test_id("reported")).to_contain_text("2")

        # One village: return its report with a reason.
        await page.get_by_test_id("unit-link").filter(has_text=returned.name).click()
        await expect(page.get_by_test_id("village-name")).to_contain_text(returned.name)
        await page.get_by_test_id("reason").first.fill("Số hộ gia đình chưa khớp với sổ của thôn")
        await page.get_by_test_id("return").first.click()
        await expect(page.get_by_test_id("notice")).to_be_visible()
        await expect(page.get_by_test_id("state").first).to_contain_text("trả lại")
        # ... and the village officer's chat shows the return, with its reason.
        await expect(village_phone.bot().last).to_contain_text("Số hộ gia đình chưa khớp", timeout=20_000)
        assert village_phone.errors == []

        # Another village, back through the period view: approve its report.
        await page.get_by_test_id("breadcrumbs").get_by_role("link", name=seed.commune.name).click()
        await page.get_by_test_id("unit-link").filter(has_text=approved.name).click()
        await page.get_by_test_id("approve").first.click()
        await expect(page.get_by_test_id("notice")).to_be_visible()
        await expect(page.get_by_test_id("state").first).to_contain_text("duyệt")

        # Onboarding: a CSV of two new villages with their officers' names, then the slips.
        await (
            page.get_by_role("link", name="Mời cán bộ")
            .or_(page.locator("a[href='/console/onboarding']"))
            .first.click()
        )
        csv = (
            "commune_code,village_name,kind,officer_name\n"
            f"{seed.commune.code},Thôn Khuổi Lừa,thôn,Hoàng Văn Páo\n"
            f"{seed.commune.code},Xóm Nà Mạ,xóm,Lục Thị Mai\n"
        )
        await page.get_by_test_id("upload-file").set_input_files(
            {"name": "thon.csv", "mimeType": "text/csv", "buffer": csv.encode("utf-8")}
        )
        await page.get_by_test_id("upload").click()
        await expect(page.get_by_test_id("upload-done")).to_be_visible()
        await expect(page.get_by_test_id("open-codes")).to_contain_text("Hoàng Văn Páo")
        codes = await page.locator("#open-codes tbody tr td code").all_inner_texts()
        async with page.expect_download() as waiting:
            await page.get_by_test_id("download-slips").click()
        pdf = Path(await (await waiting.value).path()).read_bytes()
        decoded, pages = qr_codes(pdf)
        assert pages == math.ceil(len(codes) / SLIPS_PER_PAGE)
        for code in codes:
            assert telegram_start_link(BOT, code) in decoded, code

        # A broadcast to the province: preview as each channel shows it, send, follow delivery.
        await page.locator("header a[href='/console/broadcasts']").click()
        await page.get_by_test_id("group-officers").check()  # the demo has officers, no members yet
        await page.get_by_test_id("what-text").check()
        await page.get_by_test_id("broadcast-text").fill(NEWS)
        await page.get_by_test_id("broadcast-preview").click()
        await expect(page.get_by_test_id("recipient-count")).to_be_visible()
        await expect(page.get_by_test_id("phone-webchat")).to_contain_text(NEWS[:40])
        await page.get_by_test_id("broadcast-send").click()
        await expect(page.get_by_test_id("broadcast-sent")).to_be_visible()
        row = page.get_by_test_id("broadcast-table").locator("tbody tr").first
        await expect(row).to_contain_text(NEWS[:20])
        await expect(row.locator(".bar")).to_be_visible()
        # The village officer's web chat receives it.
        await expect(village_phone.bot().last).to_contain_text(NEWS[:40], timeout=20_000)
        assert await send_outbox(app) >= 1  # the outbox job (every 30 s in `khuyenhoc run`) records it
        await page.reload()
        row = page.get_by_test_id("broadcast-table").locator("tbody tr").first
        sent = int((await row.get_by_test_id("sent").inner_text()).replace(".", ""))
        waiting = int((await row.get_by_test_id("waiting").inner_text()).replace(".", ""))
        assert sent >= 1, (sent, waiting)

        # Downloads: the compiled workbook of the demo commune opens and lists its villages.
        await page.locator("header a[href='/console/downloads']").click()
        await page.get_by_test_id("downloads-unit").select_option(str(seed.commune.id))
        await page.get_by_test_id("downloads-show").click()
        async with page.expect_download() as waiting_file:
            await page.get_by_test_id("download-xlsx").click()
        download = await waiting_file.value
        assert download.suggested_filename.endswith(".xlsx")
        book = load_workbook(io.BytesIO(Path(await download.path()).read_bytes()))
        cells = {str(c.value) for ws in book.worksheets for row_ in ws.iter_rows() for c in row_ if c.value}
        assert returned.name in cells and approved.name in cells

        # Usable on a tablet too.
        await page.set_viewport_size(TABLET)  # type: ignore[arg-type]
        await page.goto(base + "/console/period")
        await no_horizontal_scroll(page)

        await page.get_by_test_id("logout").click()
        await expect(page.get_by_test_id("message-logged_out")).to_be_visible()
        await page.goto(base + "/console/")
        await expect(page.get_by_test_id("message-login")).to_be_visible()
        assert errors == []
        await context.close()
        await village_phone.close()


async def test_a_login_link_works_once_in_the_browser(app: App, browser: Browser) -> None:
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code
    from bot.services.units import seed_demo
    from storage.models import COMMUNE_OFFICER

    async with app.uow() as uow:
        seed = await seed_demo(uow, app.content_dir, NOW)
        code = format_code((await create_invite(uow, CONSOLE, seed.commune, COMMUNE_OFFICER, NOW, 14)).code)
        await uow.commit()
    async with serving(create_http_app(app)) as site:
        link = await link_from_the_chat(browser, site, code)
        first = await browser.new_context()
        page = await first.new_page()
        await page.goto(site.rstrip("/") + link)
        await page.get_by_test_id("login").click()
        await expect(page.get_by_test_id("logout")).to_be_visible()
        other = await browser.new_context()
        again = await other.new_page()
        await again.goto(site.rstrip("/") + link)
        await again.get_by_test_id("login").click()
        await expect(again.get_by_test_id("message-link")).to_be_visible()
        await other.close()
        await first.close()
