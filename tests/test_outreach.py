"""Members' outreach with a fixed clock: topics at onboarding and with /chude, /tin, stopping
(/dung, "dừng", "stop") and /batdau, the weekly tip (Sunday 19:00, topics, language, no repeat
until all were sent), the Lifelong Learning Week campaign and the recognition calendar."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.domain.app import App
from bot.domain.calendar import CalendarError, calendar_notices, parse_notices
from bot.domain.clock import VN_TZ, FixedClock
from bot.messaging.content import load_library, sync_content
from bot.messaging.outreach import (
    run_calendar_notices,
    run_lifelong_learning_week_campaign,
    send_weekly_tips,
    tip_slot,
)
from bot.messaging.recipients import CALENDAR_AUDIENCES
from storage.db import Database
from storage.models import (
    COMMUNE_OFFICER,
    MEMBER,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    ChannelIdentity,
    OutboxMessage,
    Submission,
)
from storage.models_outreach import CAMPAIGN, Delivery, Subscription
from tests.support import CONTENT, START, Chat, Tree, make_app, make_contact, seed_tree

SUNDAY_EVENING = datetime(2026, 11, 22, 19, 0, tzinfo=VN_TZ)  # START is that Sunday, 09:00
LIBRARY = load_library(CONTENT)


def titles(language: str, topics: set[str] | None = None) -> list[str]:
    """Weekly-tip candidates, from the files themselves: newest first."""
    chosen = [
        a
        for a in LIBRARY
        if a.language == language
        and a.kind != CAMPAIGN
        and "member" in a.audience
        and (not topics or topics & set(a.topics))
        and (a.valid_until is None or a.valid_until >= START.date())
    ]
    return [a.title for a in sorted(chosen, key=lambda a: (a.published, a.item_key), reverse=True)]


@dataclass
class World:
    app: App
    tree: Tree
    clock: FixedClock


async def build(url: str) -> World:
    clock = FixedClock(START)
    app = make_app(url, clock)
    tree = await seed_tree(app)
    async with app.uow() as uow:
        await sync_content(uow, app.content_dir, clock.now())
        await uow.commit()
    return World(app, tree, clock)


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    w = await build(db.url)
    yield w
    await w.app.db.dispose()


@pytest.fixture
async def lite(sqlite_db: object, sqlite_url: str) -> AsyncIterator[World]:
    w = await build(sqlite_url)
    yield w
    await w.app.db.dispose()


async def outbox(app: App, ext: str | None = None) -> list[str]:
    """Texts queued (and not cancelled) for a recipient, oldest first."""
    async with app.db.sessions() as session:
        q = select(OutboxMessage.external_id, OutboxMessage.payload).where(OutboxMessage.failed_at.is_(None))
        rows = (await session.execute(q.order_by(OutboxMessage.id))).all()
    return [p["text"] for e, p in rows if ext is None or e == ext]


async def queued_to(app: App) -> list[str]:
    async with app.db.sessions() as session:
        q = (
            select(OutboxMessage.external_id)
            .where(OutboxMessage.failed_at.is_(None))
            .order_by(OutboxMessage.id)
        )
        return list((await session.execute(q)).scalars())


async def choose_topics(app: App, ext: str, topic: str) -> Chat:
    """Choose one topic; the Chat, to go on talking (a new one would reuse update ids)."""
    chat = Chat(app, ext)
    await chat.say(f"/topics {topic}")
    await chat.press("done")
    assert "Saved" in chat.text or "Đã lưu" in chat.text
    return chat


# ---------------------------------------------------------------------------------- dialogues


async def test_a_new_member_picks_topics_at_onboarding(lite: World) -> None:
    app, chat = lite.app, Chat(lite.app, "new")
    for step in ("xin chào", "2", "yes"):
        await chat.say(step)
    await chat.press("member")
    await chat.say("cao bang")
    await chat.say("thuc phan")
    await chat.say("na rua")
    assert "registered as a member in Thôn Nà Rụa" in chat.text
    assert "Which topics interest you most?" in chat.text
    assert "cmd:chude reading" in chat.option_ids and "cmd:menu" in chat.option_ids
    await chat.say("/toi")  # nothing was left waiting for an answer
    assert "Member: Thôn Nà Rụa" in chat.text
    await chat.press("cmd:chude reading")
    assert "Chosen now: Reading." in chat.text and "✓ Reading" in chat.option_labels
    await chat.press("t:digital_skills")
    await chat.press("done")
    # "; " between topics: a label may hold a comma itself (issue 10)
    assert "Saved. Your topics: Reading; Digital skills, online safety." in chat.text
    async with app.db.sessions() as session:
        sub = (await session.execute(select(Subscription))).scalar_one()
    assert sub.topics == ["digital_skills", "reading"] and sub.stopped_at is None


async def test_topics_can_be_changed_and_reset(lite: World) -> None:
    await make_contact(lite.app, "m1", MEMBER, lite.tree.village)
    chat = Chat(lite.app, "m1")
    await chat.say("/chude")
    assert "Đang chọn: tất cả chủ đề" in chat.text or "Chosen now: all topics" in chat.text
    await chat.press("t:stories")
    await chat.press("t:reading")
    await chat.press("t:stories")  # pressed again: removed
    await chat.press("done")
    await chat.say("/tinhtrang")
    assert "Văn hóa đọc" in chat.text
    await chat.say("/chude all")
    await chat.say("/tinhtrang")
    assert "tất cả chủ đề" in chat.text


async def test_news_shows_the_newest_article_for_my_language_and_topics(lite: World) -> None:
    await make_contact(lite.app, "vi", MEMBER, lite.tree.village, "vi")
    await make_contact(lite.app, "en", MEMBER, lite.tree.village, "en")
    en = await choose_topics(lite.app, "en", "digital_skills")
    chat = Chat(lite.app, "vi")
    await chat.say("/tin")
    assert chat.text.startswith("📰 " + titles("vi")[0])
    chat = en
    await chat.say("/news")
    assert chat.text.startswith("📰 " + titles("en", {"digital_skills"})[0])
    assert chat.text.endswith("Send /stop to stop these messages, /topics to choose topics.")


async def test_stop_words_and_resume(lite: World) -> None:
    app = lite.app
    await make_contact(app, "m1", MEMBER, lite.tree.village, "en")
    chat = Chat(app, "m1")
    await chat.say("đúng")  # "right", not "dừng": no stop
    assert "Stopped" not in chat.text
    for word in ("dừng", "STOP", "/dung", "/stop", "Dung"):
        await chat.say(word)
        assert "Stopped: you will receive no more articles, news or broadcasts." in chat.text, word
    await chat.say("/status")
    assert "You stopped all messages on Nov 22, 2026" in chat.text
    await chat.say("/batdau")
    assert "Welcome back" in chat.text
    await chat.say("/resume")
    assert "You already receive articles and news" in chat.text
    await chat.say("/chude")
    await chat.say("dừng")  # inside a dialogue it is an answer, not a command
    assert "Stopped" not in chat.text and "Please answer with one of the choices." in chat.text


async def test_a_stranger_who_says_stop_is_obeyed(lite: World) -> None:
    chat = Chat(lite.app, "stranger")
    await chat.say("stop")
    assert "Stopped" in chat.text or "Đã dừng" in chat.text
    async with lite.app.db.sessions() as session:
        assert (await session.execute(select(Subscription.stopped_at))).scalar_one() is not None
    await chat.say("/batdau")  # not registered: /batdau leads to registration
    assert "Please choose your language" in chat.text


# ---------------------------------------------------------------------------------- weekly tip


async def test_weekly_tip_on_sunday_evening_once_matching_topics_and_language(world: World) -> None:
    app, clock, tree = world.app, world.clock, world.tree
    await make_contact(app, "vi", MEMBER, tree.village, "vi")
    await make_contact(app, "en", MEMBER, tree.group, "en")
    await make_contact(app, "officer", VILLAGE_OFFICER, tree.village, "vi")  # not a member: no tip
    await choose_topics(app, "en", "digital_skills")
    assert await send_weekly_tips(app) == 0  # Sunday 09:00: not yet
    clock.set(SUNDAY_EVENING - timedelta(minutes=1))
    assert await send_weekly_tips(app) == 0
    clock.set(SUNDAY_EVENING)
    assert await send_weekly_tips(app) == 2
    assert await send_weekly_tips(app) == 0  # the scheduler may call again: nothing twice
    clock.advance(timedelta(hours=3))
    assert await send_weekly_tips(app) == 0
    assert (await outbox(app, "vi"))[0].startswith("💡 " + titles("vi")[0])
    assert (await outbox(app, "en"))[0].startswith("💡 " + titles("en", {"digital_skills"})[0])
    assert await queued_to(app) == ["vi", "en"]


async def test_weekly_tips_never_repeat_until_all_were_sent(lite: World) -> None:
    app, clock = lite.app, lite.clock
    await make_contact(app, "en", MEMBER, lite.tree.village, "en")
    await choose_topics(app, "en", "digital_skills")
    expected = titles("en", {"digital_skills"})
    clock.set(SUNDAY_EVENING)
    got = []
    for _ in range(len(expected) + 2):
        assert await send_weekly_tips(app) == 1
        got.append((await outbox(app, "en"))[-1].split("\n")[0][2:])
        clock.advance(timedelta(days=7))
    n = len(expected)
    assert got[:n] == expected  # every suitable article once, newest first
    assert got[n:] == expected[:2]  # then again from the one sent longest ago


async def test_tip_day_and_hour_are_settings_and_a_missed_slot_waits(
    sqlite_db: object, sqlite_url: str
) -> None:
    wednesday_8 = datetime(2026, 11, 25, 8, 0, tzinfo=VN_TZ)
    clock = FixedClock(wednesday_8 - timedelta(seconds=1))
    app = make_app(sqlite_url, clock, weekly_tip_weekday=2, weekly_tip_hour=8)
    try:
        tree = await seed_tree(app)
        async with app.uow() as uow:
            await sync_content(uow, app.content_dir, clock.now())
            await uow.commit()
        await make_contact(app, "m1", MEMBER, tree.village)
        assert await send_weekly_tips(app) == 0
        clock.set(wednesday_8 + timedelta(hours=13))  # the bot was down all day: not at 21:00
        assert await send_weekly_tips(app) == 0
        clock.set(wednesday_8 + timedelta(days=7))
        assert await send_weekly_tips(app) == 1
    finally:
        await app.db.dispose()
    assert tip_slot(SUNDAY_EVENING + timedelta(days=1), 6, 19) == SUNDAY_EVENING
    assert tip_slot(SUNDAY_EVENING, 6, 19) == SUNDAY_EVENING
    assert tip_slot(SUNDAY_EVENING - timedelta(seconds=1), 6, 19) == SUNDAY_EVENING - timedelta(days=7)


async def test_opted_out_and_blocked_members_receive_nothing(world: World) -> None:
    app, clock, tree = world.app, world.clock, world.tree
    for ext in ("a", "b", "c"):
        await make_contact(app, ext, MEMBER, tree.village)
    await Chat(app, "b").say("dừng")
    async with app.uow() as uow:
        await uow.session.execute(
            update(ChannelIdentity).where(ChannelIdentity.external_id == "c").values(blocked_at=clock.now())
        )
        await uow.commit()
    clock.set(SUNDAY_EVENING)
    assert await send_weekly_tips(app) == 1
    assert await queued_to(app) == ["a"]
    # Stopping after a message was queued cancels it before it is sent.
    await Chat(app, "a").say("/dung")
    assert await queued_to(app) == []
    async with app.db.sessions() as session:
        assert (await session.execute(select(Delivery.status))).scalars().all() == ["cancelled"]


# ---------------------------------------------------------------------------------- the Week


async def test_lifelong_learning_week_campaign(world: World) -> None:
    app, clock, tree = world.app, world.clock, world.tree
    people = [
        ("vo", VILLAGE_OFFICER, tree.village, "vi"),
        ("vo2", VILLAGE_OFFICER, tree.group, "en"),
        ("co", COMMUNE_OFFICER, tree.commune, "en"),
        ("ps", PROVINCE_STAFF, tree.province, "vi"),
        ("vo3", VILLAGE_OFFICER, tree.other_village, "vi"),
        ("m-vi", MEMBER, tree.village, "vi"),
        ("m-en", MEMBER, tree.village, "en"),
        ("m-stop", MEMBER, tree.village, "vi"),
    ]
    for ext, role, unit, locale in people:
        await make_contact(app, ext, role, unit, locale)
    await Chat(app, "m-stop").say("/dung")

    async def on(day: str, hour: int = 8) -> list[str]:
        before = len(await queued_to(app))
        clock.set(datetime.fromisoformat(f"2026-{day}T{hour:02d}:00:00+07:00"))
        await run_lifelong_learning_week_campaign(app)
        again = len(await queued_to(app))
        await run_lifelong_learning_week_campaign(app)  # a second call the same day sends nothing
        assert len(await queued_to(app)) == again
        return (await queued_to(app))[before:]

    officers = ["vo", "vo2", "co", "ps", "vo3"]
    assert await on("09-16") == []
    assert await on("09-17", 7) == []  # before the campaign hour
    assert sorted(await on("09-17")) == sorted(officers)  # 14 days before
    assert (
        "in 14 days" in (await outbox(app, "co"))[-1]
        and "Lifelong Learning Week 2026" in (await outbox(app, "co"))[-1]
    )
    assert await on("09-18") == []
    assert sorted(await on("09-28")) == sorted(officers)  # 3 days before
    assert "in 3 days" in (await outbox(app, "vo2"))[-1]
    assert sorted(await on("10-01")) == ["m-en", "m-vi"]  # the Week: an article a day, not to m-stop
    assert (await outbox(app, "m-en"))[-1].startswith("📚 The Lifelong Learning Week starts today")
    assert sorted(await on("10-02")) == ["m-en", "m-vi"]
    assert "Study Promotion Day" in (await outbox(app, "m-en"))[-1]
    for day in ("10-03", "10-04", "10-05", "10-06"):
        assert sorted(await on(day)) == ["m-en", "m-vi"]
    last_day = await on("10-07")  # the last day: the article, and the request to report
    assert sorted(last_day) == sorted(["m-en", "m-vi", "vo", "vo2", "co", "vo3"])
    assert "Today is the last day of the Lifelong Learning Week 2026" in (await outbox(app, "co"))[-1]
    assert "/activity" in (await outbox(app, "co"))[-1]  # the English command, in English
    async with app.db.sessions() as session:
        last = (
            await session.execute(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
        ).scalar_one()
    assert last.payload["options"] == [{"id": "cmd:hoatdong", "label": "Báo cáo hoạt động"}]
    assert await on("10-08") == []
    # Nà Rụa reported a Week activity: its officer and the commune officer are not reminded.
    async with app.uow() as uow:
        await uow.submissions.add_version(
            Submission(
                form_key="activity_report",
                record_key="a1",
                unit_id=tree.village.id,
                period="2026",
                values={"activity_date": "2026-10-03", "is_lifelong_learning_week": True},
                submitted_at=clock.now(),
                version=0,
            )
        )
        await uow.commit()
    assert sorted(await on("10-12")) == ["vo2", "vo3"]  # the deadline
    assert "due on Oct 12, 2026" in (await outbox(app, "vo2"))[-1]
    assert await on("10-16") == []
    texts = await outbox(app, "m-vi")
    assert len(texts) == 7 and len(set(texts)) == 7  # seven different articles
    assert await outbox(app, "m-stop") == []


def test_campaign_dates_come_from_the_yaml(tmp_path: Path) -> None:
    from bot.messaging.outreach import campaign_plan

    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "lifelong-learning-week.yaml").write_text(
        "default: {start: '10-01', end: '10-07'}\n"
        "outreach: {reminder_days_before: [10], report_deadline: '10-20'}\n"
        "years:\n  2027: {start: '09-29', end: '10-05', report_deadline: '10-15'}\n",
        encoding="utf-8",
    )
    plan = campaign_plan(2027, tmp_path)
    assert (plan.week.start.isoformat(), plan.reminder_days, plan.deadline.isoformat()) == (
        "2027-09-29",
        (10,),
        "2027-10-15",
    )
    assert campaign_plan(2028, tmp_path).deadline.isoformat() == "2028-10-20"
    default = campaign_plan(2026, CONTENT)
    assert (default.reminder_days, default.deadline.isoformat()) == ((14, 3), "2026-10-12")


# ---------------------------------------------------------------------------------- the recognition calendar


async def test_the_recognition_calendar_reaches_village_officers_once_on_its_days(world: World) -> None:
    """Registration for the titles in January and before February closes, recognition in
    November (content/campaigns/recognition.yaml): each once a year to each village officer,
    in their language, with the due date of the report that carries the figures."""
    app, clock, tree = world.app, world.clock, world.tree
    people = [
        ("vo", VILLAGE_OFFICER, tree.village, "vi"),
        ("vo2", VILLAGE_OFFICER, tree.group, "en"),
        ("vo3", VILLAGE_OFFICER, tree.other_village, "vi"),
        ("vo-stop", VILLAGE_OFFICER, tree.village, "vi"),
        ("co", COMMUNE_OFFICER, tree.commune, "vi"),
        ("ps", PROVINCE_STAFF, tree.province, "vi"),
        ("m", MEMBER, tree.village, "vi"),
    ]
    for ext, role, unit, locale in people:
        await make_contact(app, ext, role, unit, locale)
    await Chat(app, "vo-stop").say("/dung")

    async def on(day: str, hour: int = 9) -> list[str]:
        before = len(await queued_to(app))
        clock.set(datetime.fromisoformat(f"{day}T{hour:02d}:00:00+07:00"))
        await run_calendar_notices(app)
        again = len(await queued_to(app))
        await run_calendar_notices(app)  # a second run the same day sends nothing
        assert len(await queued_to(app)) == again
        return sorted((await queued_to(app))[before:])

    village_officers = ["vo", "vo2", "vo3"]  # not vo-stop (/dung), nor the commune, province, member
    assert await on("2027-01-04") == []
    assert await on("2027-01-05", 7) == []  # before the campaign hour
    assert await on("2027-01-05") == village_officers
    vi, en = (await outbox(app, "vo"))[-1], (await outbox(app, "vo2"))[-1]
    assert "Đăng ký danh hiệu học tập năm 2027" in vi and "hạn 15/06/2027" in vi and "/dung" in vi
    assert "Registering for the 2027 learning titles" in en and "due Jun 15, 2027" in en
    assert await on("2027-01-06") == []  # once a year
    assert await on("2027-02-19") == []
    assert await on("2027-02-21") == village_officers  # a day late (the bot was down): caught up
    assert "kết thúc vào cuối tháng 2" in (await outbox(app, "vo3"))[-1]
    assert await on("2027-02-22") == []
    assert await on("2027-06-15") == []
    assert await on("2027-11-01") == village_officers
    assert "Xét công nhận danh hiệu năm 2027" in (await outbox(app, "vo"))[-1]
    assert "hạn 30/11/2027" in (await outbox(app, "vo"))[-1]
    assert "with /report" in (await outbox(app, "vo2"))[-1]
    async with app.db.sessions() as session:
        q = select(OutboxMessage.external_id, OutboxMessage.payload).order_by(OutboxMessage.id)
        payloads = {e: p for e, p in (await session.execute(q)).all() if e in ("vo", "vo2")}  # the newest
    assert payloads["vo"]["options"] == [{"id": "cmd:baocao", "label": "Báo cáo thôn"}]
    assert payloads["vo2"]["options"] == [{"id": "cmd:baocao", "label": "Village report"}]
    assert await on("2027-11-21") == []
    assert await on("2028-01-05") == village_officers  # next year again


def test_the_calendar_notices_are_data_checked_when_read() -> None:
    notices = calendar_notices(CONTENT)
    assert [(n.key, n.start, n.until) for n in notices] == [
        ("registration", "01-05", "01-31"),
        ("registration_closing", "02-20", "02-28"),
        ("recognition", "11-01", "11-20"),
    ]
    assert all(n.audience in CALENDAR_AUDIENCES for n in notices)
    text = {"vi": "a", "en": "b"}
    good = {"key": "x", "from": "01-05", "until": "01-31", "audience": "officers", "text": text}
    for broken, message in [
        ({**good, "from": "13-01"}, "MM-DD"),
        ({**good, "until": "01-01"}, "before from"),
        ({**good, "text": {"vi": "a"}}, "vi and en"),
        ({**good, "audience": None}, "key and audience"),
    ]:
        with pytest.raises(CalendarError, match=message):
            parse_notices("test", {"notices": [broken]})
