"""Reminders reach only the officers of units that have not reported, never twice; escalation
after the due date goes to the officers above. Fixed clock, both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import pytest

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.messaging.reminders import send_reminders
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER
from tests.support import Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import (
    add_identity,
    outbox,
    outbox_to,
    submit,
    submit_activity,
    submit_commune_report,
    vn,
)


@dataclass
class World:
    app: App
    clock: FixedClock
    tree: Tree


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    clock = FixedClock(vn(2026, 6, 12, 8))  # three days before the half-year deadline (15/06)
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


async def texts(app: App) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in await outbox(app):
        out.setdefault(m.external_id, []).append(m.payload["text"])
    return out


async def test_reminders_reach_only_the_officers_of_units_that_have_not_reported(world: World) -> None:
    app, tree = world.app, world.tree
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10))
    await submit_commune_report(app, tree.other_commune, "2026-H1", vn(2026, 6, 11))
    queued = await send_reminders(app)
    sent = await texts(app)
    # The villages' officers for the village report, the commune officer whose commune has not
    # filed its own report (content/schedules.yaml, commune_report.half_year) for that one.
    assert set(sent) == {"group-officer", "other-village-officer", "commune-officer"}
    assert queued == 3
    (text,) = sent["group-officer"]
    assert "Tổ dân phố 1" in text and "15/06/2026" in text and "còn 3 ngày" in text and "/baocao" in text
    assert "Thôn Nà Rụa" not in text
    (own,) = sent["commune-officer"]
    assert "Báo cáo sơ kết 6 tháng của xã" in own and "Phường Thục Phán" in own and "/baocaoxa" in own
    # The same day again (a re-run, another instance): nothing new.
    assert await send_reminders(app) == 0
    assert len(await outbox(app)) == 3


async def test_on_the_due_day_only_those_still_missing(world: World) -> None:
    app, tree = world.app, world.tree
    await send_reminders(app)  # 12/06: three are missing
    await submit(app, tree.group, "2026-H1", vn(2026, 6, 14))
    world.clock.set(vn(2026, 6, 15, 8))
    before = len(await outbox(app))
    await send_reminders(app)
    new = (await outbox(app))[before:]
    village = [m for m in new if "/baocaoxa" not in m.payload["text"]]
    assert {m.external_id for m in village} == {"village-officer", "other-village-officer"}
    # Both communes' own reports are still missing: their officers are reminded of them.
    assert {m.external_id for m in new} - {m.external_id for m in village} == {
        "commune-officer",
        "other-commune-officer",
    }
    assert all("Hôm nay (15/06/2026) là hạn gửi" in m.payload["text"] for m in new)
    world.clock.set(vn(2026, 6, 13, 8))  # a day without reminders
    before = len(await outbox(app))
    assert await send_reminders(app) == 0
    assert len(await outbox(app)) == before


async def test_escalation_after_the_deadline(world: World) -> None:
    app, tree = world.app, world.tree
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10))
    world.clock.set(vn(2026, 6, 16, 8))  # the day after the deadline
    await send_reminders(app)
    sent = await texts(app)
    # Village officers are not escalated to; the commune and province officers above are.
    assert set(sent) == {"commune-officer", "other-commune-officer", "province-staff"}
    assert "Tổ dân phố 1" in sent["commune-officer"][0] and "Thôn Nà Rụa" not in sent["commune-officer"][0]
    assert "Xóm Pác Bó" in sent["other-commune-officer"][0]
    province = sent["province-staff"][0]
    assert "Phường Thục Phán: 1/2 chưa báo cáo" in province
    assert "Xã Trường Hà: 1/1 chưa báo cáo" in province
    assert await send_reminders(app) == 0  # never twice


async def test_a_commune_where_everyone_reported_is_not_escalated(world: World) -> None:
    app, tree = world.app, world.tree
    await submit(app, tree.village, "2026-H1", vn(2026, 6, 10))
    await submit(app, tree.group, "2026-H1", vn(2026, 6, 11))
    world.clock.set(vn(2026, 6, 16, 8))
    await send_reminders(app)
    sent = await texts(app)
    assert set(sent) == {"commune-officer", "other-commune-officer", "province-staff"}
    assert "Phường Thục Phán" not in sent["province-staff"][0]
    # Nothing is missing in Phường Thục Phán: its officer only hears that the reports wait for
    # their review (bot/services/reviews.py).
    (review,) = sent["commune-officer"]
    assert "đang chờ anh/chị duyệt: Thôn Nà Rụa, Tổ dân phố 1" in review and "quá hạn" not in review


async def test_lifelong_learning_week_escalates_communes_without_week_activities(world: World) -> None:
    app, tree = world.app, world.tree
    await submit_activity(app, tree.village, date(2026, 10, 2), llw=True)  # counts for Phường Thục Phán
    await submit_activity(app, tree.other_village, date(2026, 9, 20), llw=False)  # before the Week
    world.clock.set(
        vn(2026, 10, 9, 8)
    )  # the campaign (bot/messaging/outreach.py) reminds before the due date
    assert await send_reminders(app) == 0
    world.clock.set(vn(2026, 10, 13, 8))  # the day after 12/10
    await send_reminders(app)
    sent = await texts(app)
    assert set(sent) == {"province-staff"}
    (text,) = sent["province-staff"]
    assert "Tuần lễ" in text and "Xã Trường Hà" in text and "Phường Thục Phán" not in text
    assert "/hoatdong" in text


async def test_every_channel_of_an_officer_gets_it(world: World) -> None:
    app = world.app
    await add_identity(app, "group-officer", "zalo", "zalo-42")
    await send_reminders(app)
    assert len(await outbox_to(app, "group-officer")) == 1
    assert len(await outbox_to(app, "zalo-42", channel="zalo")) == 1
