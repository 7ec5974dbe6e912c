"""The web chat page in a real headless Chromium, against the real HTTP app on a real socket.

The page mechanics are tested against a scripted stand-in for the service (so the assertions do
not depend on the dialogues' wording); the full reporting scenario runs against the real service.
Chromium comes from the system (`chromium_path` in conftest.py); Playwright never downloads one.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import (
    Browser,
    Locator,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)

from bot.channels.webchat import channel as webchat
from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.messages import Attachment, Incoming, Kind, Option, Reply
from bot.domain.periods import Period
from bot.domain.settings import Settings
from bot.runtime.bootstrap import bootstrap
from bot.runtime.http import create_http_app
from bot.services.incoming import Handled
from storage.migrate import upgrade
from tests.support import webchat_id

pytestmark = pytest.mark.browser

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
CONTENT = Path(__file__).resolve().parent.parent / "content"
PHONE: ViewportSize = {"width": 360, "height": 740}
SCREENSHOT = Path("/tmp/webchat.png")


# ----------------------------------------------------------------------------- server and browser


@asynccontextmanager
async def serving(api: FastAPI) -> AsyncIterator[str]:
    """Run `api` with uvicorn on a free port of 127.0.0.1 in this event loop; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        api,
        log_config=None,
        access_log=False,
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped the server
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[App]:
    await asyncio.to_thread(upgrade, sqlite_url)
    application = bootstrap(
        Settings(database_url=sqlite_url, content_dir=str(CONTENT)), clock=FixedClock(NOW)
    ).app
    yield application
    await application.db.dispose()


@dataclass
class Phone:
    """One browser profile on a 360×740 phone screen, with the page's console errors."""

    browser: Browser
    page: Page = field(init=False)
    errors: list[str] = field(default_factory=list)

    async def start(self) -> Phone:
        context = await self.browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="vi-VN",
            service_workers="block",
        )
        self.page = await context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        return self

    async def close(self) -> None:
        await self.page.context.close()

    def bot(self) -> Locator:
        return self.page.get_by_test_id("bot-message")

    def user(self) -> Locator:
        return self.page.get_by_test_id("user-message")

    def options(self) -> Locator:
        return self.page.get_by_test_id("option-button")

    async def say(self, text: str) -> None:
        box = self.page.get_by_test_id("chat-input")
        await box.fill(text)
        await box.press("Enter")

    async def client_id(self) -> str:
        value = await self.page.evaluate("localStorage.getItem('khuyenhoc.webchat.clientId')")
        assert isinstance(value, str)
        return value

    async def last_bot_text(self) -> str:
        text = await self.bot().last.get_by_test_id("message-text").inner_text()
        assert isinstance(text, str)
        return text


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Phone]:
    p = await Phone(browser).start()
    yield p
    await p.close()


# ----------------------------------------------------------------------------- page mechanics


def tiny_png() -> bytes:
    """A valid 2×2 green PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x12\x66\x4f" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Script:
    """A stand-in for the service with fixed answers; records what reached it."""

    def __init__(self) -> None:
        self.seen: list[Incoming] = []
        self.gate = asyncio.Event()

    async def __call__(self, app: App, msg: Incoming) -> Handled:
        return Handled(await self.answer(msg), "vi")

    async def answer(self, msg: Incoming) -> list[Reply]:
        if msg.update_id and msg.update_id in {m.update_id for m in self.seen}:
            return []  # processed once, like the real service
        self.seen.append(msg)
        if msg.kind is Kind.OPTION:
            return [Reply(f"Bạn đã chọn: {msg.option_id}", options=[Option("again", "Chọn lại")])]
        if msg.text == "/start":
            langs = [Option("lang:vi", "Tiếng Việt"), Option("lang:en", "English")]
            return [Reply("Xin chào!\nHãy chọn ngôn ngữ:", options=langs)]
        if msg.text == "chậm":
            await self.gate.wait()
        if msg.text == "tệp":
            files = [
                Attachment("bieu-do.png", "image/png", tiny_png()),
                Attachment("bao-cao.csv", "text/csv", "thôn,số hộ\nPác Bó,120\n".encode()),
            ]
            return [Reply("Báo cáo của bạn:", attachments=files)]
        return [Reply(f"Bạn viết: {msg.text}")]


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def site(app: App, script: Script) -> AsyncIterator[str]:
    api = create_http_app(app, routers=[webchat.create_router(app, handle=script)])
    async with serving(api) as url:
        yield url


async def test_page_loads_with_vietnamese_ui(site: str, phone: Phone) -> None:
    page = phone.page
    await page.goto(site)
    assert await page.title() == "Khuyến học Bot"
    await expect(page.get_by_role("heading", name="Khuyến học Bot")).to_be_visible()
    box = page.get_by_label("Tin nhắn")
    await expect(box).to_have_attribute("placeholder", "Nhập tin nhắn…")
    await expect(page.get_by_test_id("chat-send")).to_have_text("Gửi")
    log = page.get_by_test_id("chat-log")
    await expect(log).to_have_attribute("aria-live", "polite")
    await expect(log).to_have_attribute("role", "log")
    await expect(page.get_by_test_id("start-button")).to_be_visible()
    await expect(page.get_by_test_id("typing-indicator")).to_be_hidden()
    assert phone.errors == []


async def test_start_button_sends_start_and_shows_the_reply(
    app: App, site: str, phone: Phone, script: Script
) -> None:
    page = phone.page
    await page.goto(site)
    await page.get_by_test_id("start-button").click()
    await expect(phone.bot()).to_have_count(1)
    assert await phone.last_bot_text() == "Xin chào!\nHãy chọn ngôn ngữ:"  # line break kept
    await expect(phone.user()).to_have_text(["Bắt đầu"])
    await expect(page.get_by_test_id("start-button")).to_be_hidden()
    (msg,) = script.seen
    assert (msg.channel, msg.kind, msg.text) == ("webchat", Kind.TEXT, "/start")
    assert msg.external_id == await webchat_id(app, await phone.client_id())  # the browser keeps the id
    assert msg.update_id is not None and msg.update_id.startswith(msg.external_id + ":")
    assert phone.errors == []


async def test_option_buttons_send_their_id_and_older_ones_are_disabled(
    site: str, phone: Phone, script: Script
) -> None:
    page = phone.page
    await page.goto(site)
    await page.get_by_test_id("start-button").click()
    await expect(phone.options()).to_have_text(["Tiếng Việt", "English"])
    await phone.options().nth(1).click()
    await expect(phone.bot()).to_have_count(2)
    assert await phone.last_bot_text() == "Bạn đã chọn: lang:en"
    await expect(phone.user().last).to_have_text("English")  # the label, not the id
    assert script.seen[-1].kind is Kind.OPTION
    assert script.seen[-1].option_id == "lang:en"
    await expect(phone.options().nth(0)).to_be_disabled()
    await expect(phone.options().nth(1)).to_be_disabled()
    await expect(phone.options().nth(2)).to_be_enabled()
    # Typing instead of pressing a button retires the buttons too.
    await phone.say("không chọn")
    await expect(phone.bot()).to_have_count(3)
    await expect(phone.options().nth(2)).to_be_disabled()
    assert len(script.seen) == 3
    assert phone.errors == []


async def test_enter_sends_shift_enter_breaks_the_line_and_text_stays_text(
    site: str, phone: Phone, script: Script
) -> None:
    page = phone.page
    await page.goto(site)
    box = page.get_by_test_id("chat-input")
    await box.click()
    await page.keyboard.type("dòng một")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("dòng hai")
    await page.keyboard.press("Enter")
    await expect(phone.bot()).to_have_count(1)
    assert script.seen[-1].text == "dòng một\ndòng hai"
    assert await phone.user().last.inner_text() == "dòng một\ndòng hai"
    await expect(box).to_have_value("")

    markup = '<img src=x onerror="document.title=1"><b>đậm</b>'
    await box.fill(markup)
    await page.get_by_test_id("chat-send").click()
    await expect(phone.bot()).to_have_count(2)
    assert await phone.last_bot_text() == f"Bạn viết: {markup}"
    log = page.get_by_test_id("chat-log")
    assert await log.locator("img, b").count() == 0
    assert await page.title() == "Khuyến học Bot"

    await box.fill("   ")
    await box.press("Enter")  # blank: nothing sent
    await page.wait_for_timeout(200)
    assert len(script.seen) == 2
    assert phone.errors == []


async def test_attachments_show_as_pictures_and_downloads(site: str, phone: Phone) -> None:
    page = phone.page
    await page.goto(site)
    await phone.say("tệp")
    await expect(phone.bot()).to_have_count(1)
    picture = phone.bot().last.locator("img")
    await expect(picture).to_have_attribute("alt", "bieu-do.png")
    await picture.evaluate("img => img.decode()")  # resolves once the picture is readable
    assert await picture.evaluate("img => img.naturalWidth") == 2
    links = phone.bot().last.get_by_test_id("attachment")
    await expect(links).to_have_text(["📎 bieu-do.png", "📎 bao-cao.csv"])
    await expect(links.nth(1)).to_have_attribute("download", "bao-cao.csv")
    async with page.expect_download() as info:
        await links.nth(1).click()
    download = await info.value
    path = await download.path()
    assert Path(path).read_bytes() == "thôn,số hộ\nPác Bó,120\n".encode()
    assert phone.errors == []


async def test_typing_indicator_shows_while_waiting(site: str, phone: Phone, script: Script) -> None:
    page = phone.page
    await page.goto(site)
    await phone.say("chậm")
    indicator = page.get_by_test_id("typing-indicator")
    await expect(indicator).to_be_visible()
    await expect(indicator).to_contain_text("đang trả lời")
    script.gate.set()
    await expect(phone.bot()).to_have_count(1)
    await expect(indicator).to_be_hidden()


async def test_phone_screen_has_no_horizontal_scroll(site: str, phone: Phone) -> None:
    page = phone.page
    await page.goto(site)
    await page.get_by_test_id("start-button").click()
    await expect(phone.bot()).to_have_count(1)
    await phone.say("x" * 400)  # one very long word
    await expect(phone.bot()).to_have_count(2)
    await phone.say("https://khuyenhoc.example.vn/" + "duong-dan-rat-dai/" * 20)
    await expect(phone.bot()).to_have_count(3)
    widths = await page.evaluate(
        """() => {
          const log = document.querySelector('[data-testid=chat-log]');
          return {doc: document.documentElement.scrollWidth, view: window.innerWidth,
                  body: document.body.scrollWidth, log: log.scrollWidth, logView: log.clientWidth};
        }"""
    )
    assert widths["view"] == 360
    assert widths["doc"] <= widths["view"], widths
    assert widths["body"] <= widths["view"], widths
    assert widths["log"] <= widths["logView"], widths
    # Tap targets: at least 44 CSS pixels high, inside the screen.
    for testid in ("chat-input", "chat-send"):
        box = await page.get_by_test_id(testid).bounding_box()
        assert box is not None
        assert box["height"] >= 44, (testid, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360, (testid, box)
    await phone.say("/start")
    await expect(phone.options()).to_have_count(4)
    for i in (2, 3):
        box = await phone.options().nth(i).bounding_box()
        assert box is not None and box["height"] >= 44
    # A link in a message is a real link, opened outside the chat.
    link = phone.bot().nth(2).locator("a[href^='https://khuyenhoc.example.vn/']")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    assert phone.errors == []


async def test_the_client_id_and_the_conversation_survive_a_reload(
    app: App, site: str, phone: Phone, browser: Browser, script: Script
) -> None:
    page = phone.page
    await page.goto(site)
    await page.get_by_test_id("start-button").click()
    await expect(phone.bot()).to_have_count(1)
    first_id = await phone.client_id()
    assert re.fullmatch(r"[0-9a-f]{32}", first_id)

    await page.reload()
    assert await phone.client_id() == first_id
    await expect(phone.bot()).to_have_count(1)  # the conversation is still on screen
    await expect(page.get_by_test_id("start-button")).to_be_hidden()
    await expect(phone.options().nth(1)).to_be_enabled()  # still unanswered
    await phone.options().nth(0).click()
    await expect(phone.bot()).to_have_count(2)
    assert {m.external_id for m in script.seen} == {await webchat_id(app, first_id)}

    other = await Phone(browser).start()  # another profile: another person
    try:
        await other.page.goto(site)
        await expect(other.page.get_by_test_id("start-button")).to_be_visible()
        assert await other.client_id() != first_id
    finally:
        await other.close()
    assert phone.errors == []


async def test_a_network_error_is_retried_once_with_the_same_message_id(
    site: str, phone: Phone, script: Script
) -> None:
    page = phone.page
    attempts: list[dict[str, Any]] = []

    async def flaky(route: Route, request: Request) -> None:
        attempts.append(json.loads(request.post_data or "{}"))
        if len(attempts) == 1:
            await route.abort("connectionreset")
        else:
            await route.continue_()

    await page.route("**/api/webchat/messages", flaky)
    await page.goto(site)
    await phone.say("thử lại")
    await expect(phone.bot()).to_have_count(1)
    assert await phone.last_bot_text() == "Bạn viết: thử lại"
    assert len(attempts) == 2
    assert attempts[0] == attempts[1]
    assert re.fullmatch(r"[0-9a-f]{32}", attempts[0]["message_id"])
    assert len(script.seen) == 1

    # The next message gets a message id of its own.
    await phone.say("tin sau")
    await expect(phone.bot()).to_have_count(2)
    assert attempts[2]["message_id"] != attempts[0]["message_id"]


async def test_a_lost_answer_is_explained(site: str, phone: Phone, script: Script) -> None:
    page = phone.page
    tries = 0

    async def answer_lost(route: Route) -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            await route.fetch()  # the server gets and processes the message ...
            await route.abort("connectionreset")  # ... but its answer never arrives
        else:
            await route.continue_()

    await page.route("**/api/webchat/messages", answer_lost)
    await page.goto(site)
    await phone.say("mất trả lời")
    await expect(page.get_by_test_id("note")).to_contain_text("câu trả lời bị mất")
    assert tries == 2
    assert [m.text for m in script.seen] == ["mất trả lời"]  # processed once
    await expect(phone.bot()).to_have_count(0)


async def test_a_network_that_stays_down_is_reported(site: str, phone: Phone) -> None:
    page = phone.page
    await page.route("**/api/webchat/messages", lambda route: route.abort("internetdisconnected"))
    await page.goto(site)
    await phone.say("không tới")
    await expect(page.get_by_test_id("note")).to_contain_text("Không gửi được tin nhắn")
    await expect(page.get_by_test_id("typing-indicator")).to_be_hidden()


async def test_pushed_messages_arrive_by_polling(site: str, phone: Phone, app: App, script: Script) -> None:
    page = phone.page
    await page.goto(site)
    await page.get_by_test_id("start-button").click()
    await expect(phone.bot()).to_have_count(1)
    client_id = await phone.client_id()
    stored = await webchat_id(app, client_id)  # what the web chat keeps: the id's keyed hash
    async with app.uow() as uow:
        contact = await uow.contacts.create("webchat", stored, NOW)
        payload = {
            "text": "Nhắc nhở: hạn báo cáo quý I là ngày 5/4.",
            "options": [{"id": "report:start", "label": "Báo cáo ngay"}],
        }
        uow.outbox.add(contact.id, "webchat", stored, payload, NOW)
        await uow.commit()
    # The page polls every 5 seconds.
    await expect(phone.bot()).to_have_count(2, timeout=8000)
    assert await phone.last_bot_text() == "Nhắc nhở: hạn báo cáo quý I là ngày 5/4."
    await page.get_by_role("button", name="Báo cáo ngay").click()
    await expect(phone.bot()).to_have_count(3)
    assert script.seen[-1].option_id == "report:start"
    # Shown once: neither the next poll nor a reload brings it back a second time.
    await page.reload()
    await page.wait_for_timeout(500)
    await expect(page.get_by_text("Nhắc nhở: hạn báo cáo")).to_have_count(1)
    assert phone.errors == []


# ----------------------------------------------------------------------------- the whole scenario

# Answers to the village report, by field key: consistent with every hard and soft rule.
VILLAGE_ANSWERS: dict[str, str] = {
    "households_total": "120",
    "population_total": "480",
    "lf_registered": "100",
    "lf_recognized": "90",
    "clans_total": "5",
    "lc_registered": "3",
    "lc_recognized": "2",
    "clan_boards": "2",
    "village_lc_status": "c:registered",  # a choice: pressed as a button
    "members_total": "150",
    "members_new": "10",
    "adults_total": "300",
    "lcit_registered": "120",
    "adults_learning_total": "250",
    "lcit_recognized": "100",
    "fund_raised_vnd": "5tr",
    "fund_disbursed_vnd": "3 triệu",
    "fund_balance_vnd": "2.000.000",
    "scholarship_count": "4",
    "scholarship_amount_vnd": "2tr",
    "award_count": "10",
    "award_amount_vnd": "1tr",
    "clc_sessions": "6",
    "clc_attendance": "180",
    "notes": "Gia đình ông Nông Văn Dền tiêu biểu.\nDòng họ Hoàng hiếu học.",
}
QUESTION = re.compile(r"^.*\d+/\d+: (.+)$", re.MULTILINE)


class Conversation:
    """Drives the page like a person: press a button or type, then wait for the bot."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.page = phone.page
        self.new: list[str] = []

    async def wait_for_reply(self, before: int) -> str:
        await expect(self.phone.bot()).not_to_have_count(before, timeout=15_000)
        await expect(self.page.get_by_test_id("typing-indicator")).to_be_hidden(timeout=15_000)
        texts = await self.phone.bot().get_by_test_id("message-text").all_inner_texts()
        self.new = texts[before:]  # every message of this turn; the question is the last one
        return texts[-1]

    async def option_ids(self) -> list[str]:
        ids = await self.page.locator("[data-testid=option-button]:enabled").evaluate_all(
            "buttons => buttons.map(b => b.dataset.optionId)"
        )
        assert isinstance(ids, list)
        return [str(i) for i in ids]

    async def press(self, option_id: str) -> str:
        before = await self.phone.bot().count()
        button = self.page.locator(f"[data-testid=option-button][data-option-id='{option_id}']:enabled")
        await button.click()
        return await self.wait_for_reply(before)

    async def type(self, text: str) -> str:
        before = await self.phone.bot().count()
        await self.phone.say(text)
        return await self.wait_for_reply(before)


async def test_an_officer_registers_and_sends_a_village_report(
    app: App, phone: Phone, browser: Browser
) -> None:
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code
    from bot.services.units import seed_demo
    from storage.models import VILLAGE_OFFICER

    async with app.uow() as uow:
        seed = await seed_demo(uow, app.content_dir, NOW)
        village = seed.villages[0]
        invite = await create_invite(uow, CONSOLE, village, VILLAGE_OFFICER, NOW, expiry_days=14)
        code = format_code(invite.code)
        village_id, village_name = village.id, village.name
        await uow.commit()
    form = app.forms["village_report"]
    by_label = {f.label.vi: f.key for f in form.fields}

    async with serving(create_http_app(app)) as site:
        page = phone.page
        talk = Conversation(phone)
        await page.goto(site)
        before = await phone.bot().count()
        await page.get_by_test_id("start-button").click()
        text = await talk.wait_for_reply(before)
        assert "Mời anh/chị chọn ngôn ngữ" in text
        text = await talk.press("vi")  # language
        assert await talk.option_ids() == ["yes", "no"], text
        text = await talk.press("yes")  # consent
        assert "officer" in await talk.option_ids(), text
        await talk.press("officer")  # "I have an invite code"
        text = await talk.type(code.lower())  # people type codes in lower case too
        assert village_name in "\n".join(await phone.bot().all_inner_texts()), text

        text = await talk.type("/baocao")
        ids = await talk.option_ids()
        period: Period | None = None
        if "confirm" not in ids and not QUESTION.search(text):  # which period: the default
            period = Period.parse(ids[0])
            text = await talk.press(ids[0])

        answered: list[str] = []
        for _ in range(4 * len(form.fields)):
            ids = await talk.option_ids()
            if "confirm" in ids:
                break
            if "yes" in ids and "no" in ids:  # a soft warning: the figure is right
                text = await talk.press("yes")
                continue
            m = QUESTION.search(text)
            assert m is not None, f"no question in the bot's message:\n{text}"
            key = by_label[m.group(1).strip()]
            answer = VILLAGE_ANSWERS[key]
            assert key not in answered, f"{key} asked again:\n{text}"
            answered.append(key)
            text = await (talk.press(answer) if answer.startswith("c:") else talk.type(answer))
        else:
            pytest.fail(f"the report never reached its summary; last message:\n{text}")

        # Recognitions are asked at year end only: a half-year shows last year's (carried).
        asked = {k for k in VILLAGE_ANSWERS if period is None or form.field(k).asked_in(period.kind)}
        assert set(answered) == asked
        assert "Nông Văn Dền" in text  # the summary
        await talk.press("confirm")
        assert any(t.startswith("✅") for t in talk.new), talk.new
        await page.screenshot(path=str(SCREENSHOT))
        widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1]

    async with app.uow() as uow:
        saved = await uow.submissions.latest_for_unit("village_report", village_id)
        assert saved is not None
        channel, values = saved.channel, dict(saved.values)
    assert channel == "webchat"
    assert values["households_total"] == 120
    assert values["fund_disbursed_vnd"] == 3_000_000
    assert values["village_lc_status"] == "registered"
    assert values["notes"] == VILLAGE_ANSWERS["notes"]
    assert phone.errors == []


# ----------------------------------------------------------------------------- log out


async def test_logging_out_clears_the_browser_and_revokes_the_id(app: App, phone: Phone) -> None:
    """Issue 11, item 6: on a shared PC, "Đăng xuất" leaves nothing behind that reaches the account."""
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code
    from bot.services.units import seed_demo
    from storage.models import VILLAGE_OFFICER

    async with app.uow() as uow:
        seed = await seed_demo(uow, app.content_dir, NOW)
        invite = await create_invite(uow, CONSOLE, seed.villages[0], VILLAGE_OFFICER, NOW, expiry_days=14)
        code, village_name = format_code(invite.code), seed.villages[0].name
        await uow.commit()

    async with serving(create_http_app(app)) as site:
        page = phone.page
        talk = Conversation(phone)
        await page.goto(site)
        await page.get_by_test_id("start-button").click()
        await talk.wait_for_reply(0)
        await talk.press("vi")
        await talk.press("yes")
        await talk.press("officer")
        await talk.type(code)
        assert village_name in "\n".join(talk.new)
        old_id = await phone.client_id()

        # Cancelling the confirmation changes nothing.
        async def dismiss(dialog: Any) -> None:
            await dialog.dismiss()

        page.once("dialog", dismiss)
        await page.get_by_test_id("logout-button").click()
        await expect(phone.user()).not_to_have_count(0)
        assert await phone.client_id() == old_id

        confirmations: list[str] = []

        async def accept(dialog: Any) -> None:
            confirmations.append(dialog.message)
            await dialog.accept()

        page.once("dialog", accept)
        await page.get_by_test_id("logout-button").click()
        done = "Đã đăng xuất. Cuộc trò chuyện đã được xoá khỏi máy này."
        await expect(page.get_by_test_id("note")).to_have_text(done)
        assert "Đăng xuất khỏi máy này?" in confirmations[0]
        await expect(phone.bot()).to_have_count(0)
        await expect(phone.user()).to_have_count(0)
        await expect(page.get_by_test_id("start-button")).to_be_visible()
        new_id = await phone.client_id()
        assert new_id != old_id
        saved = await page.evaluate("localStorage.getItem('khuyenhoc.webchat.log')")
        assert saved is None or code not in saved  # the invite code is gone from the browser

        await page.reload()  # nothing comes back
        await expect(phone.bot()).to_have_count(0)
        await expect(page.get_by_test_id("start-button")).to_be_visible()

        async with app.uow() as uow:
            assert await uow.contacts.by_identity("webchat", old_id) is None
        # The old id, typed into a request by hand, is a stranger.
        r = await page.request.post(f"{site}api/webchat/messages", data={"client_id": old_id, "text": "/toi"})
        assert village_name not in await r.text()
    assert phone.errors == []
