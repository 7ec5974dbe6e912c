"""Bad input and failures that transcripts cannot express: huge messages, duplicated
deliveries, a crash halfway through saving. The user gets a short answer and nothing is lost."""

from __future__ import annotations

import pytest

from bot.domain.app import App
from bot.domain.messages import Incoming, Kind
from storage.repositories import DialogueRepository
from tests.support import Chat, Tree, make_app, make_contact, seed_tree


@pytest.fixture
async def officer(sqlite_db: object, sqlite_url: str) -> tuple[App, Tree]:
    app = make_app(sqlite_url)
    tree = await seed_tree(app)
    await make_contact(app, "u1", "village_officer", tree.village, "en")
    yield app, tree  # type: ignore[misc]
    await app.db.dispose()


async def _start_report(chat: Chat) -> None:
    await chat.say("/baocao")
    await chat.press("2026")
    assert "Question 1/25" in chat.text


async def test_ten_thousand_characters_are_refused_and_the_question_stays(officer: tuple[App, Tree]) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _start_report(chat)
    await chat.say("9" * 10_000)
    assert "too long" in chat.text and "10,000" in chat.text
    assert "Question 1/25" in chat.text
    assert len(chat.text) < 600
    await chat.say("120")
    assert "Question 2/25" in chat.text


async def test_long_text_answer_over_the_field_limit(officer: tuple[App, Tree]) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _start_report(chat)
    for answer in [
        "100",
        "bỏ qua",
        *["0"] * 6,
        "1",
        "0",
        "0",
        "bỏ qua",
        "0",
        "bỏ qua",  # people of working age in learning families … (optional)
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]:
        await chat.say(answer)
    assert "Question 25/25" in chat.text
    await chat.say("x" * 3000)
    assert "too long" in chat.text and "Question 25/25" in chat.text


async def test_a_duplicated_delivery_is_processed_once(officer: tuple[App, Tree]) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _start_report(chat)
    msg = Incoming("test", "u1", Kind.TEXT, text="100", update_id="dup-1")
    first = (await app.handle(msg)).replies
    second = (await app.handle(msg)).replies
    assert "Question 2/25" in "\n".join(r.text for r in first)
    assert second == []
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", "u1")
        assert contact is not None
        row = await uow.dialogues.get(contact.id)
        assert row is not None and row.state["field"] == "population_total"


async def test_a_crash_while_saving_loses_nothing_and_saves_nothing_twice(
    officer: tuple[App, Tree], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _start_report(chat)
    answers = ["100", "400", *["0"] * 6, "chưa đăng ký", "50", "0", "bỏ qua"]
    answers += ["0", "bỏ qua", *["0"] * 10, "bỏ qua"]
    for answer in answers:
        await chat.say(answer)
    assert "Please check your report" in chat.text

    real_save = DialogueRepository.save
    calls = {"n": 0}

    async def crash_once(self: DialogueRepository, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("power cut")
        await real_save(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DialogueRepository, "save", crash_once)
    await chat.press("confirm")  # the submission is written, then the crash: all rolled back
    assert "something went wrong" in chat.text and "send your last answer again" in chat.text
    async with app.uow() as uow:
        assert await uow.submissions.count() == 0

    await chat.press("confirm")  # the summary is still open: confirming again saves once
    assert "✅ Saved" in chat.text and "version 1" in chat.text
    async with app.uow() as uow:
        assert await uow.submissions.count() == 1


async def test_unregistered_person_reporting_is_sent_to_onboarding(
    sqlite_db: object, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    try:
        await seed_tree(app)
        chat = Chat(app, "stranger")
        await chat.say("/baocao")
        assert "Please choose your language" in chat.text
        async with app.uow() as uow:
            assert await uow.submissions.count() == 0
    finally:
        await app.db.dispose()


async def test_the_threaded_sqlite_driver_still_works(sqlite_db: object, sqlite_url: str) -> None:
    """`sqlite_driver=aiosqlite` is the fallback to the inline driver: it must keep working."""
    app = make_app(sqlite_url, sqlite_driver="aiosqlite")
    try:
        tree = await seed_tree(app)
        await make_contact(app, "u2", "village_officer", tree.village, "en")
        chat = Chat(app, "u2")
        await _start_report(chat)
        await chat.say("120")
        assert "Question 2/25" in chat.text
        await chat.say("120")  # a new delivery (new update id), not a duplicate
        assert "Question 3/25" in chat.text
    finally:
        await app.db.dispose()
