"""The parts both platform channels share: text splitting, options as text, the rate limiter,
retries, per-chat ordering, token redaction in logs, webhook secrets, and the Zalo client's
reading of the API's answers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.manager import RedactSecrets, install_token_redaction
from bot.channels.ratelimit import RateLimiter, RetryPolicy, with_retries
from bot.channels.render import options_as_text, split_text
from bot.channels.telegram.channel import secret_matches
from bot.channels.telegram.channel import webhook_secret as telegram_secret
from bot.channels.zalo.channel import webhook_secret as zalo_secret
from bot.channels.zalo.client import ZaloApiError, ZaloClient
from bot.channels.zalo.payload import BadUpdate, parse_webhook
from bot.domain.i18n import translator
from bot.domain.messages import Option, Reply
from bot.domain.sending import Blocked, PermanentError, RateLimited, TransientError
from storage.locks import KeyedLocks
from tests.fakes.harness import ZALO_TOKEN
from tests.fakes.serving import serving
from tests.fakes.zalo_api import FakeZalo

# ----------------------------------------------------------------------------- splitting


def test_short_texts_are_one_part() -> None:
    assert split_text("Xin chào", 10) == ["Xin chào"]
    assert split_text("", 10) == [""]
    assert split_text("x" * 10, 10) == ["x" * 10]


def test_texts_are_cut_between_lines() -> None:
    text = "một hai\nba bốn\nnăm sáu"
    assert split_text(text, 15) == ["một hai\nba bốn", "năm sáu"]


def test_a_line_longer_than_the_limit_is_cut_at_a_space_or_hard() -> None:
    assert split_text("aaaa bbbb cccc", 9) == ["aaaa bbbb", "cccc"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


@given(st.text(alphabet=st.sampled_from("ab ăđ\n"), max_size=400), st.integers(min_value=1, max_value=60))
def test_no_part_is_too_long_and_no_word_is_lost(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert "".join(text.split()) == "".join("".join(parts).split())


# ----------------------------------------------------------------------------- options as text


def test_numbered_options_and_the_hint_in_each_language() -> None:
    reply = Reply(
        "Chọn kỳ báo cáo:",
        options=[Option("a", "Nửa cuối năm"), Option("b", "Nửa đầu năm"), Option("c", "Cả năm")],
    )
    assert options_as_text(reply, translator("vi")) == (
        "Chọn kỳ báo cáo:\n\n1. Nửa cuối năm\n2. Nửa đầu năm\n3. Cả năm\n\n(Trả lời 1, 2 hoặc 3.)"
    )
    assert options_as_text(reply, translator("en")).endswith("(Reply 1, 2 or 3.)")
    single = Reply("Tiếp tục?", options=[Option("ok", "Tiếp tục")])
    assert options_as_text(single, translator("vi")).endswith("1. Tiếp tục\n\n(Trả lời 1.)")
    assert options_as_text(Reply("Không có lựa chọn"), translator("vi")) == "Không có lựa chọn"


def test_when_the_answer_is_a_number_options_are_words() -> None:
    reply = Reply("Số hộ?", options=[Option("keep", "Giữ: 1.250"), Option("skip", "Bỏ qua")], numbered=False)
    text = options_as_text(reply, translator("vi"))
    assert "• Giữ: 1.250\n• Bỏ qua" in text
    assert "1." not in text.replace("1.250", "")


def test_the_menu_lists_commands() -> None:
    reply = Reply(
        "Anh/chị muốn làm gì?",
        options=[Option("cmd:baocao", "Báo cáo thôn"), Option("cmd:trogiup", "Hướng dẫn")],
    )
    text = options_as_text(reply, translator("vi"))
    assert "/baocao — Báo cáo thôn\n/trogiup — Hướng dẫn" in text
    assert "ví dụ /baocao" in text


def test_the_menu_in_english_lists_the_english_commands() -> None:
    """Zalo shows the menu as commands to type: in English, the English ones (issue 10)."""
    reply = Reply(
        "What would you like to do?",
        options=[Option("cmd:baocao", "Village report"), Option("cmd:traloi 12", "Answer now")],
    )
    text = options_as_text(reply, translator("en"))
    assert "/report — Village report\n/answer 12 — Answer now" in text
    assert "for example /report." in text


# ----------------------------------------------------------------------------- the rate limiter


class FakeTime:
    """A clock whose sleep moves it: rate-limiter arithmetic without waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_overall_rate_spaces_sends() -> None:
    time = FakeTime()
    limiter = RateLimiter(30, 0, clock=time.clock, sleep=time.sleep)
    starts = []
    for chat in range(31):
        await limiter.acquire(chat)
        starts.append(time.now)
    assert starts[-1] - starts[0] == pytest.approx(1.0)  # 31 sends: the 31st one second after the 1st


async def test_per_chat_rate_with_a_burst() -> None:
    time = FakeTime()
    limiter = RateLimiter(0, 1, 3, clock=time.clock, sleep=time.sleep)
    waits = [await limiter.acquire("chat") for _ in range(5)]
    assert waits[:3] == [0, 0, 0]  # three at once
    assert waits[3:] == [pytest.approx(1.0), pytest.approx(1.0)]  # then one per second
    assert await limiter.acquire("other chat") == 0  # other chats are not held up


async def test_a_pause_holds_every_send() -> None:
    time = FakeTime()
    limiter = RateLimiter(0, 0, clock=time.clock, sleep=time.sleep)
    limiter.pause(2.5)
    assert await limiter.acquire("a") == pytest.approx(2.5)
    assert await limiter.acquire("b") == 0


async def test_concurrent_senders_get_distinct_slots() -> None:
    limiter = RateLimiter(0, 20, 1)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def send() -> None:
        await limiter.acquire("chat")
        times.append(loop.time())

    await asyncio.gather(*(send() for _ in range(4)))
    # The k-th send goes no earlier than k slots (1/20 s each) after the first. A loaded machine
    # can only make a send later than its slot, never earlier, so this holds under any load.
    times.sort()
    assert all(times[k] - times[0] >= k / 20 - 0.001 for k in range(4))


# ----------------------------------------------------------------------------- retries


async def test_transient_errors_are_retried_then_given_up() -> None:
    time = FakeTime()
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransientError("502")
        return "ok"

    assert await with_retries(flaky, RetryPolicy(retries=3, backoff=1.0), sleep=time.sleep) == "ok"
    assert len(time.slept) == 2 and 1.0 <= time.slept[0] <= 1.25 and 2.0 <= time.slept[1] <= 2.5

    async def down() -> str:
        raise TransientError("down")

    with pytest.raises(TransientError):
        await with_retries(down, RetryPolicy(retries=1, backoff=0), sleep=time.sleep)


async def test_rate_limited_waits_retry_after_unless_too_long() -> None:
    time = FakeTime()
    limiter = RateLimiter(0, 0, clock=time.clock, sleep=time.sleep)
    answers: list[Exception | str] = [RateLimited(3), "sent"]

    async def op() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await with_retries(op, RetryPolicy(), limiter) == "sent"
    assert time.slept == [pytest.approx(3)]

    async def flood() -> str:
        raise RateLimited(600)

    with pytest.raises(RateLimited):  # the outbox will try again later
        await with_retries(flood, RetryPolicy(max_retry_after=60), limiter)
    with pytest.raises(RateLimited):  # without a limiter there is nobody to pause
        await with_retries(flood, RetryPolicy())


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def blocked() -> None:
        nonlocal calls
        calls += 1
        raise Blocked("403")

    with pytest.raises(Blocked):
        await with_retries(blocked, RetryPolicy(retries=5))
    assert calls == 1


async def test_keyed_locks_keep_order_and_forget_idle_keys() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def handle(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            await asyncio.sleep(pause)
            order.append(name)

    await asyncio.gather(handle("a", "a1", 0.03), handle("a", "a2", 0), handle("b", "b1", 0))
    assert order == ["b1", "a1", "a2"]
    assert len(locks) == 0


# ----------------------------------------------------------------------------- logs and secrets


def test_redaction_of_messages_arguments_and_tracebacks() -> None:
    redact = RedactSecrets()
    redact.secrets.add("zalo-secret-value")
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: %s %s "%s"',
        ("POST", httpx.URL("https://api.telegram.org/bot123456789:AAE-abcdefghijklmnopqrstuv/getMe"), "200"),
        None,
    )
    redact.filter(record)
    assert record.getMessage() == 'HTTP Request: POST https://api.telegram.org/bot<redacted>/getMe "200"'
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", ("zalo-secret-value",), None)
    redact.filter(record)
    assert record.getMessage() == "token <redacted>"
    try:
        raise RuntimeError("The token `123456789:AAE-abcdefghijklmnopqrstuv` was rejected")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    redact.filter(record)
    assert record.exc_text is not None and "AAE-abcdefghijklmnopqrstuv" not in record.exc_text


def test_redaction_is_installed_on_the_loggers_that_see_urls() -> None:
    redact = install_token_redaction("a-zalo-token-value")
    for name in (
        "httpx",
        "telegram.Bot",
        "telegram.ext.ExtBot",
        "telegram.ext.Updater",
        "bot.channels.zalo.client",
    ):
        assert redact in logging.getLogger(name).filters
    assert "a-zalo-token-value" in redact.secrets


def test_webhook_secrets() -> None:
    derived = telegram_secret("1:abc", None)
    assert derived == telegram_secret("1:abc", None)  # every instance derives the same
    assert derived != telegram_secret("2:abc", None) and derived != zalo_secret("1:abc", None)
    assert derived.isalnum() and len(derived) == 48  # fits both platforms' rules
    assert telegram_secret("1:abc", "mine") == "mine"
    assert secret_matches(derived, derived)
    assert not secret_matches(None, derived) and not secret_matches("", derived)
    assert not secret_matches("bí mật", derived)  # non-ASCII is compared, not an error


# ----------------------------------------------------------------------------- the Zalo client


@pytest.fixture
async def zalo() -> AsyncIterator[tuple[FakeZalo, ZaloClient]]:
    fake = FakeZalo(ZALO_TOKEN)
    async with serving(fake.app, lifespan="off") as url:
        async with ZaloClient(ZALO_TOKEN, url) as client:
            yield fake, client
        await fake.close()


async def test_client_methods(zalo: tuple[FakeZalo, ZaloClient]) -> None:
    fake, client = zalo
    assert (await client.get_me())["account_name"] == "bot.khuyenhoc"
    await client.set_webhook("https://bot.example/zalo/webhook", "s" * 20)
    assert (await client.get_webhook_info())["url"] == "https://bot.example/zalo/webhook"
    await client.delete_webhook()
    assert (await client.send_message("u1", "Xin chào"))["message_id"]
    await client.send_photo("u1", "https://example.org/a.png", caption="Ảnh")
    await client.send_chat_action("u1")
    assert [c.method for c in fake.calls] == [
        "getMe",
        "setWebhook",
        "getWebhookInfo",
        "deleteWebhook",
        "sendMessage",
        "sendPhoto",
        "sendChatAction",
    ]
    assert fake.calls[5].params == {"chat_id": "u1", "photo": "https://example.org/a.png", "caption": "Ảnh"}


async def test_get_updates_gives_one_update_or_none(zalo: tuple[FakeZalo, ZaloClient]) -> None:
    fake, client = zalo
    assert await client.get_updates(timeout=1) is None  # 408: nothing new
    first, second = fake.update("u1", "một"), fake.update("u1", "hai")
    await fake.deliver(first)
    await fake.deliver(second)
    assert await client.get_updates(timeout=1) == first
    assert await client.get_updates(timeout=1) == second


async def test_client_errors_become_channel_errors(zalo: tuple[FakeZalo, ZaloClient]) -> None:
    fake, client = zalo
    fake.fail("sendMessage", 429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        await client.send_message("u1", "x")
    assert limited.value.retry_after == 7
    fake.fail("sendMessage", 503)
    with pytest.raises(TransientError):
        await client.send_message("u1", "x")
    fake.blocked.add("u2")
    with pytest.raises(Blocked):
        await client.send_message("u2", "x")
    with pytest.raises(ZaloApiError) as refused:
        await client.send_message("u1", "x" * 2001)
    assert isinstance(refused.value, PermanentError) and refused.value.code == 400
    async with ZaloClient("wrong", fake_url(client)) as wrong:
        with pytest.raises(PermanentError):
            await wrong.get_me()


async def test_unreachable_server_is_a_transient_error() -> None:
    async with ZaloClient(ZALO_TOKEN, "http://127.0.0.1:9", timeout=2) as client:
        with pytest.raises(TransientError) as failed:
            await client.get_me()
    assert ZALO_TOKEN not in str(failed.value)


def test_webhook_bodies_bare_or_wrapped() -> None:
    update = {"event_name": "message.text.received", "message": {"text": "x"}}
    assert parse_webhook(json.dumps(update).encode()) == update
    assert parse_webhook(json.dumps({"ok": True, "result": update}).encode()) == update
    assert parse_webhook(b'{"ok": true}') is None
    with pytest.raises(BadUpdate):
        parse_webhook(json.dumps([update]).encode())


def fake_url(client: ZaloClient) -> str:
    return client._prefix.split("/bot")[0]
