"""Ad hoc requests (/yeucau, issue 9 item 6), through the services, on SQLite and PostgreSQL.

Who may ask whom (a commune officer only the village officers of their commune; a village
officer nobody), who receives the request, that reminders reach only those who have not
answered, that the compiled answers sum the latest version of each unit's answer, and what
/tinhtrang lists as answered and missing.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.forms.model import Form
from bot.domain.i18n import translator
from bot.domain.permissions import Action, NotAllowed, load_grants
from bot.domain.requests import request_period
from bot.messaging.reminders import send_reminders
from bot.reports.requests import render_request_xlsx, request_summary
from bot.runtime.scheduler import default_jobs
from bot.services.actor import CONSOLE, Actor
from bot.services.requests import (
    RequestCancelled,
    RequestClosed,
    RequestDraft,
    RequestRefused,
    cancel_request,
    compile_answers,
    followed_request,
    request_status,
    request_to_answer,
    requests_to_answer,
    send_request,
    submit_answer,
)
from bot.services.submissions import Draft
from bot.services.units import add_village
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE, VILLAGE_OFFICER, OutboxMessage, Unit
from storage.models_outreach import Delivery
from storage.models_requests import KIND_REQUEST
from storage.uow import UnitOfWork
from tests.support import Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import files_of, outbox, set_locale, vn

QUESTIONS = ("Số học sinh nghỉ học", "Số em đã đi học lại")


@dataclass
class World:
    app: App
    clock: FixedClock
    tree: Tree

    @property
    def today(self) -> date:
        return self.clock.now().date()


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    clock = FixedClock(vn(2026, 11, 22, 9))
    app = make_app(db.url, clock)
    tree = await seed_tree(app)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "group-officer", VILLAGE_OFFICER, tree.group)
    await make_contact(app, "other-village-officer", VILLAGE_OFFICER, tree.other_village)
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "other-commune-officer", COMMUNE_OFFICER, tree.other_commune)
    await make_contact(app, "province-staff", PROVINCE_STAFF, tree.province)
    try:
        yield World(app, clock, tree)
    finally:
        await app.db.dispose()


async def actor(uow: UnitOfWork, external_id: str) -> Actor:
    contact = await uow.contacts.by_identity("test", external_id)
    assert contact is not None
    return Actor.of(contact, await load_grants(uow, contact.id))


def typed(area: Unit, due: date, audience: str = VILLAGE_OFFICER) -> RequestDraft:
    return RequestDraft(area.id, audience, due, title="Học sinh nghỉ học sau lũ", questions=QUESTIONS)


@dataclass(frozen=True)
class Asked:
    """What a test needs of a sent request once its unit of work is closed."""

    id: int
    officers: int
    form: Form


async def send(w: World, who: str, draft: RequestDraft) -> Asked:
    async with w.app.uow() as uow:
        sent = await send_request(
            uow, await actor(uow, who), draft, forms=w.app.forms, today=w.today, now=w.clock.now()
        )
        asked = Asked(sent.request.id, sent.officers, sent.form)
        await uow.commit()
    return asked


async def answer(w: World, who: str, request_id: int, unit: Unit, **values: Any) -> int:
    """Answer as the form runner does; the version stored."""
    async with w.app.uow() as uow:
        me = await actor(uow, who)
        found = await request_to_answer(
            uow, me, request_id, forms=w.app.forms, content_dir=w.app.content_dir, today=w.today
        )
        assert found is not None
        period = request_period(found.request).key
        draft = Draft(found.form, f"{unit.id}:{period}", unit.id, period, values)
        done = await submit_answer(
            uow,
            me,
            request_id,
            draft,
            forms=w.app.forms,
            today=w.today,
            now=w.clock.now(),
            channel="test",
            content_dir=w.app.content_dir,
        )
        await uow.commit()
    return done.submission.version


async def received(app: App) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in await outbox(app):
        out.setdefault(m.external_id, []).append(m.payload)
    return out


# ---- who may ask whom ----------------------------------------------------------------------------


async def test_a_commune_officer_asks_the_village_officers_of_their_commune_only(world: World) -> None:
    w, tree = world, world.tree
    due = w.today + timedelta(days=7)
    with pytest.raises(NotAllowed) as outside:
        await send(w, "commune-officer", typed(tree.other_commune, due))
    assert outside.value.action is Action.REQUEST
    with pytest.raises(NotAllowed):
        await send(w, "commune-officer", typed(tree.other_village, due))
    with pytest.raises(NotAllowed):  # not the commune officers of their own commune
        await send(w, "commune-officer", typed(tree.commune, due, COMMUNE_OFFICER))
    assert await outbox(w.app) == []

    sent = await send(w, "commune-officer", typed(tree.commune, due))
    assert sent.officers == 2 and [f.label.vi for f in sent.form.fields] == list(QUESTIONS)
    got = await received(w.app)
    assert set(got) == {"village-officer", "group-officer"}
    (notice,) = got["village-officer"]
    assert "Học sinh nghỉ học sau lũ" in notice["text"] and "Thôn Nà Rụa" in notice["text"]
    assert "Tổ dân phố 1" not in notice["text"]
    assert notice["options"] == [{"id": f"cmd:traloi {sent.id}", "label": "Trả lời ngay"}]
    async with w.app.uow() as uow:
        (row,) = await uow.audit.actions("request.create")
        assert row.contact_id is not None and row.detail["officers"] == 2 and row.unit_id == tree.commune.id


@pytest.mark.parametrize("who", ["village-officer", "other-village-officer"])
async def test_a_village_officer_cannot_send_a_request(world: World, who: str) -> None:
    with pytest.raises(NotAllowed) as refused:
        await send(world, who, typed(world.tree.village, world.today + timedelta(days=3)))
    assert refused.value.action is Action.REQUEST


async def test_province_staff_ask_the_commune_officers_of_their_province(world: World) -> None:
    w = world
    sent = await send(
        w, "province-staff", typed(w.tree.province, w.today + timedelta(days=3), COMMUNE_OFFICER)
    )
    assert sent.officers == 2
    assert set(await received(w.app)) == {"commune-officer", "other-commune-officer"}


async def test_what_a_request_asks_and_when_is_checked(world: World) -> None:
    w, commune = world, world.tree.commune
    too_many = RequestDraft(commune.id, VILLAGE_OFFICER, w.today, title="T", questions=("a",) * 6)
    late = typed(commune, w.today + timedelta(days=91))
    past = typed(commune, w.today - timedelta(days=1))
    not_for_requests = RequestDraft(commune.id, VILLAGE_OFFICER, w.today, form_key="village_report")
    for draft, code in [(too_many, "questions"), (late, "due"), (past, "due"), (not_for_requests, "form")]:
        with pytest.raises(RequestRefused) as refused:
            await send(w, "commune-officer", draft)
        assert refused.value.code == code
    prepared = RequestDraft(commune.id, VILLAGE_OFFICER, w.today, form_key="pupils_in_hardship")
    sent = await send(w, "commune-officer", prepared)
    assert sent.form.key == f"request_{sent.id}" and "pupils_helped" in sent.form.field_keys


async def test_only_officers_asked_may_answer_and_only_while_it_is_open(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=2)))
    async with w.app.uow() as uow:
        with pytest.raises(NotAllowed):
            await request_to_answer(
                uow,
                await actor(uow, "other-village-officer"),
                sent.id,
                forms=w.app.forms,
                content_dir=w.app.content_dir,
                today=w.today,
            )
    with pytest.raises(NotAllowed):  # a unit the request does not ask, forged in the draft
        await answer(w, "village-officer", sent.id, tree.group, q1=1, q2=1)
    w.clock.advance(timedelta(days=2 + 30 + 1))  # the due date and the grace of schedules.yaml
    with pytest.raises(RequestClosed):
        await answer(w, "village-officer", sent.id, tree.village, q1=1, q2=1)


# ---- reminders -----------------------------------------------------------------------------------


async def test_reminders_reach_only_the_officers_who_have_not_answered(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=3)))
    other = await send(w, "province-staff", typed(tree.province, w.today + timedelta(days=3)))
    await answer(w, "village-officer", sent.id, tree.village, q1=3, q2=2)
    before = len(await outbox(w.app))
    w.clock.set(vn(2026, 11, 24, 8))  # the day before the due date: requests remind 1 and 0 days ahead
    queued = await send_reminders(w.app)
    new = (await outbox(w.app))[before:]
    mine = [m for m in new if f"/traloi {sent.id}" in m.payload["text"]]
    assert {m.external_id for m in mine} == {"group-officer"}
    (reminder,) = mine
    assert "Tổ dân phố 1" in reminder.payload["text"] and "Thôn Nà Rụa" not in reminder.payload["text"]
    assert reminder.payload["options"] == [{"id": f"cmd:traloi {sent.id}", "label": "Trả lời ngay"}]
    # The province's request reaches the village officers of both communes, the one who answered
    # the commune's request included (answering one request does not answer another).
    theirs = {m.external_id for m in new if f"/traloi {other.id}" in m.payload["text"]}
    assert theirs == {"village-officer", "group-officer", "other-village-officer"}
    assert queued == len(new) == 4
    assert await send_reminders(w.app) == 0  # a re-run sends nothing twice
    w.clock.set(vn(2026, 11, 23, 8))  # two days ahead: no reminder for requests
    assert await send_reminders(w.app) == 0


async def test_no_reminder_once_everyone_has_answered(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=1)))
    await answer(w, "village-officer", sent.id, tree.village, q1=1, q2=0)
    await answer(w, "group-officer", sent.id, tree.group, q1=2, q2=1)
    w.clock.set(vn(2026, 11, 23, 8))
    await send_reminders(w.app)
    assert not [m for m in await outbox(w.app) if m.payload["text"].startswith("⏰")]


# ---- compiled answers and /tinhtrang --------------------------------------------------------------


async def test_the_compiled_answers_sum_the_latest_version_of_each_unit(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=5)))
    rid = sent.id
    assert await answer(w, "village-officer", rid, tree.village, q1=3, q2=2) == 1
    assert await answer(w, "village-officer", rid, tree.village, q1=4, q2=2) == 2  # a correction
    assert await answer(w, "group-officer", rid, tree.group, q1=5, q2=1) == 1
    async with w.app.uow() as uow:
        staff = await actor(uow, "commune-officer")
    async with w.app.read_only() as reads:
        request, form, answers = await compile_answers(
            reads, staff, rid, forms=w.app.forms, content_dir=w.app.content_dir, now=w.clock.now()
        )
        xlsx = render_request_xlsx(answers, form, request, translator("vi"))
    compiled = answers.compiled
    assert (compiled.total.reported, compiled.total.expected, compiled.total.on_time) == (2, 2, 2)
    assert compiled.total.value("q1") == 9 and compiled.total.value("q2") == 3
    by_unit = {r.unit.name: r.figures.value("q1") for r in compiled.rows}
    assert by_unit == {"Thôn Nà Rụa": 4, "Tổ dân phố 1": 5}
    text = request_summary(answers, form, translator("vi"))
    assert "Đã trả lời: 2/2" in text
    assert "• Số học sinh nghỉ học: 9" in text and "• Số em đã đi học lại: 3" in text
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet is not None
    rows = {
        r[1]: r[2:]
        for r in sheet.iter_rows(values_only=True)
        if r[1] in ("Thôn Nà Rụa", "Tổ dân phố 1", "Tổng cộng")
    }
    assert rows["Thôn Nà Rụa"][:2] == (4, 2) and rows["Tổ dân phố 1"][:2] == (5, 1)
    assert rows["Tổng cộng"][:3] == (9, 3, "2/2")


async def test_a_province_request_sums_the_villages_per_commune(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "province-staff", typed(tree.province, w.today + timedelta(days=5)))
    await answer(w, "village-officer", sent.id, tree.village, q1=3, q2=2)
    await answer(w, "other-village-officer", sent.id, tree.other_village, q1=7, q2=0)
    async with w.app.uow() as uow:
        staff = await actor(uow, "province-staff")
    async with w.app.read_only() as reads:
        _, form, answers = await compile_answers(
            reads, staff, sent.id, forms=w.app.forms, content_dir=w.app.content_dir, now=w.clock.now()
        )
    compiled = answers.compiled
    rows = {
        r.unit.name: (r.figures.reported, r.figures.expected, r.figures.value("q1")) for r in compiled.rows
    }
    assert rows == {"Phường Thục Phán": (1, 2, 3), "Xã Trường Hà": (1, 1, 7)}
    assert compiled.total.value("q1") == 10
    assert "Phường Thục Phán: đã trả lời 1/2" in request_summary(answers, form, translator("vi"))


async def test_status_lists_who_has_answered_and_who_not_yet(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=5)))
    await answer(w, "group-officer", sent.id, tree.group, q1=1, q2=1)
    async with w.app.uow() as uow:
        staff = await actor(uow, "commune-officer")
        request = await followed_request(uow, staff, sent.id)
        assert request is not None
        status = await request_status(uow, staff, request, forms=w.app.forms, today=w.today)
        assert [(u.name, s.version) for u, s in status.answered] == [("Tổ dân phố 1", 1)]
        assert [u.name for u in status.missing] == ["Thôn Nà Rụa"]
        # Another commune's officer neither sees it nor may read it.
        other = await actor(uow, "other-commune-officer")
        assert await followed_request(uow, other, sent.id) is None
        with pytest.raises(NotAllowed):
            await request_status(uow, other, request, forms=w.app.forms, today=w.today)
        # Province staff, above the commune, follow it too.
        assert await followed_request(uow, await actor(uow, "province-staff"), sent.id) is not None


async def test_the_request_notice_is_queued_once_per_officer(world: World) -> None:
    """An officer holding two villages gets one message naming both, under a notice per village."""
    w, tree = world, world.tree
    async with w.app.uow() as uow:
        contact = await uow.contacts.by_identity("test", "village-officer")
        assert contact is not None
        await uow.contacts.grant(contact.id, VILLAGE_OFFICER, tree.group.id, w.clock.now())
        await uow.commit()
    await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=5)))
    got = await received(w.app)
    (one,) = got["village-officer"]
    assert "Thôn Nà Rụa" in one["text"] and "Tổ dân phố 1" in one["text"]
    async with w.app.db.sessions() as session:
        kinds = (await session.execute(select(Delivery.kind, func.count()).group_by(Delivery.kind))).all()
    assert dict(kinds) == {KIND_REQUEST: 2}


# ---- cancelling a request ------------------------------------------------------------------------


async def cancel(w: World, who: str, request_id: int) -> None:
    async with w.app.uow() as uow:
        await cancel_request(uow, await actor(uow, who), request_id, w.clock.now())
        await uow.commit()


async def test_a_cancelled_request_is_neither_reminded_offered_nor_answered(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=3)))
    await answer(w, "village-officer", sent.id, tree.village, q1=3, q2=2)
    with pytest.raises(NotAllowed):  # another commune's officer does not follow it
        await cancel(w, "other-commune-officer", sent.id)
    with pytest.raises(NotAllowed):  # nor does an officer it asks
        await cancel(w, "group-officer", sent.id)
    before = len(await outbox(w.app))
    await cancel(w, "commune-officer", sent.id)
    told = (await outbox(w.app))[before:]
    assert {m.external_id for m in told} == {"village-officer", "group-officer"}
    assert all("đã hủy yêu cầu báo cáo “Học sinh nghỉ học sau lũ”" in m.payload["text"] for m in told)
    assert "Tổ dân phố 1" in next(m for m in told if m.external_id == "group-officer").payload["text"]
    with pytest.raises(NotAllowed):  # the first cancel stands; nobody is told twice
        await cancel(w, "province-staff", sent.id)
    assert len(await outbox(w.app)) == before + 2
    async with w.app.uow() as uow:
        (row,) = await uow.audit.actions("request.cancel")
        assert row.unit_id == tree.commune.id and row.detail == {"request_id": sent.id, "officers": 2}
        group = await actor(uow, "group-officer")
        assert await requests_to_answer(uow, group, content_dir=w.app.content_dir, today=w.today) == []
        with pytest.raises(RequestCancelled):
            await request_to_answer(
                uow, group, sent.id, forms=w.app.forms, content_dir=w.app.content_dir, today=w.today
            )
    with pytest.raises(RequestCancelled):
        await answer(w, "group-officer", sent.id, tree.group, q1=1, q2=1)
    w.clock.set(vn(2026, 11, 24, 8))  # the day before the due date: a standing request reminds
    assert await send_reminders(w.app) == 0
    async with w.app.uow() as uow:  # the answers sent stay, for whoever follows it
        staff = await actor(uow, "commune-officer")
        request = await followed_request(uow, staff, sent.id)
        assert request is not None and request.cancelled_at is not None
        status = await request_status(uow, staff, request, forms=w.app.forms, today=w.today)
        assert [u.name for u, _ in status.answered] == ["Thôn Nà Rụa"]


async def test_province_staff_may_cancel_a_communes_request(world: World) -> None:
    w, tree = world, world.tree
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=3)))
    await cancel(w, "province-staff", sent.id)
    async with w.app.uow() as uow:
        (row,) = await uow.audit.actions("request.cancel")
        staff = await uow.contacts.by_identity("test", "province-staff")
        assert staff is not None and row.contact_id == staff.id


# ---- units with nobody to ask --------------------------------------------------------------------


async def test_units_without_an_officer_are_not_counted_as_expected(world: World) -> None:
    w, tree = world, world.tree
    async with w.app.uow() as uow:
        for name in ("Thôn Bản Giới", "Thôn Nà Mạ"):
            await add_village(uow, CONSOLE, tree.commune, name, VILLAGE, w.clock.now())
        await uow.commit()
    sent = await send(w, "commune-officer", typed(tree.commune, w.today + timedelta(days=5)))
    assert sent.officers == 2
    await answer(w, "village-officer", sent.id, tree.village, q1=3, q2=2)
    async with w.app.uow() as uow:
        staff = await actor(uow, "commune-officer")
        request = await followed_request(uow, staff, sent.id)
        assert request is not None
        status = await request_status(uow, staff, request, forms=w.app.forms, today=w.today)
        assert (len(status.answered), status.expected) == (1, 2)
        assert [u.name for u in status.missing] == ["Tổ dân phố 1"]
        assert sorted(u.name for u in status.unstaffed) == ["Thôn Bản Giới", "Thôn Nà Mạ"]
    async with w.app.read_only() as reads:
        request, form, answers = await compile_answers(
            reads, staff, sent.id, forms=w.app.forms, content_dir=w.app.content_dir, now=w.clock.now()
        )
        xlsx = render_request_xlsx(answers, form, request, translator("vi"))
    assert (answers.compiled.total.reported, answers.compiled.total.expected) == (1, 2)
    text = request_summary(answers, form, translator("en"))
    assert "Answered: 1 of 2 villages and residential groups (50%)" in text
    assert "Not answered yet: Tổ dân phố 1." in text
    assert "2 villages and residential groups have no officer yet, so nobody there was asked: " in text
    assert "asked: Thôn Bản Giới, Thôn Nà Mạ." in text
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet is not None
    cells = [str(c) for r in sheet.iter_rows(values_only=True) for c in r if c is not None]
    assert "Chưa trả lời: Tổ dân phố 1." in cells
    assert any(c.startswith("2 thôn, tổ dân phố chưa có cán bộ") for c in cells), cells
    assert "Đã trả lời: 1/2" in " ".join(cells)


# ---- the answers, to the sender after the due date ------------------------------------------------


async def run_answers_job(w: World, when: datetime) -> list[OutboxMessage]:
    """Run the scheduled `request_answers` job at `when`; the messages it queued."""
    w.clock.set(when)
    before = len(await outbox(w.app))
    queued = await default_jobs()["request_answers"].func(w.app)
    new = (await outbox(w.app))[before:]
    assert queued == len(new)
    return new


async def test_the_sender_gets_the_answers_once_the_due_date_has_passed(world: World) -> None:
    w, tree = world, world.tree
    await set_locale(w.app, "commune-officer", "en")
    sent = await send(w, "commune-officer", typed(tree.commune, date(2026, 11, 25)))
    await answer(w, "village-officer", sent.id, tree.village, q1=3, q2=2)
    assert await run_answers_job(w, vn(2026, 11, 25, 8, 15)) == []  # on the due date: nothing yet
    (message,) = await run_answers_job(w, vn(2026, 11, 26, 8, 15))
    assert message.external_id == "commune-officer"  # the sender only
    text = message.payload["text"]
    assert text.startswith(f"The due date of your request #{sent.id} has passed: here are the answers.")
    assert "Answered: 1 of 2 villages and residential groups (50%)." in text
    assert "• Số học sinh nghỉ học: 3" in text
    assert "Not answered yet: Tổ dân phố 1." in text  # also when some did not answer
    assert [a["filename"] for a in message.payload["attachments"]] == [
        f"yeu-cau-{sent.id}-phuong-thuc-phan.xlsx"
    ]
    sheet = load_workbook(io.BytesIO((await files_of(w.app, message.payload))["xlsx"])).active
    assert sheet is not None
    cells = [str(c) for r in sheet.iter_rows(values_only=True) for c in r if c is not None]
    assert "Not answered yet: Tổ dân phố 1." in cells and "1/2" in cells
    # The same summary /tinhtrang gives on demand, after the line that says why it comes.
    async with w.app.uow() as uow:
        staff = await actor(uow, "commune-officer")
    async with w.app.read_only() as reads:
        _, form, answers = await compile_answers(
            reads, staff, sent.id, forms=w.app.forms, content_dir=w.app.content_dir, now=w.clock.now()
        )
    assert text.endswith(request_summary(answers, form, translator("en")))
    # A second run, or the next day's, sends nothing more.
    assert await run_answers_job(w, vn(2026, 11, 26, 8, 15)) == []
    assert await run_answers_job(w, vn(2026, 11, 27, 8, 15)) == []


async def test_no_answers_for_a_cancelled_request_nor_a_sender_who_left(world: World) -> None:
    w, tree = world, world.tree
    cancelled = await send(w, "commune-officer", typed(tree.commune, date(2026, 11, 25)))
    await answer(w, "village-officer", cancelled.id, tree.village, q1=3, q2=2)
    await cancel(w, "commune-officer", cancelled.id)
    left = await send(w, "province-staff", typed(tree.province, date(2026, 11, 25)))
    standing = await send(w, "other-commune-officer", typed(tree.other_commune, date(2026, 11, 25)))
    async with w.app.uow() as uow:  # the province staff member leaves the post
        staff = await uow.contacts.by_identity("test", "province-staff")
        assert staff is not None
        for grant in await uow.contacts.roles(staff.id):
            grant.revoked_at = w.clock.now()
        await uow.commit()
    new = await run_answers_job(w, vn(2026, 11, 26, 8, 15))
    # Nobody answered the standing request: its sender still gets who did not.
    heading = f"Yêu cầu số {standing.id} của anh/chị đã hết hạn trả lời: dưới đây là tổng hợp các câu trả lời"
    assert [(m.external_id, m.payload["text"].split("\n")[0]) for m in new] == [
        ("other-commune-officer", heading + ".")
    ]
    assert "Chưa trả lời: Xóm Pác Bó." in new[0].payload["text"]
    assert f"/traloi {left.id}" not in str(new) and len(new[0].payload["attachments"]) == 1
