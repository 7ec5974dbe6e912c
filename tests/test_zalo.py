"""The Zalo channel end to end: our Zalo client against a fake Zalo Bot API server, over HTTP.

Zalo has no buttons: every choice is a numbered list, answered by typing the number (or the
label). The full report runs in polling mode (getUpdates hands out one update per call); the
webhook's checks run in webhook mode.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.channels.zalo.channel import ZaloChannel, to_incoming
from bot.domain.messages import Kind, Option, Reply
from bot.domain.sending import Blocked
from bot.services.actor import CONSOLE
from bot.services.invites import create_invite, format_code
from storage.db import Database
from storage.models import COMMUNE_OFFICER, VILLAGE_OFFICER, ChannelIdentity, Contact, Submission
from tests.fakes.harness import ZALO_TOKEN, Running, eventually, fake_api_served, running_bot
from tests.fakes.zalo_api import FakeZalo
from tests.support import make_contact, seed_tree
from tests.test_reports_helpers import submit, vn

USER = "6ede9afa66b88fe6d6a9"
# The village report typed as a village officer would, in Vietnamese; "1" picks numbered options.
ANSWERS = [
    "1.250",
    "5000",
    "800",
    "700",
    "40",
    "30",
    "25",
    "12",
    "2",
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


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    async with fake_api_served(FakeZalo(ZALO_TOKEN)) as api:
        yield api


@pytest.fixture
async def hooked(sqlite_db: Database, fake: FakeZalo) -> AsyncIterator[Running]:
    """The bot in webhook mode."""
    async with running_bot(
        sqlite_db.url, webhook=True, zalo_token=ZALO_TOKEN, zalo_api_base_url=fake.url
    ) as running:
        yield running


class ZaloUser:
    """One person writing to the bot on Zalo; works in webhook and in polling mode."""

    def __init__(self, fake: FakeZalo, running: Running, user_id: str = USER) -> None:
        self.fake = fake
        self.running = running
        self.id = user_id
        self.last: list[str] = []

    async def send(self, update: dict[str, Any]) -> list[str]:
        before = len(self.fake.sent(self.id))
        channel = self.running.runtime.zalo
        assert channel is not None
        polled = channel.polled
        status = await self.fake.deliver(update)
        if status == 0:  # polling: wait until the update was taken and handled
            await eventually(lambda: channel.polled > polled)
        else:
            assert status == 200
        self.last = [m["text"] for m in self.fake.sent(self.id)[before:]]
        return self.last

    async def say(self, text: str) -> list[str]:
        return await self.send(self.fake.update(self.id, text))

    @property
    def text(self) -> str:
        return "\n".join(self.last)


async def test_onboarding_and_a_complete_village_report_by_polling(
    sqlite_db: Database, fake: FakeZalo
) -> None:
    fake.webhook = {"url": "https://old.example/zalo/webhook", "secret_token": "x" * 16}
    async with running_bot(
        sqlite_db.url, webhook=False, zalo_token=ZALO_TOKEN, zalo_api_base_url=fake.url
    ) as bot:
        assert fake.webhook == {}  # getUpdates works only without a webhook
        tree = await seed_tree(bot.app)
        async with bot.app.uow() as uow:
            invite = await create_invite(uow, CONSOLE, tree.village, VILLAGE_OFFICER, bot.app.clock.now(), 14)
            await uow.commit()
        user = ZaloUser(fake, bot)

        await user.say("/start")
        assert "1. Tiếng Việt\n2. English" in user.text
        assert "(Trả lời 1 hoặc 2.)" in user.text
        await user.say("1")  # a numbered reply
        assert "Anh/chị có đồng ý không?" in user.text
        await user.say("tôi đồng ý")  # …or the label, typed without care for case
        await user.say("2")
        await user.say(format_code(invite.code))
        assert "Thôn Nà Rụa" in user.text
        assert "/baocao — Báo cáo thôn" in user.text  # the menu: commands to type
        await user.say("/baocao")
        assert "Trả lời 1 hoặc 2." in user.text  # the periods: the year (default), H1
        await user.say("1")
        assert "Câu 1/25" in user.text
        for answer in ANSWERS:
            await user.say(answer)
            assert "Xin lỗi" not in user.text, user.text
            if "Câu 9/25" in user.text:  # the one choice question: numbered
                assert "1. Chưa đăng ký" in user.text
        assert "Trả lời 1, 2 hoặc 3." in user.text  # send / change / cancel
        await user.say("1")
        assert "✅" in user.text

    async with bot.app.db.sessions() as session:
        saved = (await session.execute(select(Submission.channel, Submission.values))).all()
    assert len(saved) == 1
    assert saved[0][0] == "zalo"
    assert saved[0][1]["households_total"] == 1250
    assert saved[0][1]["village_lc_status"] == "registered"
    assert saved[0][1]["award_amount_vnd"] == 1_200_000
    assert all(len(m["text"]) <= 2000 for m in fake.sent())


async def test_a_question_whose_answer_is_a_number_lists_words_not_numbers(
    hooked: Running, fake: FakeZalo
) -> None:
    channel = hooked.runtime.zalo
    assert channel is not None
    await ZaloUser(fake, hooked).say("/start")
    reply = Reply(
        "Câu 2/25: Số nhân khẩu",
        options=[Option("skip", "Bỏ qua"), Option("back", "Quay lại")],
        numbered=False,
    )
    await channel.sender.send(USER, [reply])
    text = fake.sent(USER)[-1]["text"]
    assert "• Bỏ qua\n• Quay lại" in text
    assert "1." not in text and "Trả lời 1" not in text


# ----------------------------------------------------------------------------- the webhook


async def test_the_webhook_is_registered_with_its_secret(hooked: Running, fake: FakeZalo) -> None:
    channel = hooked.runtime.zalo
    assert channel is not None
    assert fake.webhook["url"] == f"{hooked.url}/zalo/webhook"
    assert fake.webhook["secret_token"] == channel.secret
    assert 8 <= len(channel.secret) <= 256


@pytest.mark.parametrize("secret", [None, "wrong-secret-123", ""])
async def test_a_wrong_or_missing_secret_is_refused_and_nothing_processed(
    hooked: Running, fake: FakeZalo, secret: str | None
) -> None:
    headers = {} if secret is None else {"X-Bot-Api-Secret-Token": secret}
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{hooked.url}/zalo/webhook", json=fake.update(USER, "/start"), headers=headers)
    assert r.status_code == 403
    assert fake.sent() == []
    async with hooked.app.db.sessions() as session:
        assert (await session.execute(select(func.count(Contact.id)))).scalar_one() == 0


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
async def test_bare_and_wrapped_updates_are_accepted(hooked: Running, fake: FakeZalo, wrapped: bool) -> None:
    assert await fake.deliver(fake.update(USER, "/start"), wrapped=wrapped) == 200
    assert "Xin chào" in fake.sent(USER)[0]["text"]


async def test_a_duplicate_update_is_processed_once(hooked: Running, fake: FakeZalo) -> None:
    update = fake.update(USER, "/start")
    assert await fake.deliver(update) == 200
    assert await fake.deliver(update, wrapped=True) == 200  # the same message id again
    assert len(fake.sent(USER)) == 1


async def test_images_stickers_and_the_rest_get_a_polite_answer(hooked: Running, fake: FakeZalo) -> None:
    user = ZaloUser(fake, hooked)
    await user.say("/start")
    for event in ("message.image.received", "message.sticker.received", "message.unsupported.received"):
        await user.send(fake.update(USER, None, event=event))
        assert "chỉ đọc được tin nhắn văn bản" in user.text.lower() or "only read text" in user.text
        assert "1. Tiếng Việt" in user.text  # and the open question again


async def test_in_a_group_only_start_and_help_get_a_pointer_to_a_private_chat(
    hooked: Running, fake: FakeZalo
) -> None:
    for text in ("chào cả nhà", "/baocao", "/start", "/trogiup"):
        await fake.deliver(fake.update(USER, text, chat_type="GROUP", chat_id="group-1"))
    answers = fake.sent("group-1")
    assert len(answers) == 2
    assert fake.sent(USER) == []


async def test_malformed_bodies_are_refused(hooked: Running, fake: FakeZalo) -> None:
    channel = hooked.runtime.zalo
    assert channel is not None
    headers = {"X-Bot-Api-Secret-Token": channel.secret, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        assert (
            await client.post(f"{hooked.url}/zalo/webhook", content=b"{nope", headers=headers)
        ).status_code == 400
        r = await client.post(f"{hooked.url}/zalo/webhook", content=json.dumps({"ok": True}), headers=headers)
    assert r.status_code == 200 and fake.sent() == []


# ----------------------------------------------------------------------------- sending


async def test_a_429_is_waited_out_and_the_reply_delivered(hooked: Running, fake: FakeZalo) -> None:
    fake.fail("sendMessage", 429, retry_after=1)
    await ZaloUser(fake, hooked).say("/start")
    attempts = fake.calls_of("sendMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0


async def test_a_5xx_is_retried(hooked: Running, fake: FakeZalo) -> None:
    fake.fail("sendMessage", 503, times=2)
    await ZaloUser(fake, hooked).say("/start")
    assert [c.status for c in fake.calls_of("sendMessage")] == [503, 503, 200]


async def test_a_long_text_is_split_at_2000_characters_on_line_boundaries(
    hooked: Running, fake: FakeZalo
) -> None:
    channel = hooked.runtime.zalo
    assert channel is not None
    await ZaloUser(fake, hooked).say("/start")
    lines = [f"Thôn {i}: đã báo cáo, " + "số liệu " * 8 for i in range(60)]
    before = len(fake.sent(USER))
    await channel.sender.send(
        USER, [Reply("\n".join(lines), options=[Option("a", "Đồng ý"), Option("b", "Không")])]
    )
    parts = [m["text"] for m in fake.sent(USER)[before:]]
    assert len(parts) >= 3 and all(len(p) <= 2000 for p in parts)
    assert "\n".join(parts).split("\n")[: len(lines)] == lines
    assert parts[-1].endswith("1. Đồng ý\n2. Không\n\n(Trả lời 1 hoặc 2.)")


async def test_a_user_who_blocked_the_bot_is_marked_until_they_write_again(
    hooked: Running, fake: FakeZalo
) -> None:
    channel = hooked.runtime.zalo
    assert channel is not None
    user = ZaloUser(fake, hooked)
    await user.say("/start")
    fake.blocked.add(USER)
    await user.say("1")
    assert await blocked_at(hooked) is not None
    calls = len(fake.calls)
    with pytest.raises(Blocked):
        await channel.sender.send(USER, [Reply("Tin mới")])
    assert len(fake.calls) == calls
    fake.blocked.clear()
    await user.say("/trogiup")
    assert await blocked_at(hooked) is None
    assert user.last


async def test_rates_are_kept_per_person(sqlite_db: Database, fake: FakeZalo) -> None:
    async with running_bot(
        sqlite_db.url,
        webhook=True,
        zalo_token=ZALO_TOKEN,
        zalo_api_base_url=fake.url,
        zalo_chat_rate_per_second=10,
        zalo_chat_burst=2,
    ) as running:
        channel = running.runtime.zalo
        assert channel is not None
        start = time.monotonic()
        await channel.sender.deliver("p1", [Reply(f"tin {i}") for i in range(4)], "vi")
    times = [c.at - start for c in fake.calls_of("sendMessage")]
    # Two at once (the burst), then one every 0.1 s.
    assert times[1] < 0.09 and times[2] >= 0.09 and times[3] - times[2] >= 0.09


async def blocked_at(running: Running) -> Any:
    async with running.app.db.sessions() as session:
        q = select(ChannelIdentity.blocked_at).where(ChannelIdentity.channel == "zalo")
        return (await session.execute(q)).scalar_one()


# ----------------------------------------------------------------------------- translation


def test_translation_of_updates() -> None:
    fake = FakeZalo(ZALO_TOKEN)
    update = fake.update(USER, "  Xin chào ", name="Chị Lan")
    translated = to_incoming(update)
    assert translated is not None
    msg, is_group = translated
    assert (msg.channel, msg.external_id, msg.kind, msg.text, msg.display_name) == (
        "zalo",
        USER,
        Kind.TEXT,
        "  Xin chào ",
        "Chị Lan",
    )
    assert msg.update_id == update["message"]["message_id"] and not is_group
    image = to_incoming(fake.update(USER, None, event="message.image.received"))
    assert image is not None and image[0].kind is Kind.IMAGE
    assert to_incoming({"event_name": "message.unsupported.received"}) is None  # no sender: nothing to answer
    bot_update = fake.update(USER, "x")
    bot_update["message"]["from"]["is_bot"] = True
    assert to_incoming(bot_update) is None


async def test_the_channel_works_without_a_public_url_setting(sqlite_db: Database) -> None:
    from bot.channels.zalo.client import ZaloClient
    from tests.support import make_app

    app = make_app(sqlite_db.url, zalo_token=ZALO_TOKEN)
    async with ZaloClient(ZALO_TOKEN, "http://127.0.0.1:9") as client:
        channel = ZaloChannel(app, client)
        assert channel.polling and channel.webhook_url is None
    await app.db.dispose()


async def test_the_cli_helpers_register_and_remove_the_webhook(sqlite_db: Database, fake: FakeZalo) -> None:
    from bot.channels.zalo.channel import run_admin
    from tests.support import make_app

    app = make_app(
        sqlite_db.url,
        zalo_token=ZALO_TOKEN,
        zalo_api_base_url=fake.url,
        public_url="https://khuyenhoc.example.org/",
    )
    try:
        lines = await run_admin(app, "set-webhook")
        assert fake.webhook["url"] == "https://khuyenhoc.example.org/zalo/webhook"
        assert "Bot: bot.khuyenhoc" in lines
        await run_admin(app, "delete-webhook")
        assert fake.webhook == {}
    finally:
        await app.db.dispose()


async def test_a_compiled_report_says_how_many_files_zalo_cannot_take(
    hooked: Running, fake: FakeZalo
) -> None:
    """Zalo takes no files from the bot: the report's files (the document to file, four charts) are
    counted in one line, not listed by name."""
    tree = await seed_tree(hooked.app)
    await submit(hooked.app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100)
    await make_contact(hooked.app, USER, COMMUNE_OFFICER, tree.commune, channel="zalo")
    user = ZaloUser(fake, hooked)
    await user.say("/baocaotonghop")
    await user.say("2026-H1")
    assert "Phường Thục Phán" in user.text
    note = re.search(
        r"Đã chuẩn bị (\d+) tệp \(\.xlsx, (?:\.docx, )?\.png\) nhưng Zalo không nhận được tệp\.", user.text
    )
    assert note is not None and int(note.group(1)) >= 5, user.text
    assert ".png," not in user.text and "bao-cao-" not in user.text
