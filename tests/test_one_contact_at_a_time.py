"""DESIGN.md boundary 10: one contact's messages are applied one at a time and in order, on every
instance behind a load balancer.

The bot runs as real instances (uvicorn processes, as `khuyenhoc run` serves it) on one
PostgreSQL database. One officer files a report of 100 questions in 50 pairs of answers:

* two instances: each pair is posted at the same moment, one answer to each instance. Either
  answer may land first; each must be applied exactly once, so the two fields of the pair hold
  the pair's two answers and every later answer lands where it belongs.
* one instance: the second answer of a pair follows the first by a few milliseconds, while the
  first is still being handled; both must be applied, in the order they arrived.

The saved report must equal the answers. The form is written for this test (every answer a
plain number, no rules): only the order of arrival decides where an answer lands, so a lost,
doubled or reordered answer shows as a wrong field. It runs through the web chat API and the
Telegram and Zalo webhooks (replies go to the fake Bot API servers of tests/fakes).
"""

from __future__ import annotations

import asyncio
import itertools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from bot.channels.telegram import channel as telegram
from bot.channels.zalo import channel as zalo
from bot.domain.app import App
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Kind
from storage.db import Database
from storage.models import VILLAGE_OFFICER, ChannelIdentity, Contact, DialogueState, Submission
from tests.fakes.harness import TELEGRAM_TOKEN, ZALO_TOKEN
from tests.fakes.instance import start_instances
from tests.fakes.serving import serving
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.support import CONTENT, START, make_app, make_contact, seed_tree, webchat_id

pytestmark = pytest.mark.postgres

FIELDS = 100  # 50 pairs
STAGGER = 0.005  # one instance: the second answer of a pair follows the first by this much
ANSWERS = [str(1000 + n) for n in range(1, FIELDS + 1)]
SORRY = translator("vi")(
    "Sorry, something went wrong on our side. Nothing you sent before was lost: "
    "please send your last answer again."
)
NO_LIMITS = {
    "telegram_rate_per_second": 0,
    "telegram_chat_rate_per_second": 0,
    "zalo_rate_per_second": 0,
    "zalo_chat_rate_per_second": 0,
}


def field_key(n: int) -> str:
    return f"q{n:03d}"


def content_with_a_long_report(directory: Path) -> Path:
    """The real content, with a village report of FIELDS plain numbers and no rules."""
    content = directory / "content"
    (content / "forms").mkdir(parents=True)
    for entry in CONTENT.iterdir():
        if entry.name != "forms":
            (content / entry.name).symlink_to(entry)
    for form in (CONTENT / "forms").iterdir():
        if form.name != "village_report.yaml":
            (content / "forms" / form.name).symlink_to(form)
    report = {
        "key": "village_report",
        "title": {"vi": "Báo cáo dài", "en": "A long report"},
        "unit_kinds": ["village", "residential_group"],
        "period_kinds": ["half_year", "year"],
        "record": "per_period",
        "fields": [
            {
                "key": field_key(n),
                "type": "integer",
                "label": {"vi": f"Câu {n}", "en": f"Question {n}"},
                "min": 0,
                "max": 1_000_000,
            }
            for n in range(1, FIELDS + 1)
        ],
    }
    (content / "forms" / "village_report.yaml").write_text(yaml.safe_dump(report, allow_unicode=True))
    return content


# ----------------------------------------------------------------------------- the transports


class Transport(ABC):
    """How one platform posts a person's message to an instance."""

    channel: str
    person: str

    def settings(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    async def post(self, client: httpx.AsyncClient, url: str, text: str | None, option: str | None) -> None:
        """Deliver one message (typed `text`, or a pressed `option`) to the instance at `url`."""

    def errors(self) -> list[str]:
        """Error replies sent through the platform (the web chat checks each response instead)."""
        return []

    async def ready(self, client: httpx.AsyncClient, url: str) -> bool:
        return (await client.get(url + "/health")).status_code == 200


class WebChat(Transport):
    channel = "webchat"
    person = "client_one_officer_0001"

    def __init__(self) -> None:
        self.ids = itertools.count(1)

    async def post(self, client: httpx.AsyncClient, url: str, text: str | None, option: str | None) -> None:
        body: dict[str, Any] = {"client_id": self.person, "message_id": f"msg-{next(self.ids):06d}"}
        body.update({"option_id": option} if option else {"text": text})
        r = await client.post(url + "/api/webchat/messages", json=body)
        assert r.status_code == 200, r.text
        texts = [reply["text"] for reply in r.json()["replies"]]
        assert SORRY not in texts


class Telegram(Transport):
    channel = "telegram"
    person = "424242"

    def __init__(self, fake: FakeTelegram, api_url: str) -> None:
        self.fake = fake
        self.api_url = api_url
        self.ids = itertools.count(1)
        self.headers = {telegram.SECRET_HEADER: telegram.webhook_secret(TELEGRAM_TOKEN, None)}

    def settings(self) -> dict[str, Any]:
        return {"telegram_token": TELEGRAM_TOKEN, "telegram_api_base_url": self.api_url, "public_url": None}

    async def post(self, client: httpx.AsyncClient, url: str, text: str | None, option: str | None) -> None:
        n = next(self.ids)
        user = {"id": int(self.person), "is_bot": False, "first_name": "Lan"}
        chat = {"id": int(self.person), "type": "private"}
        if option is not None:
            shown = {"message_id": 9_000 + n, "date": 0, "text": "…", "chat": chat}
            update: dict[str, Any] = {
                "update_id": n,
                "callback_query": {
                    "id": f"q{n}",
                    "from": user,
                    "chat_instance": "c",
                    "data": option,
                    "message": shown,
                },
            }
        else:
            message = {"message_id": n, "date": 0, "text": text, "from": user, "chat": chat}
            update = {"update_id": n, "message": message}
        r = await client.post(url + telegram.WEBHOOK_PATH, json=update, headers=self.headers)
        assert r.status_code == 200

    def errors(self) -> list[str]:
        return [m["text"] for m in self.fake.sent(int(self.person)) if m.get("text") == SORRY]

    async def ready(self, client: httpx.AsyncClient, url: str) -> bool:
        # 503 until the channel has checked its token and set its webhook.
        r = await client.post(url + telegram.WEBHOOK_PATH, json={"update_id": 1}, headers=self.headers)
        return r.status_code == 200


class Zalo(Transport):
    channel = "zalo"
    person = "6ede9afa66b88fe6d6a9"

    def __init__(self, fake: FakeZalo, api_url: str) -> None:
        self.fake = fake
        self.api_url = api_url
        self.ids = itertools.count(1)
        self.headers = {zalo.SECRET_HEADER: zalo.webhook_secret(ZALO_TOKEN, None)}

    def settings(self) -> dict[str, Any]:
        return {"zalo_token": ZALO_TOKEN, "zalo_api_base_url": self.api_url, "public_url": None}

    async def post(self, client: httpx.AsyncClient, url: str, text: str | None, option: str | None) -> None:
        # Zalo has no buttons: an option is its number, typed (both options used here come first).
        message = {
            "message_id": f"m{next(self.ids):08x}",
            "text": text if option is None else "1",
            "date": 0,
            "chat": {"id": self.person, "chat_type": "PRIVATE"},
            "from": {"id": self.person, "display_name": "Lan", "is_bot": False},
        }
        update = {"event_name": "message.text.received", "message": message}
        r = await client.post(url + zalo.WEBHOOK_PATH, json=update, headers=self.headers)
        assert r.status_code == 200

    def errors(self) -> list[str]:
        return [m["text"] for m in self.fake.sent(self.person) if m.get("text") == SORRY]


@pytest.fixture(params=["webchat", "telegram", "zalo"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    if request.param == "webchat":
        yield WebChat()
    elif request.param == "telegram":
        fake_telegram = FakeTelegram(TELEGRAM_TOKEN, lenient_edits=True)
        async with serving(fake_telegram.app, lifespan="off") as url:
            yield Telegram(fake_telegram, url)
        await fake_telegram.close()
    else:
        fake_zalo = FakeZalo(ZALO_TOKEN)
        async with serving(fake_zalo.app, lifespan="off") as url:
            yield Zalo(fake_zalo, url)
        await fake_zalo.close()


# ----------------------------------------------------------------------------- the report


@dataclass
class Officer:
    db: Database
    content: Path
    transport: Transport


@pytest.fixture
async def officer(postgres_db: Database, tmp_path: Path, transport: Transport) -> AsyncIterator[Officer]:
    content = content_with_a_long_report(tmp_path)
    app = make_app(postgres_db.url, content_dir=str(content))
    tree = await seed_tree(app)
    person = await webchat_id(app, transport.person) if transport.channel == "webchat" else transport.person
    await make_contact(app, person, VILLAGE_OFFICER, tree.village, "vi", channel=transport.channel)
    await app.db.dispose()
    yield Officer(postgres_db, content, transport)


async def file_in_pairs(officer: Officer, instances: int) -> dict[str, Any]:
    """Start the instances, file the report in pairs of answers, return the saved values."""
    transport = officer.transport
    settings = {
        "database_url": officer.db.url,
        "content_dir": str(officer.content),
        "log_level": "WARNING",
        **NO_LIMITS,
        **transport.settings(),
    }
    async with (
        start_instances([settings] * instances, START, ready=transport.ready) as running,
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_keepalive_connections=10)) as client,
    ):
        first, second = running[0].url, running[-1].url
        await transport.post(client, first, "/baocao", None)
        await transport.post(client, first, None, "2026")
        for n in range(0, FIELDS, 2):
            a, b = ANSWERS[n], ANSWERS[n + 1]
            one = asyncio.create_task(transport.post(client, first, a, None))
            if instances == 1:
                await asyncio.sleep(STAGGER)
            await asyncio.gather(one, transport.post(client, second, b, None))
        await transport.post(client, first, None, "confirm")
    assert transport.errors() == []
    async with officer.db.sessions() as session:
        saved = list((await session.execute(select(Submission))).scalars())
        if not saved:  # say how far the dialogue got
            state = (await session.execute(select(DialogueState.state))).scalar_one()
            answered = state.get("values", {})
            pytest.fail(f"the report was not saved: {len(answered)} of {FIELDS} answers in {answered}")
    assert len(saved) == 1
    return saved[0].values


async def test_two_instances_apply_each_answer_exactly_once(officer: Officer) -> None:
    values = await file_in_pairs(officer, instances=2)
    for n in range(0, FIELDS, 2):
        pair = {values.get(field_key(n + 1)), values.get(field_key(n + 2))}
        assert pair == {int(ANSWERS[n]), int(ANSWERS[n + 1])}, f"pair {n // 2 + 1}: {values}"


async def test_one_instance_applies_answers_in_arrival_order(officer: Officer) -> None:
    values = await file_in_pairs(officer, instances=1)
    assert values == {field_key(n + 1): int(answer) for n, answer in enumerate(ANSWERS)}


# ----------------------------------------------------------------------------- a new contact


async def test_two_first_messages_of_a_new_person_make_one_contact(postgres_db: Database) -> None:
    """Two instances (two apps, two connection pools) get the first messages of a new person at once."""
    apps: list[App] = [make_app(postgres_db.url) for _ in range(2)]
    try:
        for n in range(10):
            person = f"new_person_{n:04d}_abcdefgh"
            firsts = [Incoming("webchat", person, Kind.TEXT, text=text) for text in ("/start", "xin chào")]
            answers = await asyncio.gather(*(app.handle(msg) for app, msg in zip(apps, firsts, strict=True)))
            assert all(SORRY not in (r.text for r in handled.replies) for handled in answers)
    finally:
        for app in apps:
            await app.db.dispose()
    async with postgres_db.sessions() as session:
        identities = (await session.execute(select(func.count(ChannelIdentity.id)))).scalar_one()
        contacts = (await session.execute(select(func.count(Contact.id)))).scalar_one()
    assert identities == contacts == 10
