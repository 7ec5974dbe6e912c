"""Review and approval, and the lock after the deadline (bot/services/reviews.py), on both backends.

Who may review (the officers of the unit above; never another commune's), what a version's state
is (waiting → approved | returned; a new version waits again), the notice of a return, the lock
of a period for the unit's officers after its deadline and grace days, reopening one unit, and
the approved / waiting / returned counts in compiled reports, digests and escalations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed, load_grants
from bot.domain.schedules import load_schedules
from bot.messaging.digest import send_weekly_digest
from bot.messaging.reminders import send_reminders
from bot.reports.compiled import compile_unit, summary_text
from bot.services.actor import Actor
from bot.services.reviews import (
    PeriodLocked,
    ReviewError,
    approval_progress,
    approve,
    lock_for,
    record_state,
    reopen,
    reports_to_review,
    return_report,
    seed_demo_reviews,
)
from bot.services.submissions import Draft, Submitted, submit_report
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER, Unit
from storage.uow import UnitOfWork
from tests.support import Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import add_identity, outbox_to, values, vn

YEAR = "2026"  # due 30/11/2026; locked from 11/12/2026 (lock_after_days: 10)


@dataclass
class World:
    app: App
    clock: FixedClock
    tree: Tree


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    clock = FixedClock(vn(2026, 11, 25, 9))
    app = make_app(db.url, clock)
    tree = await seed_tree(app)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "group-officer", VILLAGE_OFFICER, tree.group)
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


async def file(w: World, who: str, unit: Unit, period: str = YEAR, **overrides: Any) -> Submitted:
    """A village report filed through the service, as the dialogue files it."""
    app = w.app
    async with app.uow() as uow:
        done = await submit_report(
            uow,
            await actor(uow, who),
            Draft(app.forms["village_report"], f"{unit.id}:{period}", unit.id, period, values(**overrides)),
            now=app.clock.now(),
            channel="test",
            content_dir=app.content_dir,
        )
        await uow.commit()
    return done


async def state(w: World, unit: Unit, period: str = YEAR) -> str:
    async with w.app.uow() as uow:
        return (await record_state(uow, "village_report", f"{unit.id}:{period}")).state


async def test_only_the_officers_above_review_and_each_act_is_audited(world: World) -> None:
    app, tree = world.app, world.tree
    first = (await file(world, "village-officer", tree.village)).submission
    now = app.clock.now()
    async with app.uow() as uow:
        for who in ("other-commune-officer", "village-officer", "group-officer"):
            with pytest.raises(NotAllowed) as refused:
                await approve(uow, await actor(uow, who), first.id, now=now)
            assert refused.value.action is Action.REVIEW
            with pytest.raises(NotAllowed):
                await return_report(
                    uow, await actor(uow, who), first.id, "Sai số hộ", now=now, forms=app.forms
                )
        other = await uow.units.get(tree.other_commune.id)
        assert other is not None
        with pytest.raises(NotAllowed):  # nor list another commune's reports
            await reports_to_review(
                uow,
                await actor(uow, "commune-officer"),
                [app.forms["village_report"]],
                Period.parse(YEAR),
                other,
            )
        assert await uow.audit.actions("review.approved") == []
    async with app.uow() as uow:  # the commune's officer may; so may province staff (above it)
        officer = await actor(uow, "commune-officer")
        done = await approve(uow, officer, first.id, now=now)
        await uow.commit()
    assert done.review.decision == "approved" and await state(world, tree.village) == "approved"
    async with app.uow() as uow:
        [row] = await uow.audit.actions("review.approved")
        assert (row.contact_id, row.unit_id, row.detail["version"]) == (
            officer.contact_id,
            tree.village.id,
            1,
        )
        staff = await actor(uow, "province-staff")
        await return_report(uow, staff, first.id, "Đề nghị kiểm tra lại", now=now, forms=app.forms)
        await uow.commit()
    assert await state(world, tree.village) == "returned"


async def test_a_commune_officer_does_not_review_the_communes_own_report(world: World) -> None:
    """The reviewer of a unit is an officer of its parent: a commune officer reviews the villages
    of the commune, not the commune; province staff review the commune."""
    from bot.services.reviews import may_review

    async with world.app.uow() as uow:
        commune = await uow.units.get(world.tree.commune.id)
        village = await uow.units.get(world.tree.village.id)
        assert commune is not None and village is not None
        assert await may_review(uow, await actor(uow, "commune-officer"), village)
        assert not await may_review(uow, await actor(uow, "commune-officer"), commune)
        assert await may_review(uow, await actor(uow, "province-staff"), commune)
        assert not await may_review(uow, await actor(uow, "other-commune-officer"), village)


async def test_a_correction_waits_again_and_an_older_version_cannot_be_approved(world: World) -> None:
    app, tree = world.app, world.tree
    first = (await file(world, "village-officer", tree.village)).submission
    now = app.clock.now()
    async with app.uow() as uow:
        await return_report(
            uow, await actor(uow, "commune-officer"), first.id, "  Số hộ   sai  ", now=now, forms=app.forms
        )
        await uow.commit()
    second = (await file(world, "village-officer", tree.village, households_total=130)).submission
    assert second.version == 2 and await state(world, tree.village) == "waiting"
    async with app.uow() as uow:
        officer = await actor(uow, "commune-officer")
        with pytest.raises(ReviewError, match="superseded"):
            await approve(uow, officer, first.id, now=now)
        with pytest.raises(ReviewError, match="reason"):
            await return_report(uow, officer, second.id, " x ", now=now, forms=app.forms)
        [row] = await uow.audit.actions("review.returned")
        assert row.detail["reason"] == "Số hộ sai"  # spaces tidied
        listed = await reports_to_review(
            uow,
            officer,
            [app.forms["village_report"]],
            Period.parse(YEAR),
            await uow.units.get(tree.commune.id),
        )  # type: ignore[arg-type]
        assert [(i.unit.id, i.submission.version, i.state) for i in listed] == [
            (tree.village.id, 2, "waiting")
        ]


async def test_the_same_decision_is_not_taken_twice(world: World) -> None:
    """Two reviewers on the same page, or a double click: the second approval finds it approved.
    Returning it stays possible (province staff may return what their commune approved)."""
    app, tree = world.app, world.tree
    filed = (await file(world, "village-officer", tree.village)).submission
    now = app.clock.now()
    async with app.uow() as uow:
        await approve(uow, await actor(uow, "commune-officer"), filed.id, now=now)
        await uow.commit()
    async with app.uow() as uow:
        with pytest.raises(ReviewError, match="reviewed"):
            await approve(uow, await actor(uow, "province-staff"), filed.id, now=now)
        assert len(await uow.audit.actions("review.approved")) == 1
        officer = await actor(uow, "commune-officer")
        await return_report(uow, officer, filed.id, "Số hộ sai", now=now, forms=app.forms)
        with pytest.raises(ReviewError, match="reviewed"):
            await return_report(uow, officer, filed.id, "Số hộ sai", now=now, forms=app.forms)
        assert len(await uow.audit.actions("review.returned")) == 1
        await uow.commit()
    assert await state(world, tree.village) == "returned"


async def test_a_return_notifies_the_village_officers_with_a_button_to_the_correction(world: World) -> None:
    app, tree = world.app, world.tree
    await make_contact(app, "second-village-officer", VILLAGE_OFFICER, tree.village, "en")
    await add_identity(app, "village-officer", "zalo", "z-vo")
    first = (await file(world, "village-officer", tree.village)).submission
    async with app.uow() as uow:
        done = await return_report(
            uow,
            await actor(uow, "commune-officer"),
            first.id,
            "Quỹ không khớp",
            now=app.clock.now(),
            forms=app.forms,
        )
        await uow.commit()
    assert done.notified == 2
    (vi,) = await outbox_to(app, "village-officer")
    assert (
        "bị trả lại để sửa" in vi["text"]
        and "Lý do: Quỹ không khớp" in vi["text"]
        and "năm 2026" in vi["text"]
    )
    assert vi["options"] == [{"id": f"cmd:baocao {tree.village.id} 2026", "label": "Sửa báo cáo"}]
    assert len(await outbox_to(app, "z-vo", "zalo")) == 1  # every channel the officer uses
    (en,) = await outbox_to(app, "second-village-officer")
    assert "returned for correction" in en["text"] and en["options"][0]["label"] == "Correct the report"
    assert await outbox_to(app, "group-officer") == [] and await outbox_to(app, "commune-officer") == []


async def test_the_period_locks_for_village_officers_after_the_grace_days(world: World) -> None:
    app, tree, clock = world.app, world.tree, world.clock
    await file(world, "village-officer", tree.village)
    clock.set(vn(2026, 12, 10, 23, 59))  # the last day of the grace: still open
    await file(world, "village-officer", tree.village, households_total=121)
    clock.set(vn(2026, 12, 11, 0, 0))
    with pytest.raises(PeriodLocked) as locked:
        await file(world, "village-officer", tree.village, households_total=122)
    assert locked.value.since == vn(2026, 12, 11, 0, 0)
    with pytest.raises(PeriodLocked):  # a village that never reported is locked too
        await file(world, "group-officer", tree.group)
    # Other periods are not locked, nor is the commune officer who reviews the village.
    await file(world, "village-officer", tree.village, "2027-H1")
    await file(world, "commune-officer", tree.village, households_total=123)
    async with app.uow() as uow:
        assert await uow.submissions.count() == 4


async def test_a_return_or_a_reopening_opens_one_unit_until_its_next_version(world: World) -> None:
    app, tree, clock = world.app, world.tree, world.clock
    first = (await file(world, "village-officer", tree.village)).submission
    clock.set(vn(2026, 12, 12, 9))
    now = clock.now()
    async with app.uow() as uow:
        officer = await actor(uow, "commune-officer")
        await return_report(uow, officer, first.id, "Sai số hộ", now=now, forms=app.forms)
        await uow.commit()
    await file(world, "village-officer", tree.village, households_total=125)  # the correction
    with pytest.raises(PeriodLocked):  # and no more
        await file(world, "village-officer", tree.village, households_total=126)
    form = app.forms["village_report"]
    async with app.uow() as uow:
        officer = await actor(uow, "commune-officer")
        other = await actor(uow, "other-commune-officer")
        with pytest.raises(NotAllowed):
            await reopen(
                uow, other, form, tree.group.id, Period.parse(YEAR), now=now, content_dir=app.content_dir
            )
        await reopen(
            uow, officer, form, tree.group.id, Period.parse(YEAR), now=now, content_dir=app.content_dir
        )
        with pytest.raises(ReviewError, match="already_open"):
            await reopen(
                uow, officer, form, tree.group.id, Period.parse(YEAR), now=now, content_dir=app.content_dir
            )
        with pytest.raises(ReviewError, match="not_locked"):
            await reopen(
                uow,
                officer,
                form,
                tree.group.id,
                Period.parse("2027-H1"),
                now=now,
                content_dir=app.content_dir,
            )
        await uow.commit()
    await file(world, "group-officer", tree.group)  # reopened: the group files late
    with pytest.raises(PeriodLocked):
        await file(world, "group-officer", tree.group, households_total=95)
    async with app.uow() as uow:
        group = await uow.units.get(tree.group.id)
        assert group is not None
        who = await actor(uow, "group-officer")
        schedules = load_schedules(app.content_dir)
        assert await lock_for(uow, who, form, group, Period.parse(YEAR), now=now, schedules=schedules) == vn(
            2026, 12, 11, 0
        )
        [row] = await uow.audit.actions("review.reopened")
        assert (row.contact_id, row.unit_id) == (officer.contact_id, tree.group.id)


async def test_compiled_reports_count_approved_waiting_and_returned(world: World) -> None:
    app, tree = world.app, world.tree
    village = (await file(world, "village-officer", tree.village)).submission
    group = (await file(world, "group-officer", tree.group)).submission
    other = (await file(world, "other-commune-officer", tree.other_village)).submission
    now = app.clock.now()
    async with app.uow() as uow:
        await approve(uow, await actor(uow, "commune-officer"), village.id, now=now)
        await return_report(
            uow, await actor(uow, "commune-officer"), group.id, "Thiếu số liệu", now=now, forms=app.forms
        )
        await uow.commit()
    period = Period.parse(YEAR)
    async with app.read_only() as reads:
        commune = await compile_unit(
            reads, tree.commune, period, content_dir=app.content_dir, forms=app.forms, now=now
        )
        province = await compile_unit(
            reads, tree.province, period, content_dir=app.content_dir, forms=app.forms, now=now
        )
    assert (
        commune.total.reported,
        commune.total.approved,
        commune.total.waiting,
        commune.total.returned,
    ) == (2, 1, 0, 1)
    by_unit = {r.unit.id: r.figures for r in province.rows}
    assert (by_unit[tree.commune.id].approved, by_unit[tree.commune.id].returned) == (1, 1)
    assert (by_unit[tree.other_commune.id].waiting, by_unit[tree.other_commune.id].approved) == (1, 0)
    text = summary_text(commune, translator("en"), files_attached=False)
    assert "Review: 1 approved, 0 waiting, 1 returned. Figures not yet approved: Tổ dân phố 1." in text
    text = summary_text(province, translator("vi"), files_attached=False)
    assert "Duyệt báo cáo: 1 đã duyệt, 1 chờ duyệt, 1 đã trả lại." in text
    assert "Phường Thục Phán (đã duyệt 1/2)" in text and "Xã Trường Hà (đã duyệt 0/1)" in text
    async with app.uow() as uow:
        staff = await actor(uow, "province-staff")
        province_unit = await uow.units.get(tree.province.id)
        assert province_unit is not None
        progress = await approval_progress(uow, staff, app.forms["village_report"], period, province_unit)
        assert {(p.unit.id, p.expected, p.approved, p.waiting, p.returned) for p in progress} == {
            (tree.commune.id, 2, 1, 0, 1),
            (tree.other_commune.id, 1, 0, 1, 0),
        }
    assert other.version == 1


async def test_digest_and_escalation_point_reviewers_at_waiting_reports(world: World) -> None:
    app, tree, clock = world.app, world.tree, world.clock
    village = (await file(world, "village-officer", tree.village)).submission
    await file(world, "group-officer", tree.group)
    async with app.uow() as uow:
        await approve(uow, await actor(uow, "commune-officer"), village.id, now=app.clock.now())
        await uow.commit()
    clock.set(vn(2026, 11, 30, 7))  # a Monday: last week's digest
    assert await send_weekly_digest(app) >= 1
    (digest,) = [p["text"] for p in await outbox_to(app, "commune-officer")]
    assert "Đang chờ anh/chị duyệt: 1 báo cáo — Tổ dân phố 1. Gửi /duyet" in digest
    assert "Thôn Nà Rụa. Gửi" not in digest
    clock.set(vn(2026, 12, 1, 8))  # the day after the year's deadline: escalations
    await send_reminders(app)
    texts = [p["text"] for p in await outbox_to(app, "commune-officer")]
    review = [x for x in texts if "đang chờ anh/chị duyệt" in x]
    assert len(review) == 1 and "Tổ dân phố 1" in review[0] and "Thôn Nà Rụa" not in review[0]
    assert "/duyet" in review[0]
    assert all("chờ anh/chị duyệt" not in p["text"] for p in await outbox_to(app, "other-commune-officer"))
    await send_reminders(app)  # a re-run sends nothing twice
    assert len(await outbox_to(app, "commune-officer")) == len(texts)


async def test_the_demo_seeds_one_approved_and_one_returned_report(world: World) -> None:
    app, tree = world.app, world.tree
    period = Period.parse(YEAR)
    for _ in range(2):  # idempotent
        async with app.uow() as uow:
            units = [
                u for u in [await uow.units.get(tree.village.id), await uow.units.get(tree.group.id)] if u
            ]
            await seed_demo_reviews(uow, app.forms["village_report"], units, period, app.clock.now())
            await uow.commit()
    assert await state(world, tree.village) == "approved"
    assert await state(world, tree.group) == "returned"
    async with app.uow() as uow:
        assert await uow.submissions.count() == 2
        [returned] = await uow.audit.actions("review.returned")
        assert returned.detail["by"] == "console" and returned.detail["reason"]


def test_reports_of_the_plan_are_reviewed_but_answers_to_ad_hoc_requests_are_not(world: World) -> None:
    """/duyet, the digest and the escalations cover the village and commune reports; a form kept
    for ad hoc requests (pupils in hardship) goes straight to the staff who asked for it."""
    from bot.reports.review_queue import reviewed_forms

    assert sorted(f.key for f in reviewed_forms(world.app.forms)) == ["commune_report", "village_report"]
