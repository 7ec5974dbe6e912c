"""/lienket: one person on Zalo and Telegram is one contact; role, area and an open report follow.
/huylienket takes a chat out again.

Issue 11, finding 1 ("role theft"): the contact who issued a code received the roles of whoever
redeemed it, without a word to the redeemer. The rules now: the redeemer is shown whose account
they would join and must confirm; nothing moves from the redeemer to the issuer; a chat holding
an officer role cannot join another account. Each rule has a test here, through the service
layer on both backends; the attack is also a transcript (tests/dialogues/linking_attack.yaml).
One test runs the real Telegram and Zalo adapters against their fake servers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.permissions import load_grants
from bot.services.actor import Actor
from bot.services.linking import LinkProblem, LinkRefused, link_chat, preview_link
from storage.db import Database
from storage.models import (
    COMMUNE_OFFICER,
    MEMBER,
    VILLAGE_OFFICER,
    AuditEntry,
    ChannelIdentity,
    Contact,
    RoleGrant,
)
from storage.models_channels import LinkCode
from storage.models_outreach import CANCELLED, QUEUED, Delivery
from tests.fakes.harness import TELEGRAM_TOKEN, ZALO_TOKEN, running_bot
from tests.fakes.serving import serving
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.support import Chat, Tree, make_app, make_contact, seed_tree

CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}\b")


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    application = make_app(db.url)
    yield application
    await application.db.dispose()


@pytest.fixture
async def tree(app: App) -> Tree:
    return await seed_tree(app)


async def named(app: App, channel: str, external_id: str, name: str) -> None:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity(channel, external_id)
        assert contact is not None
        contact.display_name = name
        await uow.commit()


async def officer_on_telegram(app: App, tree: Tree) -> Chat:
    await make_contact(app, "tg-1", VILLAGE_OFFICER, tree.village, locale="en", channel="telegram")
    await named(app, "telegram", "tg-1", "Hoàng Văn Minh")
    return Chat(app, "tg-1", channel="telegram")


async def link_code(chat: Chat) -> str:
    await chat.say("/lienket")
    found = CODE.search(chat.text)
    assert found, chat.text
    assert f"/lienket {found.group(0)}" in chat.text
    return found.group(0)


async def contact_of(app: App, channel: str, external_id: str) -> int:
    async with app.db.sessions() as session:
        q = select(ChannelIdentity.contact_id).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
        return int((await session.execute(q)).scalar_one())


async def roles_of(app: App, contact_id: int) -> list[tuple[str, int]]:
    async with app.db.sessions() as session:
        q = select(RoleGrant.role, RoleGrant.unit_id).where(
            RoleGrant.contact_id == contact_id, RoleGrant.revoked_at.is_(None)
        )
        return sorted((r, u) for r, u in (await session.execute(q)).all())


async def code_row(app: App) -> LinkCode:
    async with app.db.sessions() as session:
        return (await session.execute(select(LinkCode))).scalar_one()


# ----------------------------------------------------------------------------- linking a new chat


async def test_an_open_report_role_and_area_carry_over(app: App, tree: Tree) -> None:
    telegram = await officer_on_telegram(app, tree)
    code = await link_code(telegram)
    await telegram.say("/baocao")
    await telegram.press("2026")
    await telegram.say("1.250")
    assert "Question 2/25" in telegram.text

    zalo = Chat(app, "zalo-1", channel="zalo")  # never wrote before
    await zalo.say(f"/lienket {code.lower()}")  # typed carelessly
    assert "Hoàng Văn Minh" in zalo.text and "Thôn Nà Rụa" in zalo.text  # whose account, first
    await zalo.say("1")  # Zalo has no buttons: the first option, "Đồng ý liên kết"
    assert "✅ Linked" in zalo.text  # in the linked account's language (English)
    assert "carry on here" in zalo.text
    assert "Question 2/25" in zalo.replies[-1].text
    await zalo.say("5000")
    assert "Question 3/25" in zalo.text  # the same dialogue, continued on the other channel

    officer = await contact_of(app, "telegram", "tg-1")
    assert await contact_of(app, "zalo", "zalo-1") == officer
    await telegram.say("800")  # …and back on Telegram, where it stands now
    assert "Question 4/25" in telegram.text

    link = await code_row(app)
    async with app.db.sessions() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "contact.link"))
        ).scalar_one()
        # The new chat's own contact had nothing worth keeping: it is gone, not left behind.
        contacts = (await session.execute(select(func.count(Contact.id)))).scalar_one()
    assert link.used_at is not None and link.channel == "telegram"
    assert audit.contact_id == officer
    assert audit.detail["channel"] == "zalo" and audit.detail["code_channel"] == "telegram"
    assert contacts == 1


async def test_the_linked_channel_has_the_role_and_area(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/link {code}")
    await zalo.press("link")
    assert "Village report" in [o.label for o in zalo.replies[-1].options]  # the officer's menu
    await zalo.say("/toi")
    assert "Village officer: Thôn Nà Rụa" in zalo.text


# ----------------------------------------------------------------------------- the rules


async def test_the_attack_gives_the_issuer_nothing(app: App, tree: Tree) -> None:
    """Finding 1: an attacker issues a code and persuades a village officer to type it."""
    await make_contact(app, "attacker", MEMBER, tree.other_village, channel="telegram")
    attacker = Chat(app, "attacker", channel="telegram")
    await make_contact(app, "zl-officer", VILLAGE_OFFICER, tree.village, channel="zalo")
    officer = Chat(app, "zl-officer", channel="zalo")
    officer_id = await contact_of(app, "zalo", "zl-officer")
    attacker_id = await contact_of(app, "telegram", "attacker")

    code = await link_code(attacker)
    await officer.say(f"/lienket {code}")
    assert "vai trò cán bộ" in officer.text  # refused outright: officers never join another account
    await officer.say("1")  # whatever they answer next, nothing is waiting for a confirmation
    await attacker.say("/toi")
    assert "Thôn Nà Rụa" not in attacker.text
    await attacker.say("/baocao")
    assert "Question 1/" not in attacker.text and "Câu 1/" not in attacker.text

    assert await roles_of(app, attacker_id) == [(MEMBER, tree.other_village.id)]
    assert await roles_of(app, officer_id) == [(VILLAGE_OFFICER, tree.village.id)]
    assert await contact_of(app, "zalo", "zl-officer") == officer_id  # the officer's chat did not move
    assert (await code_row(app)).used_at is None


async def test_an_officer_chat_is_refused_by_the_service_too(app: App, tree: Tree) -> None:
    """A forged confirmation (a stale dialogue, another entry point) meets the same rule."""
    await make_contact(app, "attacker", MEMBER, tree.other_village, channel="telegram")
    code = await link_code(Chat(app, "attacker", channel="telegram"))
    await make_contact(app, "zl-officer", COMMUNE_OFFICER, tree.commune, channel="zalo")
    attacker_id = await contact_of(app, "telegram", "attacker")
    async with app.uow() as uow:
        officer = await uow.contacts.by_identity("zalo", "zl-officer")
        assert officer is not None
        actor = Actor.of(officer, await load_grants(uow, officer.id))
        for attempt in (
            preview_link(uow, actor, code, app.clock.now()),
            link_chat(uow, actor, code, ("zalo", "zl-officer"), app.clock.now(), account_id=attacker_id),
        ):
            with pytest.raises(LinkRefused) as refused:
                await attempt
            assert refused.value.problem is LinkProblem.OFFICER
    assert await roles_of(app, attacker_id) == [(MEMBER, tree.other_village.id)]


async def test_roles_never_move_from_the_redeemer_to_the_issuer(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    await make_contact(app, "zalo-1", MEMBER, tree.other_village, channel="zalo")
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/lienket {code}")
    assert "không được chuyển sang" in zalo.text and "Xóm Pác Bó" in zalo.text  # what it leaves
    await zalo.press("link")
    officer = await contact_of(app, "telegram", "tg-1")
    assert await contact_of(app, "zalo", "zalo-1") == officer
    assert await roles_of(app, officer) == [(VILLAGE_OFFICER, tree.village.id)]  # no member role came along
    async with app.db.sessions() as session:
        account = await session.get(Contact, officer)
        assert account is not None and account.home_unit_id == tree.village.id


async def test_nothing_moves_before_the_redeemer_confirms(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/lienket {code}")
    # Told exactly whose account: name, role and area, the apps it is used on.
    for shown in ("Hoàng Văn Minh", "Cán bộ thôn", "Thôn Nà Rụa, Phường Thục Phán, Cao Bằng", "Telegram"):
        assert shown in zalo.text
    assert zalo.option_ids == ["link", "cancel"]
    assert await contact_of(app, "zalo", "zalo-1") != await contact_of(app, "telegram", "tg-1")
    assert (await code_row(app)).used_at is None

    await zalo.say("không")
    assert "Chưa liên kết" in zalo.text
    assert await contact_of(app, "zalo", "zalo-1") != await contact_of(app, "telegram", "tg-1")
    assert (await code_row(app)).used_at is None  # still usable by its owner's other chat


async def test_a_code_that_expires_while_confirming_is_refused(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/lienket {code}")
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(minutes=app.settings.link_code_expiry_minutes, seconds=1))
    await zalo.press("link")
    assert "hết hạn" in zalo.text
    assert await contact_of(app, "zalo", "zalo-1") != await contact_of(app, "telegram", "tg-1")


async def test_a_code_works_once(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    first, other = Chat(app, "zalo-1", channel="zalo"), Chat(app, "zalo-2", channel="zalo")
    await first.say(f"/lienket {code}")
    await other.say(f"/lienket {code}")  # both are shown the account…
    await first.press("link")
    await other.press("link")  # …only the first to confirm joins it
    assert "already been used" in other.text or "đã được dùng" in other.text
    assert await contact_of(app, "zalo", "zalo-2") != await contact_of(app, "telegram", "tg-1")


async def test_an_expired_code_is_refused(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(minutes=app.settings.link_code_expiry_minutes, seconds=1))
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/lienket {code}")
    assert "hết hạn" in zalo.text  # a new contact speaks the default language
    assert await contact_of(app, "zalo", "zalo-1") != await contact_of(app, "telegram", "tg-1")


@pytest.mark.parametrize("typed", ["/lienket ZZZZ-ZZZZ", "/lienket 1234", "/lienket ABCD-EFGH"])
async def test_a_wrong_code_is_refused(app: App, tree: Tree, typed: str) -> None:
    await link_code(await officer_on_telegram(app, tree))
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(typed)
    assert "không hợp lệ" in zalo.text


async def test_a_code_typed_where_it_was_shown_is_explained(app: App, tree: Tree) -> None:
    telegram = await officer_on_telegram(app, tree)
    code = await link_code(telegram)
    await telegram.say(f"/lienket {code}")
    assert "account you are using here" in telegram.text


async def test_someone_not_registered_is_told_where_to_start(app: App) -> None:
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say("/lienket")
    assert "ứng dụng anh/chị đã đăng ký" in zalo.text
    async with app.db.sessions() as session:
        assert (await session.execute(select(LinkCode))).first() is None


# ----------------------------------------------------------------------------- /huylienket


async def test_unlink_takes_the_chat_out_and_the_account_keeps_the_rest(app: App, tree: Tree) -> None:
    telegram = await officer_on_telegram(app, tree)
    code = await link_code(telegram)
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/lienket {code}")
    await zalo.press("link")
    officer = await contact_of(app, "telegram", "tg-1")
    async with app.uow() as uow:  # a reminder waits for the account's Zalo chat, another for Telegram
        uow.outbox.add(officer, "zalo", "zalo-1", {"text": "Nhắc báo cáo"}, app.clock.now())
        uow.outbox.add(officer, "telegram", "tg-1", {"text": "Nhắc báo cáo"}, app.clock.now())
        await uow.commit()

    await zalo.say("/unlink")
    assert "no longer linked" in zalo.text  # still the account's language when it answers
    detached = await contact_of(app, "zalo", "zalo-1")
    assert detached != officer
    assert await roles_of(app, detached) == []
    assert await roles_of(app, officer) == [(VILLAGE_OFFICER, tree.village.id)]
    await zalo.say("/toi")
    assert "Thôn Nà Rụa" not in zalo.text
    await telegram.say("/toi")
    assert "Village officer: Thôn Nà Rụa" in telegram.text
    async with app.db.sessions() as session:
        statuses = dict(
            (
                await session.execute(
                    select(Delivery.channel, Delivery.status).where(Delivery.contact_id == officer)
                )
            ).all()
        )
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "contact.unlink"))
        ).scalar_one()
    assert statuses == {"zalo": CANCELLED, "telegram": QUEUED}  # nothing more for the account reaches Zalo
    assert audit.contact_id == officer and audit.detail["channel"] == "zalo"
    assert audit.detail["to_contact_id"] == detached and audit.detail["cancelled"] == 1


async def test_the_only_chat_of_an_account_cannot_be_unlinked(app: App, tree: Tree) -> None:
    telegram = await officer_on_telegram(app, tree)
    await telegram.say("/huylienket")
    assert "only chat" in telegram.text and "/deletemydata" in telegram.text  # English: English commands
    assert await roles_of(app, await contact_of(app, "telegram", "tg-1")) == [
        (VILLAGE_OFFICER, tree.village.id)
    ]


# ----------------------------------------------------------------------------- across real channels


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, FakeZalo]]:
    telegram, zalo = FakeTelegram(TELEGRAM_TOKEN), FakeZalo(ZALO_TOKEN)
    async with serving(telegram.app, lifespan="off") as t_url, serving(zalo.app, lifespan="off") as z_url:
        telegram.url, zalo.url = t_url, z_url
        try:
            yield telegram, zalo
        finally:
            await telegram.close()
            await zalo.close()


async def test_linking_across_the_real_telegram_and_zalo_adapters(
    sqlite_db: Database, fakes: tuple[FakeTelegram, FakeZalo]
) -> None:
    telegram, zalo = fakes
    async with running_bot(
        sqlite_db.url,
        webhook=True,
        telegram_token=TELEGRAM_TOKEN,
        telegram_api_base_url=telegram.url,
        zalo_token=ZALO_TOKEN,
        zalo_api_base_url=zalo.url,
    ) as bot:
        tree = await seed_tree(bot.app)
        await make_contact(bot.app, "555", VILLAGE_OFFICER, tree.village, channel="telegram")
        assert await telegram.deliver(telegram.text_update(555, "/lienket")) == 200
        found = CODE.search(telegram.sent(555)[-1]["text"])
        assert found
        assert await zalo.deliver(zalo.update("zl-9", f"/lienket {found.group(0)}")) == 200
        question = "\n".join(m["text"] for m in zalo.sent("zl-9"))
        assert "Thôn Nà Rụa" in question and "1. Đồng ý liên kết" in question  # Zalo: numbered
        assert await zalo.deliver(zalo.update("zl-9", "1")) == 200
        answer = "\n".join(m["text"] for m in zalo.sent("zl-9"))
        assert "✅ Đã liên kết" in answer
        assert "/baocao — Báo cáo thôn" in answer  # the officer's menu, as Zalo shows it
        assert await zalo.deliver(zalo.update("zl-9", "/toi")) == 200
        assert "Thôn Nà Rụa" in zalo.sent("zl-9")[-1]["text"]
