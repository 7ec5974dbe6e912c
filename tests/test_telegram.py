"""The Telegram channel end to end: the real python-telegram-bot against a fake Bot API server.

Everything goes over real HTTP on 127.0.0.1: the fake server POSTs updates to the bot's webhook
(or serves them to PTB's long polling), the bot answers through the Bot API. The dialogues are
the real ones, on a real (SQLite, and for some tests PostgreSQL) database.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.channels.telegram.channel import BY_POSITION, CHOSEN_MARK, TelegramChannel, callback_data, keyboard
from bot.domain.messages import Handled, Incoming, Kind, Option, Reply
from bot.domain.sending import Blocked
from bot.services.actor import CONSOLE
from bot.services.invites import create_invite, format_code
from storage.db import Database
from storage.models import COMMUNE_OFFICER, VILLAGE_OFFICER, ChannelIdentity, Contact, Submission
from tests.fakes.harness import TELEGRAM_TOKEN, Running, eventually, fake_api_served, running_bot
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegram
from tests.support import Tree, make_contact, seed_tree
from tests.test_reports_helpers import submit, vn

ANSWERS = [
    "1.250",
    "5000",
    "800",
    "700",
    "40",
    "30",
    "25",
    "12",
    None,
    "1000",
    "50",
    "3000",
    "600",
    "2000",
    "400",
    "8tr",
    "6tr2",  # the scholarships (5 triệu) and awards (1.200.000đ) below
    "1,8 triệu",
    "10",
    "5 triệu",
    "4",
    "1.200.000đ",
    "6",
    "300",
    "bỏ qua",
]
USER = 424242


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with fake_api_served(FakeTelegram(TELEGRAM_TOKEN)) as api:
        yield api


@pytest.fixture
async def bot(sqlite_db: Database, fake: FakeTelegram) -> AsyncIterator[Running]:
    async with running_bot(
        sqlite_db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=fake.url
    ) as running:
        yield running


class TgUser:
    """One person in a private chat with the bot, through the fake Telegram."""

    def __init__(self, fake: FakeTelegram, user_id: int = USER, **profile: Any) -> None:
        self.fake = fake
        self.id = user_id
        self.profile = profile
        self.last: list[dict[str, Any]] = []

    async def _deliver(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        before = len(self.fake.sent(self.id))
        assert await self.fake.deliver(update) == 200
        self.last = self.fake.sent(self.id)[before:]
        return self.last

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self._deliver(self.fake.text_update(self.id, text, **self.profile))

    async def press(self, data: str) -> list[dict[str, Any]]:
        """Press the button carrying `data` on the latest message that has it."""
        for params in reversed(self.fake.sent(self.id)):
            message = self.fake.messages[params["message_id"]]
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            if any(b.get("callback_data") == data for row in rows for b in row):
                return await self._deliver(self.fake.press_update(self.id, message["message_id"], data))
        raise AssertionError(f"no button {data!r} in {self.buttons}")

    @property
    def text(self) -> str:
        return "\n".join(str(m.get("text", "")) for m in self.last)

    @property
    def buttons(self) -> list[str]:
        return [
            b["callback_data"]
            for m in self.last
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
        ]


async def invite_code(running: Running) -> tuple[Tree, str]:
    tree = await seed_tree(running.app)
    async with running.app.uow() as uow:
        invite = await create_invite(uow, CONSOLE, tree.village, VILLAGE_OFFICER, running.app.clock.now(), 14)
        await uow.commit()
    return tree, format_code(invite.code)


# ----------------------------------------------------------------------------- end to end


async def test_onboarding_and_a_complete_village_report(bot: Running, fake: FakeTelegram) -> None:
    _, code = await invite_code(bot)
    user = TgUser(fake)
    await user.say("/start")
    assert user.buttons == ["vi", "en"]
    await user.press("en")
    assert "Do you agree?" in user.text
    await user.press("yes")
    await user.press("officer")
    assert "invite code" in user.text
    await user.say(code)
    assert "registered as Village officer of Thôn Nà Rụa" in user.text
    assert "cmd:baocao" in user.buttons

    await user.press("cmd:baocao")
    assert "Which period?" in user.text
    await user.press("2026")
    assert "Question 1/25" in user.text
    for answer in ANSWERS:
        if answer is None:  # the choice question: a button
            assert "c:registered" in user.buttons
            await user.press("c:registered")
        else:
            await user.say(answer)
        assert "Sorry" not in user.text, user.text
    assert "Please check your report" in user.text
    await user.press("confirm")
    assert "✅ Saved" in user.text

    async with bot.app.db.sessions() as session:
        saved = (await session.execute(select(Submission.channel, Submission.values))).all()
    assert len(saved) == 1
    channel, values = saved[0]
    assert channel == "telegram"
    assert values["households_total"] == 1250
    assert values["village_lc_status"] == "registered"
    assert values["fund_raised_vnd"] == 8_000_000
    # Every keyboard the bot sent passed the fake's 64-byte check (it answers 400 otherwise).
    assert all(c.status == 200 for c in fake.calls_of("sendMessage"))


async def test_a_press_is_answered_and_the_question_shows_the_choice(
    bot: Running, fake: FakeTelegram
) -> None:
    user = TgUser(fake)
    await user.say("/start")
    question = fake.sent(USER)[-1]
    await user.press("en")
    assert len(fake.calls_of("answerCallbackQuery")) == 1
    edited = fake.messages[question["message_id"]]
    assert edited["text"].endswith(CHOSEN_MARK + "English")
    assert "reply_markup" not in edited  # the buttons are gone: the choice is made
    assert "Do you agree?" in user.text


async def test_commands_are_registered_in_vietnamese_and_english(bot: Running, fake: FakeTelegram) -> None:
    assert fake.webhook["url"] == f"{bot.url}/telegram/webhook"
    assert fake.webhook["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    names = [c["command"] for c in fake.commands["vi"]]
    assert names[:2] == ["start", "baocao"] and "lienket" in names
    assert dict((c["command"], c["description"]) for c in fake.commands["en"])["report"] == "Village report"
    assert dict((c["command"], c["description"]) for c in fake.commands["vi"])["baocao"] == "Báo cáo thôn"
    assert fake.commands[""] == fake.commands["vi"]  # the default language is Vietnamese


# ----------------------------------------------------------------------------- the webhook


@pytest.mark.parametrize("secret", [None, "wrong-secret", ""])
async def test_a_wrong_or_missing_secret_is_refused_and_nothing_processed(
    bot: Running, fake: FakeTelegram, secret: str | None
) -> None:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{bot.url}/telegram/webhook", json=fake.text_update(USER, "/start"), headers=headers
        )
    assert r.status_code == 403
    assert fake.sent() == []
    async with bot.app.uow() as uow:
        assert (await uow.session.execute(select(func.count(Contact.id)))).scalar_one() == 0


async def test_a_duplicate_update_is_processed_once(bot: Running, fake: FakeTelegram) -> None:
    update = fake.text_update(USER, "/start")
    assert await fake.deliver(update) == 200
    assert await fake.deliver(update) == 200  # Telegram retrying: acknowledged, not re-processed
    assert len(fake.sent(USER)) == 1


async def test_non_text_messages_get_a_polite_answer(bot: Running, fake: FakeTelegram) -> None:
    await fake.deliver(fake.text_update(USER, "/start"))
    await fake.deliver(fake.photo_update(USER))
    assert (
        "I can only read text messages" in fake.sent(USER)[-2]["text"]
        or "chỉ đọc" in fake.sent(USER)[-2]["text"]
    )


async def test_in_a_group_only_start_and_help_are_answered(bot: Running, fake: FakeTelegram) -> None:
    group = {"id": -100123, "type": "group", "title": "Chi hội thôn Nà Rụa"}
    for text in ("xin chào cả nhà", "/baocao", "/start@SomeOtherBot", "/start@" + BOT_USERNAME, "/trogiup"):
        assert await fake.deliver(fake.text_update(USER, text, chat=group)) == 200
    answers = fake.sent(-100123)
    assert len(answers) == 2
    assert all("private chat" in a["text"] or "riêng" in a["text"] for a in answers)
    button = answers[0]["reply_markup"]["inline_keyboard"][0][0]
    assert button["url"] == f"https://t.me/{BOT_USERNAME}"
    assert fake.sent(USER) == []
    async with bot.app.uow() as uow:  # nobody was registered from the group
        assert (await uow.session.execute(select(func.count(Contact.id)))).scalar_one() == 0


# ----------------------------------------------------------------------------- sending


async def test_a_429_is_waited_out_and_the_reply_delivered(bot: Running, fake: FakeTelegram) -> None:
    fake.fail("sendMessage", 429, retry_after=1)
    await TgUser(fake).say("/start")
    attempts = fake.calls_of("sendMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0  # retry_after honoured
    assert "Hello! Please choose your language." in fake.sent(USER)[0]["text"]


async def test_a_5xx_is_retried_with_backoff(bot: Running, fake: FakeTelegram) -> None:
    fake.fail("sendMessage", 502, times=2)
    await TgUser(fake).say("/start")
    assert [c.status for c in fake.calls_of("sendMessage")] == [502, 502, 200]


async def test_a_long_text_is_split_on_line_boundaries(bot: Running, fake: FakeTelegram) -> None:
    lines = [f"Dòng {i}: " + "học tập suốt đời " * 5 for i in range(120)]
    reply = Reply("\n".join(lines), options=[Option("ok", "OK")])
    assert len(reply.text) > 8192
    channel = bot.runtime.telegram
    assert channel is not None
    await TgUser(fake).say("/start")  # the contact exists
    before = len(fake.sent(USER))
    await channel.sender.send(str(USER), [reply])
    parts = fake.sent(USER)[before:]
    assert len(parts) == 3
    assert all(len(p["text"]) <= 4096 for p in parts)
    assert "\n".join(p["text"] for p in parts).split("\n") == lines  # cut between lines, nothing lost
    assert [("reply_markup" in p) for p in parts] == [False, False, True]  # buttons under the last


async def test_a_user_who_blocked_the_bot_is_marked_until_they_write_again(
    bot: Running, fake: FakeTelegram
) -> None:
    channel = bot.runtime.telegram
    assert channel is not None
    user = TgUser(fake)
    await user.say("/start")
    fake.blocked.add(USER)
    await user.say("/trogiup")  # the reply hits 403
    assert await blocked_at(bot) is not None
    calls = len(fake.calls)
    with pytest.raises(Blocked):
        await channel.sender.send(str(USER), [Reply("Tin mới")])
    assert len(fake.calls) == calls  # nothing was even tried
    fake.blocked.clear()
    await user.say("/trogiup")
    assert await blocked_at(bot) is None
    assert "Commands" in user.text or "Các lệnh" in user.text


async def test_blocking_and_unblocking_reported_by_telegram(bot: Running, fake: FakeTelegram) -> None:
    await TgUser(fake).say("/start")
    await fake.deliver(fake.block_update(USER, "kicked"))
    assert await blocked_at(bot) is not None
    await fake.deliver(fake.block_update(USER, "member"))
    assert await blocked_at(bot) is None


async def blocked_at(running: Running) -> Any:
    async with running.app.uow() as uow:
        q = select(ChannelIdentity.blocked_at).where(ChannelIdentity.channel == "telegram")
        return (await uow.session.execute(q)).scalar_one()


# ----------------------------------------------------------------------------- buttons with long ids


class Recorder:
    def __init__(self, replies: list[Reply]) -> None:
        self.seen: list[Incoming] = []
        self.replies = replies

    async def __call__(self, app: Any, msg: Incoming) -> Handled:
        self.seen.append(msg)
        return Handled(self.replies, "vi")


def test_callback_data_carries_ids_and_never_exceeds_64_bytes() -> None:
    long_id = "unit:" + "đ" * 40  # 85 bytes in UTF-8
    options = [
        Option("2026-H2", "Nửa cuối năm 2026 (mặc định) — " + "rất dài " * 20),
        Option(long_id, "Thôn dài"),
    ]
    assert callback_data(options) == ["2026-H2", f"{BY_POSITION}1"]
    markup = keyboard(options).to_dict()
    assert all(len(b["callback_data"].encode()) <= 64 for row in markup["inline_keyboard"] for b in row)


async def test_a_long_option_id_travels_as_its_position_and_arrives_as_the_label(
    sqlite_db: Database, fake: FakeTelegram
) -> None:
    long_id = "unit:" + "9" * 80
    recorder = Recorder(
        [Reply("Chọn thôn:", options=[Option("unit:1", "Thôn Một"), Option(long_id, "Thôn Hai")])]
    )
    async with running_bot(
        sqlite_db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=fake.url
    ) as running:
        channel = running.runtime.telegram
        assert channel is not None
        channel.handle = recorder
        user = TgUser(fake)
        await user.say("thôn")
        await user.press(f"{BY_POSITION}1")
    assert recorder.seen[-1].kind is Kind.TEXT and recorder.seen[-1].text == "Thôn Hai"
    assert recorder.seen[0].kind is Kind.TEXT and recorder.seen[0].display_name == "Lan"


# ----------------------------------------------------------------------------- polling, and logs


async def test_polling_mode_without_a_public_url(sqlite_db: Database, fake: FakeTelegram) -> None:
    fake.webhook = {"url": "https://old.example/telegram/webhook"}
    async with running_bot(
        sqlite_db.url, webhook=False, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=fake.url
    ) as running:
        assert fake.webhook == {}  # polling needs the webhook removed
        assert running.runtime.telegram is not None and running.runtime.telegram.polling
        await fake.deliver(fake.text_update(USER, "/start"))
        await eventually(lambda: len(fake.sent(USER)) == 1)
        await fake.deliver(fake.text_update(USER, "2"))  # a typed number picks the option too
        await eventually(lambda: len(fake.sent(USER)) == 2)
    assert "Do you agree?" in fake.sent(USER)[1]["text"]


async def test_the_token_never_reaches_the_logs(
    sqlite_db: Database, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_bot(
        sqlite_db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=fake.url
    ):
        await TgUser(fake).say("/start")
    assert "HTTP Request: POST" in caplog.text  # httpx did log the request URLs…
    assert "bot<redacted>/sendMessage" in caplog.text
    assert TELEGRAM_TOKEN not in caplog.text  # …without the token
    assert TELEGRAM_TOKEN.split(":")[1] not in caplog.text


async def test_the_channel_needs_a_token(sqlite_db: Database) -> None:
    from tests.support import make_app

    app = make_app(sqlite_db.url)
    with pytest.raises(ValueError, match="TELEGRAM_TOKEN"):
        TelegramChannel(app)
    await app.db.dispose()


async def test_sends_respect_the_per_chat_rate(sqlite_db: Database, fake: FakeTelegram) -> None:
    async with running_bot(
        sqlite_db.url,
        webhook=True,
        telegram_token=TELEGRAM_TOKEN,
        telegram_api_base_url=fake.url,
        telegram_chat_rate_per_second=10,
        telegram_chat_burst=1,
    ) as running:
        channel = running.runtime.telegram
        assert channel is not None
        await asyncio.gather(
            channel.sender.deliver("1001", [Reply(f"tin {i}") for i in range(4)], "vi"),
            channel.sender.deliver("1002", [Reply("khác")], "vi"),
        )
    times = [c.at for c in fake.calls_of("sendMessage") if c.params["chat_id"] == 1001]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 4 and min(gaps) >= 0.09  # 10 per second to one chat


async def test_the_cli_helpers_register_and_remove_the_webhook(
    sqlite_db: Database, fake: FakeTelegram
) -> None:
    from bot.channels.telegram.channel import run_admin
    from tests.support import make_app

    app = make_app(
        sqlite_db.url,
        telegram_token=TELEGRAM_TOKEN,
        telegram_api_base_url=fake.url,
        public_url="https://khuyenhoc.example.org",
    )
    try:
        lines = await run_admin(app, "set-webhook")
        assert fake.webhook["url"] == "https://khuyenhoc.example.org/telegram/webhook"
        assert fake.webhook["secret_token"]
        assert "en" in fake.commands and "vi" in fake.commands
        assert f"Bot: @{BOT_USERNAME} (Khuyến học Bot)" in lines
        await run_admin(app, "delete-webhook")
        assert fake.webhook == {}
        info = await run_admin(app, "info")
        assert any("(none: polling)" in line for line in info)
    finally:
        await app.db.dispose()


async def test_a_compiled_report_comes_as_a_document_and_a_photo_per_chart(
    bot: Running, fake: FakeTelegram
) -> None:
    """Issue 10, item 2: the charts, one per indicator, arrive as photos after the spreadsheet."""
    tree = await seed_tree(bot.app)
    await submit(bot.app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100, lf_registered=80)
    await make_contact(bot.app, str(USER), COMMUNE_OFFICER, tree.commune, channel="telegram")
    user = TgUser(fake)
    await user.say("/baocaotonghop")
    await user.press("2026-H1")
    summary, *files, menu = user.last
    assert "Phường Thục Phán" in summary["text"]
    documents = [f for f in files if "document" in f]
    photos = [f for f in files if "photo" in f]
    assert files == documents + photos  # the document(s) to file first, then the charts
    assert documents[0]["document_name"] == "bao-cao-phuong-thuc-phan-2026-H1.xlsx"
    assert [p["photo_name"] for p in photos] == [
        f"bao-cao-phuong-thuc-phan-2026-H1-{key}.png"
        for key in ("gia-dinh-hoc-tap", "dong-ho-hoc-tap", "cong-dong-hoc-tap", "ty-le-hoi-vien-tren-dan-so")
    ]
    assert all(p["photo"].startswith(b"\x89PNG") for p in photos)
    buttons = [b["callback_data"] for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    assert "cmd:baocaotonghop" in buttons
