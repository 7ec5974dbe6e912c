"""Compiled reports are read outside the dialogue's transaction and off the event loop
(DESIGN.md boundary 12): while one officer's report is being read, other people's dialogues go
on and commit, and the report comes out as it did when it was compiled inside the step.

The hook is SQLite's own progress handler on the read-only connections: once armed, the first
statement a report reads through them waits in aiosqlite's worker thread until the test lets it
go (or fails it). Nothing is timed: a report read through the dialogue's unit of work never
reaches the hook, and one read on the event loop would freeze the test instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from bot.domain.app import App
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Kind, Reply
from bot.domain.periods import Period
from bot.reports.compiled import compile_unit, summary_text
from bot.services.actor import CONSOLE
from bot.services.units import add_village
from storage.db import Database
from storage.models import COMMUNE_OFFICER, VILLAGE, VILLAGE_OFFICER, DialogueState
from storage.readonly import ReadOnlyUnitOfWork
from storage.uow import UnitOfWork
from tests.support import Chat, Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import submit, vn

H1 = Period.parse("2026-H1")
WAIT = 20.0  # seconds: only ever reached when the test fails


class ReadGate:
    """A progress handler on every read-only SQLite connection: armed, it holds (or fails) the
    next statement read through one, in the thread that runs it."""

    def __init__(self, app: App, *, fail: bool = False) -> None:
        self.armed = threading.Event()
        self.reached = threading.Event()
        self.release = threading.Event()
        self.fail = fail
        event.listen(app.db.read_side.engine.sync_engine, "connect", self._install)

    def _install(self, dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.run_async(lambda conn: conn.set_progress_handler(self._progress, 50))

    def _progress(self) -> int:
        if not self.armed.is_set():
            return 0
        self.armed.clear()
        self.reached.set()
        if self.fail:
            return 1  # SQLite interrupts the statement
        self.release.wait(WAIT)
        return 0

    async def reached_in_time(self) -> bool:
        return await asyncio.to_thread(self.reached.wait, WAIT)


@pytest.fixture
async def app(sqlite_db: Database) -> AsyncIterator[App]:
    app = make_app(sqlite_db.url)
    try:
        yield app
    finally:
        await app.db.dispose()


async def fill(app: App) -> Tree:
    tree = await seed_tree(app)
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10), households_total=100, lf_recognized=70)
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    return tree


def pick(external_id: str, option: str) -> Incoming:
    return Incoming("test", external_id, Kind.OPTION, option_id=option, update_id=f"{external_id}-{option}")


async def test_other_dialogues_go_on_while_a_report_is_read(app: App) -> None:
    tree = await fill(app)
    officer = Chat(app, "commune-officer")
    await officer.say("/baocaotonghop")
    assert "2026-H1" in officer.option_ids
    gate = ReadGate(app)
    gate.armed.set()
    report = asyncio.create_task(app.handle(pick("commune-officer", "2026-H1")))
    try:
        assert await gate.reached_in_time(), "the report was not read through a read-only unit of work"
        # The report's read is in progress, its transaction open. Another officer's step runs,
        # writes and commits meanwhile (with the report inside the write lock, it would wait).
        village = Chat(app, "village-officer")
        replies = await asyncio.wait_for(village.say("/baocao"), WAIT)
        assert "Thôn Nà Rụa" in replies[0].text and "2026" in village.option_ids
        assert not report.done()
        # Both steps are committed: the summary dialogue ended before its report was read, and
        # the village report began while it was being read.
        async with UnitOfWork(app.db) as uow:
            officer_id = (await uow.contacts.by_identity("test", "commune-officer")).id  # type: ignore[union-attr]
            village_id = (await uow.contacts.by_identity("test", "village-officer")).id  # type: ignore[union-attr]
            rows = await uow.session.execute(select(DialogueState.contact_id, DialogueState.flow))
            flows = {contact_id: flow for contact_id, flow in rows.all()}
        assert flows == {officer_id: None, village_id: "form"}
    finally:
        gate.release.set()
    replies = (await asyncio.wait_for(report, WAIT)).replies

    # The same output as before: the summary, its files, then the menu.
    async with app.read_only() as reads:
        expected = await compile_unit(
            reads, tree.commune, H1, content_dir=app.content_dir, forms=app.forms, now=app.clock.now()
        )
    t = translator("vi")
    assert [r.text for r in replies] == [summary_text(expected, t), t("What would you like to do next?")]
    assert [a.filename for a in replies[0].attachments] == [
        "bao-cao-phuong-thuc-phan-2026-H1.xlsx",
        "bao-cao-phuong-thuc-phan-2026-H1.docx",
        *(
            f"bao-cao-phuong-thuc-phan-2026-H1-{chart}.png"
            for chart in (
                "gia-dinh-hoc-tap",
                "dong-ho-hoc-tap",
                "cong-dong-hoc-tap",
                "ty-le-hoi-vien-tren-dan-so",
            )
        ),
    ]
    assert "cmd:baocaotonghop" in [o.id for o in replies[1].options]
    assert all(r.later is None for r in replies)
    # The dialogue ended with the step: the next message gets the menu, not the period question.
    await officer.say("xin chào")
    assert "cmd:baocaotonghop" in officer.option_ids and "2026-H1" not in officer.option_ids


async def test_a_report_that_fails_after_the_step_says_so_and_counts_an_error(app: App) -> None:
    await fill(app)
    officer = Chat(app, "commune-officer")
    await officer.say("/baocaotonghop")
    gate = ReadGate(app, fail=True)
    gate.armed.set()
    errors = app.metrics.step_errors.labels("test")
    before = errors._value.get()
    replies = (await app.handle(pick("commune-officer", "2026-H1"))).replies
    assert gate.reached.is_set()
    sorry = "Xin lỗi, chưa lập được báo cáo tổng hợp. Anh/chị vui lòng thử lại sau."
    assert [r.text for r in replies] == [sorry]
    assert errors._value.get() == before + 1
    await officer.say("xin chào")  # the step was saved: the dialogue is over, nothing is stuck
    assert "cmd:baocaotonghop" in officer.option_ids


async def test_a_read_only_unit_of_work_reads_one_snapshot_and_writes_nothing(db: Database) -> None:
    """On both backends: a write committed meanwhile is not seen, and writing is refused."""
    app = make_app(db.url)
    try:
        tree = await seed_tree(app)
        count = select(func.count()).select_from(text("units"))
        async with ReadOnlyUnitOfWork(app.db) as reads:
            before = (await reads.session.execute(count)).scalar_one()
            async with app.uow() as uow:  # a village added and committed while the read is open
                await add_village(uow, CONSOLE, tree.commune, "Thôn Mới", VILLAGE, app.clock.now())
                await uow.commit()
            assert (await reads.session.execute(count)).scalar_one() == before
            with pytest.raises(Exception, match=r"read-?only"):
                await reads.session.execute(text("DELETE FROM units"))
        async with ReadOnlyUnitOfWork(app.db) as reads:
            assert (await reads.session.execute(count)).scalar_one() == before + 1
    finally:
        await app.db.dispose()


def test_reply_later_is_not_kept_in_dialogue_state() -> None:
    """A `later` reply is never a prompt: the state keeps only text, options and numbering."""
    from bot.conversations.engine import Prompt

    async def work(_reads: ReadOnlyUnitOfWork) -> list[Reply]:
        return []

    assert "later" not in Prompt.of(Reply("x", later=work)).model_dump()
