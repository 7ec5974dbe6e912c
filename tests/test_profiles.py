"""The unit's document profile (/hoso, issue 10 item 1): who may set it, what is kept, the audit
row, and the compiled report reading it back — through both units of work, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.permissions import NotAllowed, load_grants
from bot.reports.document import Profile
from bot.reports.profile import unit_profile
from bot.services.actor import Actor
from bot.services.profiles import BadProfileValue, set_profile
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER
from storage.uow import UnitOfWork
from tests.support import Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import vn


@pytest.fixture
async def world(db: Database) -> AsyncIterator[tuple[App, Tree]]:
    app = make_app(db.url, FixedClock(vn(2026, 12, 2, 9)))
    tree = await seed_tree(app)
    await make_contact(app, "village-officer", VILLAGE_OFFICER, tree.village)
    await make_contact(app, "commune-officer", COMMUNE_OFFICER, tree.commune)
    await make_contact(app, "other-commune-officer", COMMUNE_OFFICER, tree.other_commune)
    await make_contact(app, "province-staff", PROVINCE_STAFF, tree.province)
    try:
        yield app, tree
    finally:
        await app.db.dispose()


async def actor(uow: UnitOfWork, external_id: str) -> Actor:
    contact = await uow.contacts.by_identity("test", external_id)
    assert contact is not None
    return Actor.of(contact, await load_grants(uow, contact.id))


async def test_officers_outside_the_unit_are_refused_and_the_act_is_audited(world: tuple[App, Tree]) -> None:
    app, tree = world
    now = app.clock.now()
    async with app.uow() as uow:
        for who in ("village-officer", "other-commune-officer"):
            with pytest.raises(NotAllowed):
                await set_profile(
                    uow,
                    await actor(uow, who),
                    tree.commune,
                    signer_name="X",
                    signer_title="",
                    number_symbol="",
                    now=now,
                )
        officer = await actor(uow, "commune-officer")
        await set_profile(
            uow,
            officer,
            tree.commune,
            signer_name="  Nông\u00a0Văn   Hải\u200b ",
            signer_title="Phó Chủ tịch",
            number_symbol="bc-hkhp",
            now=now,
        )
        await uow.commit()
    async with app.uow() as uow:
        rows = await uow.audit.actions("profile.set")
        assert [(r.contact_id, r.unit_id) for r in rows] == [(officer.contact_id, tree.commune.id)]
        assert rows[0].detail == {
            "signer_name": "Nông Văn Hải",
            "signer_title": "PHÓ CHỦ TỊCH",
            "number_symbol": "BC-HKHP",
        }
        saved = await uow.profiles.get(tree.commune.id)
        assert saved is not None and saved.updated_by_contact_id == officer.contact_id
        assert saved.updated_at == now
    async with app.read_only() as reads:
        assert await unit_profile(reads, tree.commune.id) == Profile(
            "Nông Văn Hải", "PHÓ CHỦ TỊCH", "BC-HKHP"
        )
        assert await unit_profile(reads, tree.other_commune.id) == Profile()  # the defaults
        assert await unit_profile(reads, None) == Profile()  # the national report


async def test_province_staff_set_a_communes_profile_and_a_second_save_replaces_it(
    world: tuple[App, Tree],
) -> None:
    app, tree = world
    now = app.clock.now()
    for name in ("Hoàng Thị Lan", "Lục Văn Minh"):
        async with app.uow() as uow:
            await set_profile(
                uow,
                await actor(uow, "province-staff"),
                tree.commune,
                signer_name=name,
                signer_title="",
                number_symbol="",
                now=now,
            )
            await uow.commit()
    async with app.read_only() as reads:
        assert await unit_profile(reads, tree.commune.id) == Profile("Lục Văn Minh", "", "BC-HKH")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signer_name", "A" * 81),
        ("signer_title", "B" * 61),
        ("number_symbol", "BC/HKH"),
        ("number_symbol", "-BC"),
        ("number_symbol", "BC-" + "H" * 20),
    ],
)
async def test_bad_values_are_refused_and_nothing_is_written(
    world: tuple[App, Tree], field: str, value: str
) -> None:
    app, tree = world
    given = {"signer_name": "", "signer_title": "", "number_symbol": "", field: value}
    async with app.uow() as uow:
        with pytest.raises(BadProfileValue) as refused:
            await set_profile(
                uow, await actor(uow, "commune-officer"), tree.commune, now=app.clock.now(), **given
            )
        assert refused.value.field == field
        assert await uow.profiles.get(tree.commune.id) is None
        assert await uow.audit.actions("profile.set") == []
