"""Onboarding at scale (bot/services/onboarding.py, revoke_invite): the services on both backends.

An upload is all or nothing with its problems by line; codes go only to villages without an
officer, and a second request keeps the codes already out; a revoked code is refused at /start
like an unknown one. Officers act only in their own area.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.i18n import translator
from bot.domain.invite_codes import telegram_start_link
from bot.domain.parsing import fold
from bot.domain.permissions import NotAllowed, load_grants
from bot.services.actor import CONSOLE, Actor
from bot.services.invites import RedeemOutcome, create_invite, redeem_invite, revoke_invite
from bot.services.onboarding import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_LINES,
    UploadResult,
    VillageCode,
    codes_for_area,
    open_codes,
    slips_of,
    upload_villages,
)
from storage.db import Database
from storage.models import COMMUNE_OFFICER, MEMBER, PROVINCE_STAFF, VILLAGE, VILLAGE_OFFICER, Invite, Unit
from storage.uow import UnitOfWork
from tests.fakes.harness import TELEGRAM_TOKEN, fake_api_served, running_bot
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegram
from tests.support import Chat, Tree, make_app, make_contact, seed_tree
from tests.test_telegram import TgUser

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=VN_TZ)


@dataclass
class World:
    app: App
    tree: Tree


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    app = make_app(db.url, FixedClock(NOW))
    try:
        tree = await seed_tree(app)
        await make_contact(app, "officer_a", COMMUNE_OFFICER, tree.commune)
        await make_contact(app, "officer_b", COMMUNE_OFFICER, tree.other_commune)
        await make_contact(app, "province", PROVINCE_STAFF, tree.province)
        await make_contact(app, "member", MEMBER, tree.village)
        yield World(app, tree)
    finally:
        await app.db.dispose()


async def actor(uow: UnitOfWork, external_id: str) -> Actor:
    contact = await uow.contacts.by_identity("test", external_id)
    assert contact is not None
    return Actor.of(contact, await load_grants(uow, contact.id))


async def get(uow: UnitOfWork, u: Unit) -> Unit:
    found = await uow.units.get(u.id)
    assert found is not None
    return found


async def count(app: App, model: type) -> int:
    async with app.uow() as uow:
        return int((await uow.session.execute(select(func.count()).select_from(model))).scalar_one())


async def audit_actions(app: App, action: str) -> list[dict[str, object]]:
    async with app.uow() as uow:
        rows = await uow.audit.actions(action)
        return [{"contact_id": e.contact_id, "unit_id": e.unit_id, **e.detail} for e in rows]


async def upload(app: App, who: str, text: str | bytes) -> UploadResult:
    data = text.encode() if isinstance(text, str) else text
    async with app.uow() as uow:
        result = await upload_villages(uow, await actor(uow, who), data, "thon.csv", app.clock.now(), 30)
        await uow.commit()
    return result


async def area_codes(app: App, who: str, area: Unit, when: datetime = NOW) -> list[VillageCode]:
    async with app.uow() as uow:
        codes = await codes_for_area(uow, await actor(uow, who), await get(uow, area), when, 14)
        await uow.commit()
    return codes


# ------------------------------------------------------------------------------------ upload


async def test_an_upload_adds_villages_and_gives_each_a_code_with_the_officers_name(world: World) -> None:
    text = (
        "commune_code,village_name,kind,officer_name\n"
        "01273,Thôn Bản Giới,thôn,Nguyễn Thị Hường\n"
        "01273,Tổ dân phố 7,tổ dân phố,\n"
        "01273,Thôn Nà Rụa,village,Lục Văn Sinh\n"  # already there: matched, not added
    )
    result = await upload(world.app, "officer_a", text)
    assert result.ok, result.problems
    assert (result.added, result.updated, result.unchanged) == (2, 0, 1)
    names = {c.village.name: c.invite.invitee_name for c in result.codes}
    assert names == {"Thôn Bản Giới": "Nguyễn Thị Hường", "Tổ dân phố 7": None, "Thôn Nà Rụa": "Lục Văn Sinh"}
    async with world.app.uow() as uow:
        villages = await uow.units.children(world.tree.commune.id)
        assert {fold(v.name) for v in villages} == {
            "thon na rua",
            "to dan pho 1",
            "thon ban gioi",
            "to dan pho 7",
        }
        invites = (await uow.session.execute(select(Invite))).scalars().all()
        assert all(i.role == VILLAGE_OFFICER and i.expires_at == NOW + timedelta(days=30) for i in invites)
    # Audited: the upload once, and each code as create_invite audits it, naming the officer.
    [row] = await audit_actions(world.app, "villages.upload")
    assert (row["inserted"], row["codes_created"], row["names"]) == (2, 3, 2)
    created = await audit_actions(world.app, "invite.create")
    assert len(created) == 3
    assert {r["contact_id"] for r in created} == {row["contact_id"]} != {None}

    # The same file again adds nothing and keeps the codes.
    again = await upload(world.app, "officer_a", text)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert not any(c.created for c in again.codes)
    assert await count(world.app, Invite) == 3


async def test_an_upload_with_problems_writes_nothing_and_names_each_line(world: World) -> None:
    before = await count(world.app, Unit)
    text = (
        "commune_code,village_name,kind,officer_name\n"  # 1
        "01273,Thôn Bản Giới,thôn,Nguyễn Văn A\n"  # 2 fine
        "99999,Thôn Ma,thôn,\n"  # 3 unknown commune
        "01273,Xóm Lạ,hamlet,\n"  # 4 bad kind
        "01273,Thôn Mới,thôn,Bà Lan 0912 345 678\n"  # 5 a phone number
        "01273,Thôn Kia\n"  # 6 missing columns
        "01273,thon ban gioi,village,\n"  # 7 same as line 2
        "01279,Xóm Mới,xóm,\n"  # 8 the other commune: outside officer A's area
    )
    result = await upload(world.app, "officer_a", text)
    problems = result.problems
    assert [p.line for p in problems] == [3, 4, 5, 6, 7, 8]
    assert await count(world.app, Unit) == before
    assert await count(world.app, Invite) == 0
    assert await audit_actions(world.app, "villages.upload") == []
    # Each problem reads in the staff's language.
    vi, en = translator("vi"), translator("en")
    outside = problems[-1]
    # A commune of another area reads like an unknown code: the upload names nothing outside.
    assert en(outside.message, **outside.params) == "the commune code 01279 is not a commune of your area"
    assert vi(outside.message, **outside.params) == "mã xã, phường 01279 không thuộc địa bàn của anh/chị"
    unknown = problems[0]
    assert en(unknown.message, **unknown.params) == "the commune code 99999 is not a commune of your area"
    for p in problems:
        assert vi(p.message, **p.params) != en(p.message, **p.params), p.message


async def test_province_staff_upload_for_any_commune_of_their_province(world: World) -> None:
    text = "commune_code,village_name,kind\n01273,Thôn A,thôn\n01279,Xóm B,xóm\n"
    result = await upload(world.app, "province", text)
    assert result.ok and result.added == 2 and len(result.codes) == 2


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (b"x" * (MAX_UPLOAD_BYTES + 1), 0, "the file is larger than {kb} KB"),
        ("commune_code,village_name,kind\n01273,Thôn Ú,thôn\n".encode("cp1258"), 0, "the file is not UTF-8"),
        (b"code,name\n01273,A\n", 1, "the first line must be"),
        (b"commune_code,village_name,kind\n", 0, "the file lists no village"),
        (
            ("commune_code,village_name,kind\n" + "01273,Thôn {},thôn\n" * MAX_UPLOAD_LINES)
            .format(*range(MAX_UPLOAD_LINES))
            .encode(),
            MAX_UPLOAD_LINES + 1,
            "the file has more than {n} lines",
        ),
    ],
    ids=["too large", "not utf-8", "wrong header", "empty", "too many lines"],
)
async def test_files_that_cannot_be_read_are_refused_whole(
    world: World, data: bytes, line: int, message: str
) -> None:
    before = await count(world.app, Unit)
    result = await upload(world.app, "officer_a", data)
    assert [p.line for p in result.problems][-1:] == [line]
    assert result.problems[-1].message.startswith(message)
    assert await count(world.app, Unit) == before


async def test_members_cannot_upload(world: World) -> None:
    with pytest.raises(NotAllowed):
        await upload(world.app, "member", "commune_code,village_name,kind\n01273,Thôn A,thôn\n")


# -------------------------------------------------------------------------------- bulk codes


async def test_codes_go_to_villages_without_an_officer_and_are_kept_when_asked_again(world: World) -> None:
    tree = world.tree
    await make_contact(world.app, "vo", VILLAGE_OFFICER, tree.village)  # Thôn Nà Rụa has its officer
    first = await area_codes(world.app, "officer_a", tree.commune)
    assert [(c.village.name, c.created) for c in first] == [("Tổ dân phố 1", True)]
    second = await area_codes(world.app, "officer_a", tree.commune)
    assert [(c.village.name, c.created) for c in second] == [("Tổ dân phố 1", False)]
    assert second[0].invite.id == first[0].invite.id

    # An expired, a used-up or a revoked code is no longer open: the village gets a new one.
    later = NOW + timedelta(days=15)
    third = await area_codes(world.app, "officer_a", tree.commune, later)
    assert [c.created for c in third] == [True]
    async with world.app.uow() as uow:
        await revoke_invite(uow, await actor(uow, "officer_a"), third[0].invite.id, later)
        await uow.commit()
    fourth = await area_codes(world.app, "officer_a", tree.commune, later)
    assert [c.created for c in fourth] == [True]
    assert len({c.invite.id for c in (*first, *third, *fourth)}) == 3

    bulk = await audit_actions(world.app, "invites.bulk")
    counts = [(r["villages"], r["created"], r["kept"]) for r in bulk]
    assert counts == [(2, 1, 0), (2, 0, 1), (2, 1, 0), (2, 1, 0)]


async def test_province_staff_get_codes_for_every_commune_officers_only_their_own(world: World) -> None:
    tree = world.tree
    codes = await area_codes(world.app, "province", tree.province)
    assert sorted(c.village.name for c in codes) == ["Thôn Nà Rụa", "Tổ dân phố 1", "Xóm Pác Bó"]
    with pytest.raises(NotAllowed):
        await area_codes(world.app, "officer_a", tree.other_commune)
    with pytest.raises(NotAllowed):
        await area_codes(world.app, "member", tree.village)


async def test_codes_for_many_villages_in_one_transaction(world: World) -> None:
    """The bulk path at size (the figure for 3,000 villages is in the report: bench run by hand)."""
    n = 300
    text = "commune_code,village_name,kind\n" + "".join(f"01279,Thôn {i},thôn\n" for i in range(n))
    result = await upload(world.app, "officer_b", text)
    assert len(result.codes) == n
    async with world.app.uow() as uow:
        await revoke_invite(uow, CONSOLE, result.codes[0].invite.id, NOW)
        await uow.commit()
    started = time.perf_counter()
    codes = await area_codes(world.app, "officer_b", world.tree.other_commune)
    elapsed = time.perf_counter() - started
    # New: Xóm Pác Bó and the village whose code was revoked; the others keep theirs.
    assert (sum(c.created for c in codes), sum(not c.created for c in codes)) == (2, n - 1)
    assert elapsed < 30


# ------------------------------------------------------------------------------------- revoke


async def test_a_revoked_code_is_refused_like_an_unknown_one(world: World) -> None:
    tree = world.tree
    async with world.app.uow() as uow:
        village = await get(uow, tree.village)
        invite = await create_invite(uow, await actor(uow, "officer_a"), village, VILLAGE_OFFICER, NOW, 14)
        code = invite.code
        await uow.commit()
    async with world.app.uow() as uow:
        with pytest.raises(NotAllowed):  # another commune's officer
            await revoke_invite(uow, await actor(uow, "officer_b"), invite.id, NOW)
        with pytest.raises(NotAllowed):
            await revoke_invite(uow, await actor(uow, "member"), invite.id, NOW)
    async with world.app.uow() as uow:
        listed = await open_codes(uow, [await get(uow, tree.commune)], NOW)
        assert [(c.invite.code, c.unit.name, c.parent.name if c.parent else None) for c in listed] == [
            (code, "Thôn Nà Rụa", "Phường Thục Phán")
        ]
        assert [s.code for s in slips_of(listed)] == [code]
        await revoke_invite(uow, await actor(uow, "officer_a"), invite.id, NOW)
        await revoke_invite(uow, await actor(uow, "officer_a"), invite.id, NOW)  # twice: one audit row
        await uow.commit()
    assert len(await audit_actions(world.app, "invite.revoke")) == 1
    async with world.app.uow() as uow:
        assert await open_codes(uow, [await get(uow, tree.commune)], NOW) == []
        contact = await uow.contacts.create("test", "newcomer", NOW)
        result = await redeem_invite(uow, code, contact.id, NOW)
        assert result.outcome is RedeemOutcome.REVOKED
        await uow.commit()

    # In the chat: the usual answer for a code that is not valid, and no role.
    chat = Chat(world.app, "newcomer2")
    await chat.say("/start")
    await chat.press("vi")
    await chat.press("yes")
    await chat.press("officer")
    await chat.say(code)
    assert "Mã này không đúng" in chat.text, chat.text
    async with world.app.uow() as uow:
        found = await uow.contacts.by_identity("test", "newcomer2")
        assert found is not None and await uow.contacts.roles(found.id) == []


async def test_a_village_named_like_a_kind_is_still_a_village(world: World) -> None:
    """Line parsing is the CLI's (bot/services/units.py): a name starting with a designation."""
    result = await upload(world.app, "officer_a", "commune_code,village_name,kind\n01273,Xóm Chợ,village\n")
    assert result.ok and result.codes[0].village.kind == VILLAGE


# ------------------------------------------------------------------ Telegram: /start <code>


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with fake_api_served(FakeTelegram(TELEGRAM_TOKEN)) as api:
        yield api


async def test_the_slips_telegram_link_registers_the_officer_after_consent_only(
    db: Database, telegram: FakeTelegram
) -> None:
    """The real python-telegram-bot against the fake Bot API: what opening the slip's QR code
    sends ("/start ABCDEFGH") is redeemed after the consent question; nothing is typed."""
    async with running_bot(
        db.url, webhook=True, telegram_token=TELEGRAM_TOKEN, telegram_api_base_url=telegram.url
    ) as bot:
        tree = await seed_tree(bot.app)
        async with bot.app.uow() as uow:
            area = await get(uow, tree.commune)
            made = await codes_for_area(uow, CONSOLE, area, bot.app.clock.now(), 14)
            codes = {c.village.id: c.invite.code for c in made}
            await uow.commit()
        link = telegram_start_link(BOT_USERNAME, codes[tree.village.id])
        payload = parse_qs(urlsplit(link).query)["start"][0]
        assert payload == codes[tree.village.id] and "-" not in payload

        user = TgUser(telegram, 515151)
        await user.say(f"/start {payload}")  # what Telegram sends when the link is opened
        assert "Anh/chị có đồng ý không?" in user.text  # consent first, no language question
        assert user.buttons == ["yes", "no", "en"]
        await user.press("en")  # the other language, one press away
        assert "Do you agree?" in user.text
        await user.press("yes")
        assert "registered as Village officer of Thôn Nà Rụa" in user.text

        # Someone who agreed before (a member here) is registered at once by the other code.
        await make_contact(bot.app, "626262", MEMBER, tree.village, channel="telegram")
        member = TgUser(telegram, 626262)
        await member.say(f"/start {codes[tree.group.id]}")
        assert "cán bộ thôn" in member.text.lower() and "Tổ dân phố 1" in member.text, member.text

        async with bot.app.uow() as uow:
            for user_id, village in ((515151, tree.village), (626262, tree.group)):
                contact = await uow.contacts.by_identity("telegram", str(user_id))
                assert contact is not None and contact.consent_at is not None
                roles = {(g.role, g.unit_id) for g in await uow.contacts.roles(contact.id)}
                assert (VILLAGE_OFFICER, village.id) in roles
