"""Staff broadcasts: the /guitin dialogue, the audience, sending later, cancelling, /tinhtrang,
and the authorisation rules (a member cannot broadcast; a commune officer reaches only their
commune; province staff only their province; opted-out and blocked people get nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.conversations.flows.broadcast import parse_when
from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.parsing import fold
from bot.domain.permissions import Grant, NotAllowed, load_grants
from bot.domain.sending import Blocked, PermanentError
from bot.messaging.content import sync_content
from bot.messaging.outbox import OutboxSender
from bot.messaging.outreach import set_topics, stop_outreach
from bot.services.actor import Actor
from bot.services.broadcasts import (
    MEMBERS,
    OFFICERS,
    Audience,
    Message,
    cancel_broadcast,
    count_recipients,
    delivery_counts,
    queue_broadcast,
)
from storage.db import Database
from storage.models import (
    COMMUNE,
    COMMUNE_OFFICER,
    MEMBER,
    PROVINCE,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    ChannelIdentity,
    Contact,
    OutboxMessage,
    Unit,
)
from storage.models_outreach import Broadcast, Delivery
from storage.uow import UnitOfWork
from tests.fakes.fake_sink import RecordingSender
from tests.support import START, Chat, Tree, make_app, make_contact, seed_tree


@dataclass
class World:
    app: App
    tree: Tree
    other_province: Unit


async def build(app: App) -> World:
    tree = await seed_tree(app)
    now = app.clock.now()
    async with app.uow() as uow:
        await sync_content(uow, app.content_dir, now)
        other = await uow.units.add(
            Unit(kind=PROVINCE, name="Hưng Yên", name_folded=fold("Hưng Yên"), code="33", created_at=now)
        )
        await uow.commit()
    people = [
        ("co", COMMUNE_OFFICER, tree.commune, "en"),
        ("ps", PROVINCE_STAFF, tree.province, "en"),
        ("vo", VILLAGE_OFFICER, tree.village, "vi"),
        ("m1", MEMBER, tree.village, "vi"),
        ("m2", MEMBER, tree.group, "en"),
        ("m3", MEMBER, tree.other_village, "vi"),  # the other commune
    ]
    for ext, role, unit, locale in people:
        await make_contact(app, ext, role, unit, locale)
    return World(app, tree, other)


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    app = make_app(db.url, FixedClock(START))
    yield await build(app)
    await app.db.dispose()


@pytest.fixture
async def lite(sqlite_db: object, sqlite_url: str) -> AsyncIterator[World]:
    app = make_app(sqlite_url, FixedClock(START))
    yield await build(app)
    await app.db.dispose()


async def who(uow: UnitOfWork, ext: str) -> tuple[Contact, list[Grant]]:
    """A contact and their roles, loaded in the caller's unit of work."""
    found = await uow.contacts.by_identity("test", ext)
    assert found is not None
    return found, await load_grants(uow, found.id)


async def contact_id(app: App, ext: str) -> int:
    async with app.uow() as uow:
        return (await who(uow, ext))[0].id


async def deliver(app: App, sender: RecordingSender | None = None) -> RecordingSender:
    sender = sender or RecordingSender()
    await OutboxSender(app, {"test": sender}).drain()
    return sender


async def test_commune_officer_sends_an_article_to_the_members_of_two_villages(world: World) -> None:
    """The issue's "done when": from the chat, to two villages, then the delivery counts."""
    app, tree = world.app, world.tree
    chat = Chat(app, "co")
    await chat.say("/broadcast")
    assert "Who in Phường Thục Phán" in chat.text
    await chat.press("parts")
    assert {f"unit:{tree.village.id}", f"unit:{tree.group.id}"} <= set(chat.option_ids)
    assert f"unit:{tree.other_village.id}" not in chat.option_ids  # not their commune
    await chat.press(f"unit:{tree.village.id}")
    await chat.say("to dan pho")  # typed, without diacritics
    assert "Chosen: Thôn Nà Rụa, Tổ dân phố 1" in chat.text
    await chat.press("done")
    await chat.press(MEMBERS)
    await chat.press("done")  # every topic
    await chat.press("item")
    await chat.say("scam")
    assert chat.option_ids[0] == "i:phone-scams"
    await chat.press("i:phone-scams")
    assert "Preview:" in chat.text and "How to recognise a scam call" in chat.text
    assert "It will go to 2 people: members of Thôn Nà Rụa, Tổ dân phố 1." in chat.text
    await chat.press("now")
    assert "Broadcast #1 is being sent to 2 people" in chat.text

    await chat.say("/status")
    assert "recipients 2: sent 0, waiting 2" in chat.text
    sender = await deliver(app)
    assert sorted(e for e, _ in sender.sent) == ["m1", "m2"]
    assert "Nhận diện cuộc gọi lừa đảo" in sender.texts_for("m1")[0]  # each in their language
    assert "How to recognise a scam call" in sender.texts_for("m2")[0]
    assert "From the Study Promotion Association of Phường Thục Phán" in sender.texts_for("m2")[0]
    # each in their language from the first line: the header escaped the catalog until issue 10
    assert sender.texts_for("m1")[0].startswith("📢 Hội Khuyến học Phường Thục Phán gửi bà con:")
    english = "📢 From the Study Promotion Association of Phường Thục Phán, to everyone:"
    assert sender.texts_for("m2")[0].startswith(english)
    await chat.say("/status")
    assert "finished" in chat.text and "recipients 2: sent 2, waiting 0, failed 0, blocked 0" in chat.text
    await deliver(app, sender)
    assert len(sender.sent) == 2  # never twice


async def test_a_written_message_with_a_photo_link_sent_later_then_cancelled(lite: World) -> None:
    app, tree = lite.app, lite.tree
    chat = Chat(app, "co")
    await chat.say("/guitin")
    await chat.press("whole")
    await chat.press("both")
    await chat.press("done")
    await chat.press("text")
    await chat.say("x" * 1501)
    assert "1,501 characters; the most is 1,500" in chat.text
    await chat.say("Họp chi hội khuyến học lúc 19h thứ bảy tại nhà văn hóa.")
    await chat.say("not a link")
    assert "That is not a link" in chat.text
    await chat.say("https://example.org/hop.jpg")
    # Members and officers of the commune, not the sender: m1, m2 and the village officer.
    assert "It will go to 3 people: members and officers of Phường Thục Phán" in chat.text
    assert "📷 https://example.org/hop.jpg" in chat.text
    await chat.press("later")
    await chat.say("20/11 19:00")
    assert "That time has passed" in chat.text
    await chat.say("23/11 19:00")
    assert "It will be sent on Nov 23, 2026 19:00 to about 3 people" in chat.text
    await chat.press("confirm")
    assert "Broadcast #1 will be sent on Nov 23, 2026 19:00 to 3 people" in chat.text
    assert (await deliver(app)).sent == []  # not yet
    await chat.say("/status")
    assert "scheduled for Nov 23, 2026 19:00" in chat.text
    await chat.press("cmd:tinhtrang huy 1")
    await chat.press("yes")
    assert "Cancelled: 3 messages will not be sent." in chat.text
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(days=2))
    assert (await deliver(app)).sent == []
    async with app.uow() as uow:
        counts = (await delivery_counts(uow, [1]))[1]
        row = (await uow.session.execute(select(OutboxMessage).limit(1))).scalar_one()
        assert row.error == "cancelled" and row.failed_at is not None
    assert (counts.cancelled, counts.queued) == (3, 0)
    assert tree.commune.kind == COMMUNE


async def test_cancel_during_sending_stops_the_rest(world: World) -> None:
    app, tree = world.app, world.tree
    async with app.uow() as uow:
        officer, grants = await who(uow, "co")
        b = await queue_broadcast(
            uow,
            Actor.of(officer, grants),
            Audience((tree.commune.id,), (MEMBERS, OFFICERS)),
            Message(text="Thông báo"),
            now=app.clock.now(),
        )
        await uow.commit()
    outbox = OutboxSender(app, {"test": RecordingSender()})
    first = await outbox.claim("test", 1)  # one message is on its way…
    async with app.uow() as uow:
        officer, grants = await who(uow, "co")
        assert await cancel_broadcast(uow, Actor.of(officer, grants), b.id, app.clock.now()) == 2
        await uow.commit()
    sender = await deliver(app)
    assert sender.sent == []  # …the others are not sent
    assert len(first) == 1
    async with app.uow() as uow:
        counts = (await delivery_counts(uow, [b.id]))[b.id]
    assert (counts.queued, counts.cancelled) == (1, 2)  # the one in flight still counts as on its way


async def test_a_broadcast_to_officers_only_addresses_officers(world: World) -> None:
    """Members are "bà con" in a broadcast; a message to officers alone does not call them so."""
    app, tree = world.app, world.tree
    async with app.uow() as uow:
        officer, grants = await who(uow, "co")
        await queue_broadcast(
            uow,
            Actor.of(officer, grants),
            Audience((tree.commune.id,), (OFFICERS,)),
            Message(text="Họp giao ban sáng thứ Hai."),
            now=app.clock.now(),
        )
        await uow.commit()
    sender = await deliver(app)
    (text,) = sender.texts_for("vo")
    assert text.startswith("📢 Hội Khuyến học Phường Thục Phán gửi cán bộ:\n\nHọp giao ban sáng thứ Hai.")
    assert "bà con" not in text and text.endswith("Gửi /dung để dừng nhận tin, /chude để chọn chủ đề.")
    assert sender.texts_for("m1") == []


async def test_a_member_cannot_broadcast(world: World) -> None:
    app, tree = world.app, world.tree
    chat = Chat(
        app,
        "m1",
    )
    await chat.say("/broadcast")
    assert "Chỉ cán bộ Hội Khuyến học xã, phường và tỉnh" in chat.text or "Only commune officers" in chat.text
    async with app.uow() as uow:
        member, grants = await who(uow, "m1")
        with pytest.raises(NotAllowed):
            await queue_broadcast(
                uow,
                Actor.of(member, grants),
                Audience((tree.village.id,)),
                Message(text="x"),
                now=app.clock.now(),
            )
    async with app.uow() as uow:  # a village officer cannot either
        vo, vo_grants = await who(uow, "vo")
        with pytest.raises(NotAllowed):
            await count_recipients(uow, Actor.of(vo, vo_grants), Audience((tree.village.id,)))


async def test_a_commune_officer_reaches_only_their_commune(world: World) -> None:
    app, tree = world.app, world.tree
    for units in (
        (tree.other_commune.id,),
        (tree.other_village.id,),
        (tree.province.id,),
        (tree.village.id, tree.other_village.id),
    ):
        async with app.uow() as uow:
            officer, grants = await who(uow, "co")
            with pytest.raises(NotAllowed, match="outside"):
                await queue_broadcast(
                    uow, Actor.of(officer, grants), Audience(units), Message(text="x"), now=app.clock.now()
                )
    chat = Chat(app, "co")
    await chat.say("/guitin")
    await chat.press("parts")
    await chat.say("pac bo")  # a village of the other commune, typed
    assert "No single place matches" in chat.text and "Chosen: none yet" in chat.text


async def test_province_staff_reach_their_province_only(world: World) -> None:
    app, tree = world.app, world.tree
    async with app.uow() as uow:
        staff, grants = await who(uow, "ps")
        assert await count_recipients(uow, Actor.of(staff, grants), Audience((tree.province.id,))) == 3
        assert (
            await count_recipients(uow, Actor.of(staff, grants), Audience((tree.province.id,), (OFFICERS,)))
            == 2
        )
        with pytest.raises(NotAllowed):
            await count_recipients(uow, Actor.of(staff, grants), Audience((world.other_province.id,)))
    chat = Chat(app, "ps")
    await chat.say("/guitin")
    await chat.press("parts")  # communes of the province
    assert {f"unit:{tree.commune.id}", f"unit:{tree.other_commune.id}"} <= set(chat.option_ids)


async def test_opted_out_blocked_unconsented_and_off_topic_people_are_left_out(world: World) -> None:
    app, tree = world.app, world.tree
    await make_contact(app, "m4", MEMBER, tree.village)
    await make_contact(app, "m5", MEMBER, tree.village)
    await make_contact(app, "m6", MEMBER, tree.village)
    await make_contact(app, "m7", MEMBER, tree.village)
    now = app.clock.now()
    ids = {ext: await contact_id(app, ext) for ext in ("m1", "m4", "m5", "m6", "m7")}
    async with app.uow() as uow:
        await stop_outreach(uow, ids["m4"], now)
        await uow.session.execute(
            update(ChannelIdentity).where(ChannelIdentity.external_id == "m5").values(blocked_at=now)
        )
        await uow.session.execute(update(Contact).where(Contact.id == ids["m6"]).values(consent_at=None))
        await set_topics(uow, ids["m7"], ["reading"], now)
        await set_topics(uow, ids["m1"], ["digital_skills", "reading"], now)
        await uow.commit()
    audience = Audience((tree.province.id,), (MEMBERS,), ("digital_skills",))
    async with app.uow() as uow:
        staff, grants = await who(uow, "ps")
        b = await queue_broadcast(
            uow, Actor.of(staff, grants), audience, Message(item_key="phone-scams"), now=now
        )
        await uow.commit()
    assert b.recipients == 3  # m1 (chose digital skills), m2 and m3 (all topics)
    sender = await deliver(app)
    assert sorted(e for e, _ in sender.sent) == ["m1", "m2", "m3"]


async def test_status_counts_failures_and_blocks(world: World) -> None:
    app, tree = world.app, world.tree
    async with app.uow() as uow:
        officer, grants = await who(uow, "co")
        await queue_broadcast(
            uow,
            Actor.of(officer, grants),
            Audience((tree.commune.id,), (MEMBERS, OFFICERS)),
            Message(text="Lịch họp"),
            now=app.clock.now(),
        )
        await uow.commit()
    await deliver(
        app, RecordingSender(errors={"m1": [Blocked("blocked")], "vo": [PermanentError("HTTP 400")]})
    )
    chat = Chat(app, "co")
    await chat.say("/tinhtrang")
    assert "recipients 3: sent 1, waiting 0, failed 1, blocked 1" in chat.text
    assert "cmd:tinhtrang huy 1" not in chat.option_ids  # nothing left to cancel
    await chat.say("/tinhtrang huy 7")
    assert "There is no broadcast #7 of yours." in chat.text


async def test_others_cannot_cancel_and_province_staff_see_commune_broadcasts(world: World) -> None:
    app, tree = world.app, world.tree
    async with app.uow() as uow:
        officer, grants = await who(uow, "co")
        b = await queue_broadcast(
            uow,
            Actor.of(officer, grants),
            Audience((tree.village.id,)),
            Message(text="Tin thôn"),
            now=app.clock.now(),
        )
        await uow.commit()
    await make_contact(app, "co2", COMMUNE_OFFICER, tree.other_commune)
    async with app.uow() as uow:
        other, other_grants = await who(uow, "co2")
        with pytest.raises(NotAllowed):
            await cancel_broadcast(uow, Actor.of(other, other_grants), b.id, app.clock.now())
    chat = Chat(app, "ps")
    await chat.say("/tinhtrang")
    assert "“Tin thôn”" in chat.text and "cmd:tinhtrang huy 1" in chat.option_ids
    async with app.db.sessions() as session:
        assert (await session.get(Broadcast, b.id)) is not None
        assert len((await session.execute(select(Delivery))).all()) == 1


def test_send_times_people_type() -> None:
    today = date(2026, 11, 22)
    assert parse_when("25/11 19:00", today) == datetime(2026, 11, 25, 19, 0, tzinfo=VN_TZ)
    assert parse_when("25/11/2026 19h30", today) == datetime(2026, 11, 25, 19, 30, tzinfo=VN_TZ)
    assert parse_when("25/11 lúc 7h", today) == datetime(2026, 11, 25, 7, 0, tzinfo=VN_TZ)
    assert parse_when("20:15", today) == datetime(2026, 11, 22, 20, 15, tzinfo=VN_TZ)
    assert parse_when("ngày mai", today) is None
    assert parse_when("25/11 25:00", today) is None
    assert START.tzinfo is not None
