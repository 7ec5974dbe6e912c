"""The services authorise by themselves, whatever a dialogue offered (DESIGN.md boundaries 7, 9).

The dialogues' tests show that an officer is never offered another area's units; these call the
services directly, as a forged button or a future entry point would: an officer of commune A
cannot add or rename a village, invite, submit, compile, broadcast or send a request in commune B; a member
cannot take a staff action; every write leaves an audit row naming who did it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.periods import Period
from bot.domain.permissions import Action, NotAllowed, load_grants
from bot.services.actor import CONSOLE, Actor
from bot.services.broadcasts import Audience, Message, cancel_broadcast, count_recipients, queue_broadcast
from bot.services.invites import RedeemOutcome, create_invite
from bot.services.linking import issue_link_code, link_chat
from bot.services.registration import NotAPlaceToJoin, accept_invite, record_consent, register_member
from bot.services.reports import compile_report
from bot.services.requests import RequestDraft, send_request
from bot.services.reviews import approve
from bot.services.submissions import Draft, submit_report
from bot.services.units import add_village, rename_village
from storage.db import Database
from storage.models import ADMIN, COMMUNE_OFFICER, MEMBER, PROVINCE_STAFF, VILLAGE, VILLAGE_OFFICER, Unit
from storage.uow import UnitOfWork
from tests.support import Tree, make_app, make_contact, seed_tree

H1 = "2026-H1"


@dataclass
class World:
    app: App
    tree: Tree


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    # 12/06/2026: the half-year reports of the tests are open (they lock 10 days after 15/06).
    app = make_app(db.url, FixedClock(datetime(2026, 6, 12, 9, tzinfo=VN_TZ)))
    try:
        tree = await seed_tree(app)
        await make_contact(app, "officer_a", COMMUNE_OFFICER, tree.commune)
        await make_contact(app, "officer_b", COMMUNE_OFFICER, tree.other_commune)
        await make_contact(app, "village_officer", VILLAGE_OFFICER, tree.village)
        await make_contact(app, "member", MEMBER, tree.village)
        yield World(app, tree)
    finally:
        await app.db.dispose()


async def actor(uow: UnitOfWork, external_id: str) -> Actor:
    contact = await uow.contacts.by_identity("test", external_id)
    assert contact is not None
    return Actor.of(contact, await load_grants(uow, contact.id))


async def unit(uow: UnitOfWork, u: Unit) -> Unit:
    """The unit loaded in this unit of work (the tree's objects belong to a closed one)."""
    found = await uow.units.get(u.id)
    assert found is not None
    return found


def draft(app: App, village: Unit, **values: Any) -> Draft:
    form = app.forms["village_report"]
    return Draft(form, f"{village.id}:{H1}", village.id, H1, {"households_total": 120, **values})


# One attempt at each use case, on a unit given by the test: (name, action, the call).
Attempt = Callable[[World, UnitOfWork, Actor, Unit], Awaitable[object]]


async def _add_village(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    commune = await uow.units.get(village.parent_id or 0)
    assert commune is not None
    return await add_village(uow, who, commune, "Thôn Mới", VILLAGE, w.app.clock.now())


async def _rename_village(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    return await rename_village(uow, who, await unit(uow, village), "Thôn Đổi Tên", w.app.clock.now())


async def _create_invite(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    return await create_invite(uow, who, await unit(uow, village), VILLAGE_OFFICER, w.app.clock.now(), 7)


async def _submit(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    return await submit_report(
        uow, who, draft(w.app, village), now=w.app.clock.now(), channel="test", content_dir=w.app.content_dir
    )


async def _compile(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    return await compile_report(
        uow,
        who,
        village.parent_id or 0,  # the village's commune
        Period.parse(H1),
        content_dir=w.app.content_dir,
        forms=w.app.forms,
        now=w.app.clock.now(),
    )


async def _broadcast(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    return await queue_broadcast(
        uow, who, Audience((village.id,)), Message(text="Họp chi hội"), now=w.app.clock.now()
    )


async def _approve(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    """Approve the village's report (filed here by the console)."""
    now, content = w.app.clock.now(), w.app.content_dir
    report = draft(w.app, village)
    filed = await submit_report(uow, CONSOLE, report, now=now, channel="test", content_dir=content)
    return await approve(uow, who, filed.submission.id, now=now)


async def _request(w: World, uow: UnitOfWork, who: Actor, village: Unit) -> object:
    today = w.app.clock.now().date()
    draft = RequestDraft(village.id, VILLAGE_OFFICER, today, title="Học sinh nghỉ học", questions=("Số em",))
    return await send_request(uow, who, draft, forms=w.app.forms, today=today, now=w.app.clock.now())


ATTEMPTS: dict[str, tuple[Action, Attempt]] = {
    "add_village": (Action.MANAGE_VILLAGES, _add_village),
    "rename_village": (Action.MANAGE_VILLAGES, _rename_village),
    "create_invite": (Action.CREATE_INVITE, _create_invite),
    "submit_report": (Action.REPORT, _submit),
    "compile_report": (Action.COMPILE_REPORT, _compile),
    "queue_broadcast": (Action.BROADCAST, _broadcast),
    "approve": (Action.REVIEW, _approve),
    "send_request": (Action.REQUEST, _request),
}
# What each write leaves in the audit log (compiling a report writes nothing).
AUDITED = {
    "add_village": "village.add",
    "rename_village": "village.rename",
    "create_invite": "invite.create",
    "submit_report": "submission.create",
    "queue_broadcast": "broadcast.create",
    "approve": "review.approved",
    "send_request": "request.create",
}


@pytest.mark.parametrize("use_case", list(ATTEMPTS))
async def test_an_officer_of_commune_a_cannot_act_in_commune_b(world: World, use_case: str) -> None:
    action, attempt = ATTEMPTS[use_case]
    async with world.app.uow() as uow:
        officer_a = await actor(uow, "officer_a")
        with pytest.raises(NotAllowed) as refused:
            await attempt(world, uow, officer_a, world.tree.other_village)
        assert refused.value.action is action
        assert [e.action for e in await uow.audit.actions() if e.contact_id is not None] == []
    async with world.app.uow() as uow:  # the officer of commune B may
        await attempt(world, uow, await actor(uow, "officer_b"), world.tree.other_village)


@pytest.mark.parametrize("use_case", [u for u in ATTEMPTS if u != "submit_report"])
@pytest.mark.parametrize("who", ["member", "village_officer"])
async def test_members_and_village_officers_take_no_staff_action(
    world: World, use_case: str, who: str
) -> None:
    action, attempt = ATTEMPTS[use_case]
    async with world.app.uow() as uow:
        with pytest.raises(NotAllowed) as refused:
            await attempt(world, uow, await actor(uow, who), world.tree.village)  # their own village
        assert refused.value.action is action


@pytest.mark.parametrize("role", [COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN])
async def test_an_officer_invites_only_to_roles_below_their_own(world: World, role: str) -> None:
    """A commune officer's invite cannot make anyone a commune officer, province staff or admin,
    not even on a village of their own commune; it can make a village officer there."""
    async with world.app.uow() as uow:
        officer_a = await actor(uow, "officer_a")
        village = await unit(uow, world.tree.village)
        with pytest.raises(NotAllowed) as refused:
            await create_invite(uow, officer_a, village, role, world.app.clock.now(), 7)
        assert refused.value.action is Action.CREATE_INVITE and role in str(refused.value)
        made = await create_invite(uow, officer_a, village, VILLAGE_OFFICER, world.app.clock.now(), 7)
        assert made.role == VILLAGE_OFFICER


async def test_province_staff_invite_commune_officers_in_their_province(world: World) -> None:
    await make_contact(world.app, "province", PROVINCE_STAFF, world.tree.province)
    async with world.app.uow() as uow:
        staff = await actor(uow, "province")
        commune = await unit(uow, world.tree.commune)
        made = await create_invite(uow, staff, commune, COMMUNE_OFFICER, world.app.clock.now(), 7)
        assert made.role == COMMUNE_OFFICER
        with pytest.raises(NotAllowed):
            await create_invite(uow, staff, commune, PROVINCE_STAFF, world.app.clock.now(), 7)


async def test_a_member_cannot_submit_a_report(world: World) -> None:
    async with world.app.uow() as uow:
        with pytest.raises(NotAllowed):
            await _submit(world, uow, await actor(uow, "member"), world.tree.village)
        assert await uow.submissions.count() == 0


@pytest.mark.parametrize("use_case", list(AUDITED))
async def test_every_write_leaves_an_audit_row_naming_the_actor(world: World, use_case: str) -> None:
    _, attempt = ATTEMPTS[use_case]
    async with world.app.uow() as uow:
        officer_a = await actor(uow, "officer_a")
        await attempt(world, uow, officer_a, world.tree.village)
        await uow.commit()
    async with world.app.uow() as uow:
        rows = await uow.audit.actions(AUDITED[use_case])
        by_people = [(r.contact_id, r.detail.get("by")) for r in rows if r.detail.get("by") != "console"]
        assert by_people == [(officer_a.contact_id, None)]  # the seed's villages: added by the console


async def test_a_correction_is_a_new_version_and_each_is_audited(world: World) -> None:
    app, village = world.app, world.tree.village
    async with app.uow() as uow:
        first = await _submit(world, uow, await actor(uow, "village_officer"), village)
        await uow.commit()
    async with app.uow() as uow:
        corrected = await submit_report(
            uow,
            await actor(uow, "officer_a"),  # the commune officer corrects the village's report
            draft(app, village, households_total=125),
            now=app.clock.now(),
            channel="test",
            content_dir=app.content_dir,
        )
        await uow.commit()
    assert corrected.previous is not None and corrected.previous.values["households_total"] == 120
    assert corrected.submission.version == 2 and corrected.unit.id == village.id
    async with app.uow() as uow:
        history = await uow.submissions.history("village_report", f"{village.id}:{H1}")
        assert [(s.version, s.values["households_total"]) for s in history] == [(1, 120), (2, 125)]
        rows = await uow.audit.actions("submission.create")
        officers = [await actor(uow, ext) for ext in ("village_officer", "officer_a")]
        assert [(r.contact_id, r.detail["version"]) for r in rows] == [
            (officers[0].contact_id, 1),
            (officers[1].contact_id, 2),
        ]
    assert first is not None


async def test_a_report_for_a_unit_that_does_not_file_the_form_is_refused(world: World) -> None:
    app = world.app
    async with app.uow() as uow:
        commune = await unit(uow, world.tree.commune)
        officer_a = await actor(uow, "officer_a")
        with pytest.raises(NotAllowed):  # a commune files no village report, even its own officer
            await submit_report(
                uow,
                officer_a,
                draft(app, commune),
                now=app.clock.now(),
                channel="test",
                content_dir=app.content_dir,
            )


async def test_broadcast_counts_and_cancels_check_the_actor(world: World) -> None:
    app, tree = world.app, world.tree
    async with app.uow() as uow:
        b = await _broadcast(world, uow, await actor(uow, "officer_a"), tree.village)
        await uow.commit()
    assert b is not None
    async with app.uow() as uow:
        officer_b = await actor(uow, "officer_b")
        with pytest.raises(NotAllowed):
            await count_recipients(uow, officer_b, Audience((tree.village.id,)))
        with pytest.raises(NotAllowed):
            await cancel_broadcast(uow, officer_b, 1, app.clock.now())
    async with app.uow() as uow:
        officer_a = await actor(uow, "officer_a")
        await cancel_broadcast(uow, officer_a, 1, app.clock.now())
        await uow.commit()
    async with app.uow() as uow:
        [row] = await uow.audit.actions("broadcast.cancel")
        assert row.contact_id == officer_a.contact_id


async def test_linking_is_open_to_everyone(world: World) -> None:
    """A member, and a person with no role at all, may link their chats."""
    app = world.app
    await make_contact(app, "newcomer", None, None)
    async with app.uow() as uow:
        member = await actor(uow, "member")
        assert member.grants and member.holds(Action.LINK)
        issued = await issue_link_code(uow, member, "test", app.clock.now(), 10)
        await uow.commit()
    async with app.uow() as uow:
        newcomer = await actor(uow, "newcomer")
        assert newcomer.grants == () and newcomer.holds(Action.LINK)
        assert member.contact_id is not None
        target = await link_chat(
            uow, newcomer, issued.code, ("test", "newcomer"), app.clock.now(), account_id=member.contact_id
        )
        await uow.commit()
    assert target.id == member.contact_id
    async with app.uow() as uow:
        [code_row] = await uow.audit.actions("link.code_issued")
        [link_row] = await uow.audit.actions("contact.link")
        assert code_row.contact_id == member.contact_id
        assert (link_row.contact_id, link_row.detail["from_contact_id"]) == (
            member.contact_id,
            newcomer.contact_id,
        )


async def test_the_console_acts_everywhere_and_is_audited_as_such(world: World) -> None:
    app = world.app
    async with app.uow() as uow:
        village = await unit(uow, world.tree.other_village)
        invite = await create_invite(uow, CONSOLE, village, COMMUNE_OFFICER, app.clock.now(), 7)
        await uow.commit()
    assert invite.created_by_contact_id is None
    async with app.uow() as uow:
        [row] = await uow.audit.actions("invite.create")
        assert (row.contact_id, row.detail["by"]) == (None, "console")
        with pytest.raises(NotAllowed):  # a broadcast goes out in the name of a person
            await _broadcast(world, uow, CONSOLE, world.tree.village)


async def test_registration_is_audited_and_members_join_a_commune_or_a_village(world: World) -> None:
    now = world.app.clock.now()
    async with world.app.uow() as uow:
        person = await uow.contacts.create("test", "newcomer", now)
        await record_consent(uow, person, now)
        with pytest.raises(NotAPlaceToJoin):  # a province is no place to be a member of
            await register_member(uow, person, await unit(uow, world.tree.province), now)
        village = await unit(uow, world.tree.village)
        await register_member(uow, person, village, now)
        assert person.consent_at == now and person.home_unit_id == village.id
        assert [(g.role, g.unit_id) for g in await uow.contacts.roles(person.id)] == [(MEMBER, village.id)]
        audited = [(e.action, e.contact_id, e.unit_id) for e in await uow.audit.actions()]
        assert ("contact.consent", person.id, None) in audited
        assert ("contact.register_member", person.id, village.id) in audited


async def test_an_accepted_invite_makes_its_unit_the_officers_home(world: World) -> None:
    now = world.app.clock.now()
    async with world.app.uow() as uow:
        village = await unit(uow, world.tree.village)
        invite = await create_invite(uow, CONSOLE, village, VILLAGE_OFFICER, now, 7)
        person = await uow.contacts.create("test", "new-officer", now)
        result = await accept_invite(uow, person, invite.code, now)
        outcome, used = result.outcome, result.invite
        assert outcome is RedeemOutcome.OK and used is not None and person.home_unit_id == village.id
        again = (
            await accept_invite(uow, await uow.contacts.create("test", "late", now), invite.code, now)
        ).outcome
        assert again is RedeemOutcome.USED_UP
