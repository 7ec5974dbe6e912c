"""Issue 10, items 2 and 3 in a real Chromium on a phone-sized screen (390 × 844 CSS px).

A commune officer asks for the compiled report in the web chat: each indicator's chart fills the
width of the phone, and no text in it is drawn smaller than 11 CSS px (from the figure's font
sizes in points, its DPI and the scale Chromium shows it at, measured on the page). After a
reload the conversation shows the charts again and the spreadsheet's link still downloads: the
files are kept on the server for this browser's id only.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, ViewportSize, expect
from sqlalchemy import select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.domain.settings import Settings
from bot.reports.chart import CHART_RATES, DPI, build_figure
from bot.reports.compiled import compile_unit
from bot.runtime.bootstrap import bootstrap
from bot.runtime.http import create_http_app
from storage.migrate import upgrade
from storage.models import COMMUNE_OFFICER
from storage.models_files import KeptFile
from storage.models_reports import ReportFile
from tests.support import CONTENT, make_contact, seed_tree, webchat_id
from tests.test_chart import SMALLEST_PX, drawn_texts
from tests.test_names_are_data import raw_unit
from tests.test_reports_helpers import submit, vn
from tests.test_webchat_browser import Conversation, Phone, serving

pytestmark = pytest.mark.browser

NOW = vn(2026, 6, 16, 8, 30)
H1 = Period.parse("2026-H1")
PHONE: ViewportSize = {"width": 390, "height": 844}
SCREENSHOT = Path("/tmp/chart-on-phone.png")


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[App]:
    await asyncio.to_thread(upgrade, sqlite_url)
    application = bootstrap(
        Settings(database_url=sqlite_url, content_dir=str(CONTENT)), clock=FixedClock(NOW)
    ).app
    yield application
    await application.db.dispose()


class PhoneAt390(Phone):
    async def start(self) -> PhoneAt390:
        context = await self.browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="vi-VN",
            service_workers="block",
            accept_downloads=True,
        )
        self.page = await context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        return self


async def reports(app: App) -> int:
    """A commune of twelve villages, ten of which reported for 2026-H1; its id."""
    tree = await seed_tree(app)
    commune = tree.commune
    for n in range(10):
        village = await raw_unit(app, commune, f"Thôn Khuổi {n + 1}")
        households = 60 + 7 * n
        await submit(
            app, village, "2025", vn(2025, 11, 20), households_total=households, lf_recognized=4 * n + 20
        )
        await submit(
            app,
            village,
            "2026-H1",
            vn(2026, 6, 10),
            households_total=households,
            lf_registered=5 * n + 25,
            clans_total=4,
            lc_registered=n % 4,
            members_total=8 * n + 10,
            population_total=households * 4,
        )
    return commune.id


async def smallest_points(app: App, commune_id: int) -> dict[str, float]:
    """Per chart, the smallest font size in points the bot draws for this report."""
    async with app.uow() as uow:
        commune = await uow.units.get(commune_id)
    async with app.read_only() as reads:
        c = await compile_unit(reads, commune, H1, content_dir=app.content_dir, forms=app.forms, now=NOW)
    t = translator("vi")
    return {key: min(x.get_fontsize() for x in drawn_texts(build_figure(c, t, key))) for key in CHART_RATES}


async def test_charts_are_legible_on_a_phone_and_the_files_survive_a_reload(
    app: App, browser: Browser
) -> None:
    commune_id = await reports(app)
    phone = await PhoneAt390(browser).start()
    try:
        async with serving(create_http_app(app)) as site:
            page = phone.page
            await page.goto(site)
            client_id = await phone.client_id()
            async with app.uow() as uow:
                commune = await uow.units.get(commune_id)
            assert commune is not None
            await make_contact(
                app, await webchat_id(app, client_id), COMMUNE_OFFICER, commune, channel="webchat"
            )
            talk = Conversation(phone)
            await talk.type("/baocaotonghop")
            await talk.press("2026-H1")
            report = phone.bot().filter(has=page.locator("img"))
            await expect(report).to_have_count(1)
            pictures = report.locator("img")
            await expect(pictures).to_have_count(len(CHART_RATES))
            points = await smallest_points(app, commune_id)
            for n, key in enumerate(CHART_RATES):
                picture = pictures.nth(n)
                await picture.scroll_into_view_if_needed()
                await picture.evaluate("img => img.decode()")
                natural, shown = await picture.evaluate(
                    "img => [img.naturalWidth, img.getBoundingClientRect().width]"
                )
                assert natural == 800
                assert 340 <= shown <= 390, shown  # across the phone, not squeezed into a bubble
                smallest_px = points[key] * DPI / 72 * shown / natural
                assert smallest_px >= SMALLEST_PX, (key, points[key], shown, smallest_px)
                # What the screen shows is the chart at that size (two device pixels per CSS pixel).
                shot = await picture.screenshot(path=str(SCREENSHOT) if n == 0 else None)
                with Image.open(io.BytesIO(shot)) as image:
                    assert abs(image.size[0] - 2 * shown) <= 2
                    colours = {c for _n, c in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
                    assert (0x1B, 0x1F, 0x23) in colours  # the title, drawn, not a blank box
            widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1] == 390

            # The page keeps links, not bytes: the history stays small.
            saved = await page.evaluate("localStorage.getItem('khuyenhoc.webchat.log')")
            assert isinstance(saved, str) and "api/webchat/files/" in saved and len(saved) < 20_000

            await page.reload()
            report = phone.bot().filter(has=page.locator("img"))
            await expect(report.locator("img")).to_have_count(len(CHART_RATES))
            for n in range(len(CHART_RATES)):  # fetched from the server once scrolled near
                picture = report.locator("img").nth(n)
                await picture.scroll_into_view_if_needed()
                await expect(picture).to_have_attribute("src", re.compile(r"^blob:"))
                assert (
                    await picture.evaluate("async img => { await img.decode(); return img.naturalWidth; }")
                    == 800
                )
            links = report.get_by_test_id("attachment")
            await expect(links.filter(has_text=".png")).to_have_count(len(CHART_RATES))
            sheet = links.filter(has_text=".xlsx")
            await expect(sheet).to_have_attribute("download", "bao-cao-phuong-thuc-phan-2026-H1.xlsx")
            async with page.expect_download() as info:
                await sheet.click()
            download = await info.value
            data = Path(await download.path()).read_bytes()
            async with app.db.sessions() as session:
                kept = (
                    await session.execute(
                        select(ReportFile.data)
                        .join(KeptFile, KeptFile.file_id == ReportFile.id)
                        .where(KeptFile.filename == "bao-cao-phuong-thuc-phan-2026-H1.xlsx")
                    )
                ).scalar_one()
            assert data == kept and data.startswith(b"PK")

            # Another browser's id gets nothing from the same link.
            url = await sheet.get_attribute("href")
            assert url is not None and url.startswith("blob:")  # downloaded once, kept in the page
            key = next(k for k in saved.split('"') if k.startswith("api/webchat/files/"))
            other = await page.request.get(
                site + key, headers={"X-Webchat-Client": "someone-else-0123456789"}
            )
            assert other.status == 404
            mine = await page.request.get(site + key, headers={"X-Webchat-Client": client_id})
            assert mine.status == 200
        assert phone.errors == []
    finally:
        await phone.close()
