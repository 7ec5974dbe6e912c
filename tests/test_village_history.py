"""One unit's reports for the console's village page (bot/services/village_history.py), on both
backends: records newest period first, every version with who filed it (name and role) and
whether it was on time, the diff between versions (only the changed fields, labelled and
formatted in the reader's language), the review acts and state, the lock, who may act, and who
may read at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.forms.loader import load_forms
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed, load_grants
from bot.domain.schedules import load_schedules
from bot.services.actor import Actor
from bot.services.reviews import approve, locks_at, return_report
from bot.services.submissions import Draft, Submitted, submit_report
from bot.services.village_history import UnitHistory, changes, unit_history
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER, Unit
from storage.uow import UnitOfWork
from tests.support import CONTENT, Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import submit, submit_activity, submit_commune_report, values, vn

FUND_VI = "Quỹ khuyến học vận động được trong kỳ"
YEAR = "2026"  # due 30/11/2026 (on time before 1/12), locked from 11/12/2026


@dataclass
class World:
    app: App
    clock: FixedClock
    tree: Tree


NAMES = {
    "village-officer": "Nông Thị Lan",
    "commune-officer": "Hoàng Văn Dũng",
    "province-staff": "Bế Thị Mai",
}


async def build_world(db: Database) -> World:
    """The tree, a village, commune, other commune and province officer, with names."""
    clock = FixedClock(vn(2026, 11, 25, 9))
    app = make_app(db.url, clock)
    tree = await seed_tree(app)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "other-commune-officer", COMMUNE_OFFICER, tree.other_commune)
    await make_contact(app, "province-staff", PROVINCE_STAFF, tree.province)
    async with app.uow() as uow:
        for external_id, name in NAMES.items():
            contact = await uow.contacts.by_identity("test", external_id)
            assert contact is not None
            contact.display_name = name
        await uow.commit()
    return World(app, clock, tree)


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    built = await build_world(db)
    try:
        yield built
    finally:
        await built.app.db.dispose()


async def actor(uow: UnitOfWork, external_id: str) -> Actor:
    contact = await uow.contacts.by_identity("test", external_id)
    assert contact is not None
    return Actor.of(contact, await load_grants(uow, contact.id))


async def file(w: World, unit: Unit, period: str = YEAR, **overrides: Any) -> Submitted:
    """A village report filed by the village officer through the service, as the dialogue does."""
    app = w.app
    form = app.forms["village_report"]
    async with app.uow() as uow:
        done = await submit_report(
            uow,
            await actor(uow, "village-officer"),
            Draft(form, f"{unit.id}:{period}", unit.id, period, values(period, **overrides)),
            now=app.clock.now(),
            channel="test",
            content_dir=app.content_dir,
        )
        await uow.commit()
    return done


async def history(w: World, who: str, unit: Unit, locale: str = "vi") -> UnitHistory:
    app = w.app
    async with app.uow() as uow:
        return await unit_history(
            uow,
            await actor(uow, who),
            unit.id,
            forms=app.forms,
            schedules=load_schedules(app.content_dir),
            now=app.clock.now(),
            t=translator(locale),
        )


async def test_versions_say_who_when_and_only_what_changed(world: World) -> None:
    app, tree, clock = world.app, world.tree, world.clock
    first = (await file(world, tree.village)).submission
    async with app.uow() as uow:
        await return_report(
            uow,
            await actor(uow, "commune-officer"),
            first.id,
            "  Sai   số hộ ",
            now=clock.now(),
            forms=app.forms,
        )
        await uow.commit()
    clock.set(vn(2026, 12, 2, 10))  # after the due date (30/11), before the lock (11/12)
    second = await file(
        world, tree.village, households_total=120, fund_raised_vnd=9_500_000, village_lc_status="recognized"
    )
    assert second.previous is not None and second.previous.id == first.id

    seen = await history(world, "commune-officer", tree.village)
    [record] = seen.records
    assert (record.form_key, record.period, record.reviewed) == ("village_report", Period.parse(YEAR), True)
    assert [v.number for v in record.versions] == [1, 2]
    v1, v2 = record.versions
    assert (v1.by_name, v1.by_role, v1.on_time, v1.changes) == ("Nông Thị Lan", VILLAGE_OFFICER, True, ())
    assert (v2.by_name, v2.by_role, v2.on_time) == ("Nông Thị Lan", VILLAGE_OFFICER, False)
    vi = translator("vi")
    assert [(c.key, c.label, c.before, c.after) for c in v2.changes] == [
        ("households_total", "Tổng số hộ", "100", "120"),
        ("village_lc_status", "Danh hiệu Cộng đồng học tập của thôn", "Đã đăng ký", "Đạt Cộng đồng học tập"),
        ("fund_raised_vnd", FUND_VI, vi.money(8_000_000), vi.money(9_500_000)),
    ]
    # The review so far: returned (the reason as stored: cleaned), by the commune officer.
    [act] = record.acts
    assert (act.review.decision, act.review.reason, act.review.version) == ("returned", "Sai số hộ", 1)
    assert (act.by_name, act.by_role) == ("Hoàng Văn Dũng", COMMUNE_OFFICER)
    assert (record.state, record.locked_since, record.may_act, seen.may_review) == (
        "waiting",
        None,
        True,
        True,
    )
    assert record.latest.submission.id == second.submission.id

    # The same history in English: labels and money as an English reader reads them.
    en = translator("en")
    [record_en] = (await history(world, "commune-officer", tree.village, "en")).records
    assert [(c.label, c.before, c.after) for c in record_en.latest.changes] == [
        ("Total households", "100", "120"),
        ("The village and the Learning Community title", "Registered", "Recognised as Learning Community"),
        ("Study promotion fund raised this period", en.money(8_000_000), en.money(9_500_000)),
    ]
    assert en.money(9_500_000) != vi.money(9_500_000)

    # Approved: the state follows, and nothing is left to act on.
    async with app.uow() as uow:
        await approve(uow, await actor(uow, "commune-officer"), second.submission.id, now=clock.now())
        await uow.commit()
    [record] = (await history(world, "commune-officer", tree.village)).records
    assert (record.state, record.may_act) == ("approved", False)
    assert [(a.review.decision, a.review.version) for a in record.acts] == [("returned", 1), ("approved", 2)]


async def test_newest_period_first_activities_listed_briefly_and_a_communes_own_report(world: World) -> None:
    app, tree = world.app, world.tree
    await submit(app, tree.village, "2025", vn(2025, 11, 20))
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10))
    await submit(app, tree.village, YEAR, vn(2026, 11, 20))
    await submit_activity(app, tree.village, date(2026, 3, 8), participants=55)
    await submit_activity(app, tree.village, date(2026, 9, 9))
    await submit(app, tree.other_village, YEAR, vn(2026, 11, 20))  # another village: not here

    seen = await history(world, "province-staff", tree.village)
    assert [r.period.key for r in seen.records if r.period] == ["2026", "2026-H1", "2025"]
    assert all(r.form_key == "village_report" and not r.per_entry for r in seen.records)
    assert [r.versions[0].on_time for r in seen.records] == [True, True, True]
    assert [r.versions[0].by_name for r in seen.records] == [None, None, None]  # not filed by a person
    # Activities: newest first, one line each (the date, the kind…), no review.
    assert [e.form_key for e in seen.entries] == ["activity_report", "activity_report"]
    assert seen.entries[0].brief.startswith("09/09/2026 · Chuyên đề")
    assert seen.entries[1].brief.startswith("08/03/2026")
    assert not any(e.reviewed or e.may_act or e.state for e in seen.entries)
    figures = dict(seen.records[0].figures)
    assert figures["Tổng số hộ"] == "100" and "Ghi chú" not in figures  # empty values left out

    # A commune's own report: the province reviews it, its own officer only reads it.
    await submit_commune_report(app, tree.commune, YEAR, vn(2026, 11, 21))
    own = await history(world, "commune-officer", tree.commune)
    [record] = own.records
    assert (record.form_key, record.state, own.may_review, record.may_act) == (
        "commune_report",
        "waiting",
        False,
        False,
    )
    above = await history(world, "province-staff", tree.commune)
    assert (above.may_review, above.records[0].may_act) == (True, True)
    assert above.entries == () and len(above.records) == 1  # the villages' reports are on their pages


async def test_only_staff_of_the_area_read_a_units_history(world: World) -> None:
    app, tree = world.app, world.tree
    await file(world, tree.village)
    for who in ("other-commune-officer", "village-officer"):
        with pytest.raises(NotAllowed) as refused:
            await history(world, who, tree.village)
        assert refused.value.action is Action.COMPILE_REPORT
    with pytest.raises(NotAllowed):
        await history(world, "commune-officer", tree.other_village)
    gone = Unit(id=987654, kind="village", name="?", name_folded="?", path="/", created_at=app.clock.now())
    with pytest.raises(NotAllowed):  # a unit that does not exist: the same answer
        await history(world, "province-staff", gone)


async def test_the_lock_shows_until_a_return_reopens_the_record(world: World) -> None:
    app, tree, clock = world.app, world.tree, world.clock
    first = (await file(world, tree.village)).submission
    clock.set(vn(2026, 12, 12, 9))  # past 10 days after 30/11
    since = locks_at(load_schedules(app.content_dir), app.forms["village_report"], Period.parse(YEAR))
    assert since is not None and clock.now() >= since
    [record] = (await history(world, "commune-officer", tree.village)).records
    # Locked for the village's officers; its reviewers still act (bot/services/reviews.py).
    assert (record.locked_since, record.state, record.may_act) == (since, "waiting", True)
    async with app.uow() as uow:
        await return_report(
            uow,
            await actor(uow, "commune-officer"),
            first.id,
            "Thiếu số hộ",
            now=clock.now(),
            forms=app.forms,
        )
        await uow.commit()
    [record] = (await history(world, "commune-officer", tree.village)).records
    assert (record.locked_since, record.state, record.may_act) == (None, "returned", False)


def test_a_field_the_form_no_longer_has_is_shown_by_its_key() -> None:
    form = load_forms(CONTENT / "forms")["village_report"]
    t = translator("vi")
    before = {"households_total": 100, "old_field": 3, "notes": None}
    after = {"households_total": 100, "old_field": 4, "notes": "Đã sửa"}
    assert [(c.key, c.label, c.before, c.after) for c in changes(form, before, after, t)] == [
        ("notes", form.field("notes").label.vi, "—", "Đã sửa"),
        ("old_field", "old_field", "3", "4"),
    ]
    assert changes(form, before, dict(before), t) == []
