"""Invite codes: creation, normalisation, redemption, expiry, use limits and races."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.services.actor import CONSOLE
from bot.services.invites import (
    ALPHABET,
    RedeemOutcome,
    create_invite,
    format_code,
    is_well_formed,
    normalise_code,
    redeem_invite,
)
from storage.db import Database
from storage.models import (
    COMMUNE,
    COMMUNE_OFFICER,
    MEMBER,
    VILLAGE,
    VILLAGE_OFFICER,
    Invite,
    Unit,
)
from storage.uow import UnitOfWork

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))


@pytest.fixture
async def village_id(db: Database) -> int:
    """A commune with one village, without the national import (fast)."""
    async with UnitOfWork(db) as uow:
        commune = await uow.units.add(
            Unit(
                kind=COMMUNE,
                code="01392",
                name="Xã Trường Hà",
                name_folded="xa truong ha",
                created_at=NOW,
            )
        )
        village = await uow.units.add(
            Unit(
                kind=VILLAGE,
                name="Xóm Pác Bó",
                name_folded="xom pac bo",
                parent_id=commune.id,
                created_at=NOW,
            )
        )
        await uow.commit()
        return village.id


async def new_contact(db: Database, external_id: str) -> int:
    async with UnitOfWork(db) as uow:
        contact = await uow.contacts.create("webchat", external_id, NOW)
        await uow.commit()
        return contact.id


async def make_invite(
    db: Database, unit_id: int, role: str = VILLAGE_OFFICER, *, days: int = 7, uses: int = 1
) -> str:
    async with UnitOfWork(db) as uow:
        unit = await uow.units.get(unit_id)
        assert unit is not None
        invite = await create_invite(uow, CONSOLE, unit, role, NOW, days, max_uses=uses)
        await uow.commit()
        return invite.code


async def redeem(db: Database, code: str, contact_id: int, at: datetime = NOW) -> RedeemOutcome:
    async with UnitOfWork(db) as uow:
        outcome = (await redeem_invite(uow, code, contact_id, at)).outcome
        await uow.commit()
        return outcome


# --- codes --------------------------------------------------------------------------------


def test_alphabet_has_no_ambiguous_characters() -> None:
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31


@pytest.mark.parametrize(
    "typed",
    [
        "ABCD-EFGH",
        "abcdefgh",
        "  abcd-efgh\n",
        "AbCd EfGh",
        "abcd–efgh",
        "ＡＢＣＤ－ＥＦＧＨ",
        "abcd.efgh",
    ],
)
def test_normalise_code(typed: str) -> None:
    assert normalise_code(typed) == "ABCDEFGH"


def test_format_code() -> None:
    assert format_code("ABCDEFGH") == "ABCD-EFGH"
    assert format_code("abcd-efgh") == "ABCD-EFGH"
    assert is_well_formed("abcd-efgh")
    assert not is_well_formed("ABCD-EFG0")  # 0 is not in the alphabet
    assert not is_well_formed("ABCDEFG")


async def test_created_codes_are_unique_and_well_formed(db: Database, village_id: int) -> None:
    async with UnitOfWork(db) as uow:
        unit = await uow.units.get(village_id)
        assert unit is not None
        invites = [await create_invite(uow, CONSOLE, unit, MEMBER, NOW, 30) for _ in range(50)]
        await uow.commit()
    codes = {i.code for i in invites}
    assert len(codes) == 50
    assert all(len(c) == 8 and set(c) <= set(ALPHABET) for c in codes)
    first = invites[0]
    assert first.expires_at == NOW + timedelta(days=30)
    assert (first.uses, first.max_uses, first.role, first.unit_id) == (0, 1, MEMBER, village_id)


async def test_create_refuses_bad_arguments(db: Database, village_id: int) -> None:
    async with UnitOfWork(db) as uow:
        unit = await uow.units.get(village_id)
        assert unit is not None
        with pytest.raises(ValueError, match="role"):
            await create_invite(uow, CONSOLE, unit, "mayor", NOW, 7)
        with pytest.raises(ValueError):
            await create_invite(uow, CONSOLE, unit, MEMBER, NOW, 0)
        with pytest.raises(ValueError):
            await create_invite(uow, CONSOLE, unit, MEMBER, NOW, 7, max_uses=0)


# --- redemption ---------------------------------------------------------------------------


async def test_redeem_grants_the_role(db: Database, village_id: int) -> None:
    code = await make_invite(db, village_id)
    contact_id = await new_contact(db, "u1")
    typed = f"  {format_code(code).lower()} "
    async with UnitOfWork(db) as uow:
        result = await redeem_invite(uow, typed, contact_id, NOW)
        outcome, invite = result.outcome, result.invite
        await uow.commit()
    assert outcome is RedeemOutcome.OK
    assert invite is not None and invite.code == code
    assert invite.uses == 1
    async with UnitOfWork(db) as uow:
        [grant] = await uow.contacts.roles(contact_id)
        assert (grant.role, grant.unit_id, grant.invite_id) == (
            VILLAGE_OFFICER,
            village_id,
            invite.id,
        )
        stored = await uow.invites.by_code(code)
        assert stored is not None and stored.uses == 1
        [entry] = await uow.audit.actions("invite.redeem")
        assert (entry.contact_id, entry.unit_id) == (contact_id, village_id)
        assert entry.detail["invite_id"] == invite.id
        assert len(await uow.audit.actions("invite.create")) == 1


async def test_unknown_codes(db: Database, village_id: int) -> None:
    await make_invite(db, village_id)
    contact_id = await new_contact(db, "u1")
    for typed in ["", "hello", "ABCD-EFGH-JK", "ZZZZ-ZZZZ"]:
        assert await redeem(db, typed, contact_id) is RedeemOutcome.UNKNOWN
    async with UnitOfWork(db) as uow:
        assert await uow.contacts.roles(contact_id) == []


async def test_expired(db: Database, village_id: int) -> None:
    code = await make_invite(db, village_id, days=7)
    contact_id = await new_contact(db, "u1")
    assert await redeem(db, code, contact_id, NOW + timedelta(days=7)) is RedeemOutcome.EXPIRED
    async with UnitOfWork(db) as uow:
        assert await uow.contacts.roles(contact_id) == []
    # A second before the end it still works (and UTC storage does not shift the deadline).
    at = (NOW + timedelta(days=7, seconds=-1)).astimezone(ZoneInfo("UTC"))
    assert await redeem(db, code, contact_id, at) is RedeemOutcome.OK


async def test_single_use_code_cannot_be_redeemed_twice(db: Database, village_id: int) -> None:
    code = await make_invite(db, village_id)
    first = await new_contact(db, "u1")
    second = await new_contact(db, "u2")
    assert await redeem(db, code, first) is RedeemOutcome.OK
    assert await redeem(db, code, second) is RedeemOutcome.USED_UP
    assert await redeem(db, code, first) is RedeemOutcome.USED_UP
    async with UnitOfWork(db) as uow:
        assert await uow.contacts.roles(second) == []


async def test_multi_use_code_is_used_up(db: Database, village_id: int) -> None:
    code = await make_invite(db, village_id, MEMBER, uses=3)
    contacts = [await new_contact(db, f"u{i}") for i in range(4)]
    outcomes = [await redeem(db, code, c) for c in contacts]
    assert outcomes == [RedeemOutcome.OK] * 3 + [RedeemOutcome.USED_UP]
    async with UnitOfWork(db) as uow:
        stored = await uow.invites.by_code(code)
        assert stored is not None and stored.uses == 3


async def test_two_contacts_racing_for_one_code(db: Database, village_id: int) -> None:
    code = await make_invite(db, village_id, COMMUNE_OFFICER)
    contacts = [await new_contact(db, f"u{i}") for i in range(5)]
    outcomes = await asyncio.gather(*(redeem(db, code, c) for c in contacts))
    assert sorted(outcomes) == sorted([RedeemOutcome.OK] + [RedeemOutcome.USED_UP] * 4)
    async with UnitOfWork(db) as uow:
        granted = [c for c in contacts if await uow.contacts.roles(c)]
        assert len(granted) == 1
        stored = await uow.invites.by_code(code)
        assert stored is not None and stored.uses == 1


async def test_losing_the_conditional_update_means_used_up(db: Database, village_id: int) -> None:
    """Both transactions read uses=0; only the first UPDATE counts (the PostgreSQL race)."""
    code = await make_invite(db, village_id)
    winner = await new_contact(db, "u1")
    loser = await new_contact(db, "u2")
    async with UnitOfWork(db) as uow:
        stale = await uow.invites.by_code(code)
        assert stale is not None and stale.uses == 0
        # Someone else uses the code between our read and our update.
        await uow.session.execute(
            update(Invite)
            .where(Invite.code == code)
            .values(uses=1)
            .execution_options(synchronize_session=False)
        )
        outcome = (await redeem_invite(uow, code, loser, NOW)).outcome
        assert outcome is RedeemOutcome.USED_UP
        assert await uow.contacts.roles(loser) == []
    assert await redeem(db, code, winner) is RedeemOutcome.OK
