"""Broadcasts in the staff console (issue 12, item 5): the preview before sending (the same
checks, recipients and text as sending) and how each channel shows it, from the functions its
sender uses; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.channels.preview import on_telegram, on_webchat, on_zalo, previews
from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.permissions import NotAllowed, load_grants
from bot.domain.sending import Blocked, PermanentError
from bot.messaging.content import sync_content
from bot.messaging.outbox import OutboxSender, payload_replies, send_outbox
from bot.services.actor import Actor
from bot.services.broadcasts import (
    EMPTY,
    MAX_TEXT,
    MEMBERS,
    NO_ITEM,
    OFFICERS,
    TOO_LONG,
    Audience,
    BadMessage,
    Message,
    delivery_counts,
    preview_broadcast,
    queue_broadcast,
)
from storage.db import Database
from storage.models import (
    ADMIN,
    COMMUNE_OFFICER,
    MEMBER,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    OutboxMessage,
    RoleGrant,
)
from storage.models_outreach import ContentItem
from tests.console_support import console_client, csrf_of, log_in
from tests.fakes.fake_sink import RecordingSender
from tests.fakes.harness import ZALO_TOKEN, fake_api_served, running_bot
from tests.fakes.zalo_api import FakeZalo
from tests.support import START, Tree, make_app, make_contact, seed_tree

LONG_KEY = "huong-dan-dai"
ZALO_USER = "5ac1d4c0ffee00aa"


@dataclass
class World:
    app: App
    tree: Tree


async def add_long_article(app: App) -> None:
    """An article longer than a Zalo message (2,000 characters): the library may hold one."""
    now = app.clock.now()
    paragraphs = [
        f"Mục {i}. Gia đình học tập cần đăng ký với chi hội khuyến học thôn. " * 4 for i in range(12)
    ]
    async with app.uow() as uow:
        await sync_content(uow, app.content_dir, now)
        uow.session.add(
            ContentItem(
                item_key=LONG_KEY,
                language="vi",
                kind="article",
                title="Hướng dẫn đầy đủ",
                body="\n\n".join(paragraphs),
                topics=[],
                audience=[],
                published=date(2026, 11, 20),
                source="articles/vi/huong-dan-dai.md",
                digest="x",
                created_at=now,
                updated_at=now,
            )
        )
        await uow.commit()


async def build(app: App) -> World:
    tree = await seed_tree(app)
    people = [
        ("co", COMMUNE_OFFICER, tree.commune, "vi"),
        ("ps", PROVINCE_STAFF, tree.province, "vi"),
        ("vo", VILLAGE_OFFICER, tree.village, "vi"),
        ("m1", MEMBER, tree.village, "vi"),
        ("m2", MEMBER, tree.group, "en"),
        ("m3", MEMBER, tree.other_village, "vi"),  # the other commune
    ]
    for ext, role, unit, locale in people:
        await make_contact(app, ext, role, unit, locale)
    await add_long_article(app)
    return World(app, tree)


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    app = make_app(db.url, FixedClock(START))
    yield await build(app)
    await app.db.dispose()


async def actor(app: App, ext: str, channel: str = "test") -> Actor:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity(channel, ext)
        assert contact is not None
        return Actor.of(contact, await load_grants(uow, contact.id))


async def outbox_rows(app: App) -> int:
    async with app.read_only() as reads:
        return int((await reads.session.execute(select(func.count(OutboxMessage.id)))).scalar_one())


# ---- the preview, through the service -------------------------------------------------------------


async def test_the_preview_counts_and_composes_as_sending_does_and_writes_nothing(world: World) -> None:
    app, tree = world.app, world.tree
    officer = await actor(app, "co")
    audience = Audience((tree.commune.id,), (MEMBERS, OFFICERS))
    message = Message(text="Họp chi hội khuyến học lúc 19 giờ tối thứ Bảy.")
    async with app.read_only() as reads:
        seen = await preview_broadcast(reads, officer, audience, message, "vi")
    assert seen.recipients == 3 and seen.by_channel == {"test": 3}  # m1, m2, vo; not the sender
    assert seen.area.id == tree.commune.id
    assert await outbox_rows(app) == 0
    async with app.uow() as uow:
        queued = await queue_broadcast(uow, officer, audience, message, now=app.clock.now())
        await uow.commit()
    assert queued.recipients == seen.recipients
    async with app.read_only() as reads:
        payloads = [r.payload for r in (await reads.session.execute(select(OutboxMessage))).scalars()]
    assert seen.payload in payloads  # the Vietnamese readers get exactly what was previewed
    assert "Họp chi hội" in seen.payload["text"] and "/dung" in seen.payload["text"]


async def test_the_preview_refuses_what_sending_refuses(world: World) -> None:
    app, tree = world.app, world.tree
    officer = await actor(app, "co")
    mine = Audience((tree.commune.id,))
    async with app.read_only() as reads:
        for message, reason in [
            (Message(text="  "), EMPTY),
            (Message(text="x" * (MAX_TEXT + 1)), TOO_LONG),
            (Message(item_key="no-such-article"), NO_ITEM),
        ]:
            with pytest.raises(BadMessage) as refused:
                await preview_broadcast(reads, officer, mine, message, "vi")
            assert refused.value.reason == reason
        with pytest.raises(NotAllowed):
            await preview_broadcast(
                reads, officer, Audience((tree.other_commune.id,)), Message(text="Chào"), "vi"
            )
        with pytest.raises(NotAllowed):
            await preview_broadcast(reads, await actor(app, "vo"), mine, Message(text="Chào"), "vi")


# ---- each channel's rendering ---------------------------------------------------------------------


async def test_a_long_article_is_two_bubbles_on_zalo_and_one_on_telegram_and_the_web(world: World) -> None:
    app, tree = world.app, world.tree
    officer = await actor(app, "co")
    async with app.read_only() as reads:
        seen = await preview_broadcast(
            reads,
            officer,
            Audience((tree.commune.id,)),
            Message(item_key=LONG_KEY),
            "vi",
        )
    text = seen.payload["text"]
    assert 2000 < len(text) <= 4096
    replies = payload_replies(seen.payload, app.content_dir)
    telegram, zalo, web = previews(replies, "vi")
    assert [p.channel for p in (telegram, zalo, web)] == ["telegram", "zalo", "webchat"]
    assert [b.text for b in telegram.bubbles] == [text]
    assert [b.text for b in web.bubbles] == [text]
    assert len(zalo.bubbles) == 2 and all(len(b.text) <= 2000 for b in zalo.bubbles)
    assert zalo.bubbles[0].text.startswith("📢") and zalo.bubbles[1].text.endswith(seen.payload["text"][-40:])


def test_options_and_files_show_as_each_channel_shows_them() -> None:
    from bot.domain.messages import Attachment, Option, Reply

    reply = Reply(
        "Chọn một",
        options=[Option("a", "Đồng ý"), Option("b", "Không")],
        attachments=[
            Attachment("anh.png", "image/png", b"\x89PNG"),
            Attachment("bao-cao.xlsx", "application/x", b"x"),
        ],
    )
    telegram = on_telegram([reply])
    assert telegram.bubbles[0].buttons == ("Đồng ý", "Không")
    assert [b.pictures for b in telegram.bubbles[1:]] == [("anh.png",), ()]
    assert telegram.bubbles[2].files == ("bao-cao.xlsx",)
    zalo = on_zalo([reply], "vi")
    assert len(zalo.bubbles) == 1 and not zalo.bubbles[0].buttons
    assert "1. Đồng ý\n2. Không" in zalo.bubbles[0].text and "Zalo" in zalo.bubbles[0].text  # the files note
    web = on_webchat([reply])
    assert web.bubbles[0].pictures == ("anh.png",) and web.bubbles[0].files == ("bao-cao.xlsx",)


async def test_zalo_receives_exactly_the_bubbles_the_preview_showed(sqlite_db: Database) -> None:
    """The real Zalo sender, draining the real outbox, against the fake Zalo Bot API."""
    async with (
        fake_api_served(FakeZalo(ZALO_TOKEN)) as fake,
        running_bot(
            sqlite_db.url, webhook=True, zalo_token=ZALO_TOKEN, zalo_api_base_url=fake.url
        ) as running,
    ):
        app = running.app
        tree = await seed_tree(app)
        await make_contact(app, "co", COMMUNE_OFFICER, tree.commune)
        await make_contact(app, ZALO_USER, MEMBER, tree.village, channel="zalo")
        await add_long_article(app)
        officer = await actor(app, "co")
        audience, message = Audience((tree.commune.id,)), Message(item_key=LONG_KEY)
        async with app.read_only() as reads:
            seen = await preview_broadcast(reads, officer, audience, message, "vi")
        assert seen.by_channel == {"zalo": 1}
        async with app.uow() as uow:
            await queue_broadcast(uow, officer, audience, message, now=app.clock.now())
            await uow.commit()
        await send_outbox(app)
        sent = [m["text"] for m in fake.sent(ZALO_USER)]
    shown = on_zalo(payload_replies(seen.payload, app.content_dir), "vi")
    assert len(sent) == 2
    assert sent == [b.text for b in shown.bubbles]


# ---- the page ---------------------------------------------------------------------------------------


def bubbles_of(html: str, channel: str) -> list[str]:
    """The texts of one phone's bubbles on the preview."""
    frame = html.split(f'data-testid="phone-{channel}"', 1)[1].split("</figure>", 1)[0]
    return [unescape(m) for m in re.findall(r'<div class="text">(.*?)</div>', frame, re.S)]


async def compose(client: httpx.AsyncClient, action: str, **fields: Any) -> httpx.Response:
    page = await client.get("/console/broadcasts")
    assert page.status_code == 200
    data: dict[str, Any] = {"csrf": csrf_of(page.text), "groups": [MEMBERS], "what": "text", "when": "now"}
    data.update(fields)
    return await client.post(f"/console/broadcasts/{action}", data=data)


async def test_compose_preview_send_follow_and_cancel_from_the_console(world: World) -> None:
    app, tree = world.app, world.tree
    async with console_client(app) as client:
        await log_in(client, app, "co")
        page = await client.get("/console/broadcasts")
        assert page.status_code == 200
        assert 'href="/console/broadcasts"' in page.text  # the header's link
        assert "Thôn Nà Rụa" in page.text and "Xóm Pác Bó" not in page.text  # the commune's places
        text = "Họp chi hội khuyến học lúc 19 giờ tối thứ Bảy."
        shown = await compose(client, "preview", text=text)
        assert shown.status_code == 200, shown.text
        assert (
            'data-testid="recipient-count"' in shown.text and "Tin sẽ được gửi tới 2 người" in shown.text
        )  # m1, m2
        for channel in ("telegram", "zalo", "webchat"):
            (bubble,) = bubbles_of(shown.text, channel)
            assert text in bubble
        assert await outbox_rows(app) == 0  # a preview writes nothing
        # A long article: two bubbles on Zalo, one on Telegram.
        long = await compose(client, "preview", what="item", item=LONG_KEY)
        assert len(bubbles_of(long.text, "zalo")) == 2 and len(bubbles_of(long.text, "telegram")) == 1
        assert re.findall(r'data-testid="message-count">([^<]*)<', long.text) == [
            "1 tin nhắn",
            "2 tin nhắn",
            "1 tin nhắn",
        ]
        # Send now: one outbox row per recipient.
        sent = await compose(client, "send", text=text)
        assert sent.status_code == 303 and sent.headers["location"].startswith("/console/broadcasts?sent=")
        assert await outbox_rows(app) == 2
        # Later, to the officers of one village: queued for its time.
        later = await compose(
            client,
            "send",
            text="Nhắc nộp báo cáo năm",
            groups=[OFFICERS],
            places=[str(tree.village.id)],
            when="later",
            day="2026-11-25",
            time="07:30",
        )
        assert later.status_code == 303, later.text
        later_id = int(later.headers["location"].rsplit("=", 1)[1])
        async with app.read_only() as reads:
            b = await reads.broadcasts.get(later_id)
            assert b is not None and b.recipients == 1  # vo
            assert b.send_at == datetime(2026, 11, 25, 7, 30, tzinfo=VN_TZ)
        listed = await client.get("/console/broadcasts")
        assert f'data-testid="cancel-{later_id}"' in listed.text
        token = csrf_of(listed.text)
        cancelled = await client.post(f"/console/broadcasts/{later_id}/cancel", data={"csrf": token})
        assert cancelled.status_code == 303
        async with app.read_only() as reads:
            counts = (await delivery_counts(reads, [later_id]))[later_id]
        assert counts.cancelled == 1 and counts.queued == 0
        assert f'data-testid="cancel-{later_id}"' not in (await client.get("/console/broadcasts")).text


async def test_delivery_statistics_and_the_stacked_bar(world: World) -> None:
    app = world.app
    async with console_client(app) as client:
        await log_in(client, app, "co")
        sent = await compose(client, "send", text="Chúc mừng năm học mới", groups=[MEMBERS, OFFICERS])
        bid = int(sent.headers["location"].rsplit("=", 1)[1])
        # m1 receives it, m2's channel refuses it for good, vo blocked the bot.
        errors: dict[str, list[Exception]] = {"m2": [PermanentError("HTTP 400")], "vo": [Blocked("blocked")]}
        await OutboxSender(app, {"test": RecordingSender(errors=errors)}).drain()
        page = await client.get("/console/broadcasts")
    row = page.text.split(f'data-testid="broadcast-{bid}"', 1)[1].split("</tr>", 1)[0]
    cells = dict(re.findall(r'data-testid="(sent|waiting|failed|stopped)">([^<]*)<', row))
    assert cells == {"sent": "1", "waiting": "0", "failed": "1", "stopped": "1"}
    widths = re.findall(r'<span class="(ok|muted|bad|warn|cancel)" style="width:([\d.]+)%"', row)
    assert widths == [("ok", "33.3"), ("bad", "33.3"), ("warn", "33.3")]
    assert f'data-testid="cancel-{bid}"' not in row  # nothing left to cancel


async def test_user_errors_show_on_the_page(world: World) -> None:
    app = world.app
    async with console_client(app) as client:
        await log_in(client, app, "co")
        for fields, words in [
            ({"text": "  "}, "viết tin nhắn hoặc chọn một bài viết"),
            ({"text": "x" * (MAX_TEXT + 1)}, "Tin nhắn quá dài"),
            ({"text": "Chào", "groups": []}, "chọn gửi cho hội viên, cán bộ"),
            ({"text": "Chào", "when": "later", "day": "2026-11-01", "time": "08:00"}, "Thời điểm này đã qua"),
            ({"text": "Chào", "image_url": "không phải link"}, "https://"),
        ]:
            for action in ("preview", "send"):
                answer = await compose(client, action, **fields)
                assert answer.status_code == 400, (fields, answer.text)
                assert 'data-testid="broadcast-error"' in answer.text and words in answer.text, fields
        assert await outbox_rows(app) == 0


async def test_outside_the_area_without_the_role_or_csrf(world: World) -> None:
    app, tree = world.app, world.tree
    async with console_client(app) as client:
        await log_in(client, app, "co")
        page = await client.get("/console/broadcasts")
        token = csrf_of(page.text)
        base = {"csrf": token, "groups": [MEMBERS], "what": "text", "text": "Chào", "when": "now"}
        # Another commune, as a place or as the area: 404, nothing queued.
        for extra in ({"places": [str(tree.other_village.id)]}, {"area": str(tree.other_commune.id)}):
            for action in ("preview", "send"):
                answer = await client.post(f"/console/broadcasts/{action}", data={**base, **extra})
                assert answer.status_code == 404, (extra, action)
        # Without the CSRF token: 403.
        for action in ("preview", "send"):
            answer = await client.post(f"/console/broadcasts/{action}", data={**base, "csrf": ""})
            assert answer.status_code == 403
            answer = await client.post(
                f"/console/broadcasts/{action}", data={k: v for k, v in base.items() if k != "csrf"}
            )
            assert answer.status_code == 403
        assert await outbox_rows(app) == 0
        # The province's broadcast cannot be cancelled by the commune: 404.
        async with app.uow() as uow:
            mine = await queue_broadcast(
                uow,
                await _actor_in(uow, "ps"),
                Audience((tree.province.id,)),
                Message(text="Tỉnh"),
                now=app.clock.now(),
                send_at=app.clock.now() + timedelta(days=1),
            )
            await uow.commit()
        answer = await client.post(f"/console/broadcasts/{mine.id}/cancel", data={"csrf": token})
        assert answer.status_code == 404
        # The commune role taken away, a village officer's left: the same cookie gets nothing.
        async with app.uow() as uow:
            officer = await uow.contacts.by_identity("test", "co")
            assert officer is not None
            await uow.session.execute(
                update(RoleGrant).where(RoleGrant.contact_id == officer.id).values(revoked_at=app.clock.now())
            )
            await uow.contacts.grant(officer.id, VILLAGE_OFFICER, tree.village.id, app.clock.now())
            await uow.commit()
        before = await outbox_rows(app)
        assert (await client.get("/console/broadcasts")).status_code == 403
        for action in ("preview", "send"):
            assert (await client.post(f"/console/broadcasts/{action}", data=base)).status_code == 403
        assert await outbox_rows(app) == before
    # A village officer has no console page for broadcasts (and no console at all).
    async with console_client(app) as client:
        assert (await client.get("/console/broadcasts")).status_code == 401
    await make_contact(app, "admin", ADMIN, tree.province)
    async with console_client(app) as client:
        await log_in(client, app, "admin")  # compiles reports, may not broadcast
        home = await client.get("/console/period")
        assert 'href="/console/broadcasts"' not in home.text
        assert (await client.get("/console/broadcasts")).status_code == 403


async def _actor_in(uow: Any, ext: str) -> Actor:
    contact = await uow.contacts.by_identity("test", ext)
    return Actor.of(contact, await load_grants(uow, contact.id))
