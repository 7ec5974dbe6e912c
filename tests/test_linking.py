"""/lienket: one person on Zalo and Telegram is one contact; role, area and an open report follow.

The flow is tested through the service layer on both backends, and once end to end across the
real Telegram and Zalo adapters against their fake servers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from storage.db import Database
from storage.models import COMMUNE_OFFICER, VILLAGE_OFFICER, AuditEntry, ChannelIdentity, RoleGrant
from storage.models_channels import LinkCode
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


async def officer_on_telegram(app: App, tree: Tree) -> Chat:
    await make_contact(app, "tg-1", VILLAGE_OFFICER, tree.village, locale="en", channel="telegram")
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


async def test_an_open_report_role_and_area_carry_over(app: App, tree: Tree) -> None:
    telegram = await officer_on_telegram(app, tree)
    code = await link_code(telegram)
    await telegram.say("/baocao")
    await telegram.press("2026")
    await telegram.say("1.250")
    assert "Question 2/25" in telegram.text

    zalo = Chat(app, "zalo-1", channel="zalo")  # never wrote before
    await zalo.say(f"/lienket {code.lower()}")  # typed carelessly
    assert "✅ Linked" in zalo.text  # in the linked account's language (English)
    assert "carry on here" in zalo.text
    assert "Question 2/25" in zalo.replies[-1].text
    await zalo.say("5000")
    assert "Question 3/25" in zalo.text  # the same dialogue, continued on the other channel

    officer = await contact_of(app, "telegram", "tg-1")
    assert await contact_of(app, "zalo", "zalo-1") == officer
    await telegram.say("800")  # …and back on Telegram, where it stands now
    assert "Question 4/25" in telegram.text

    async with app.db.sessions() as session:
        link = (await session.execute(select(LinkCode))).scalar_one()
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "contact.link"))
        ).scalar_one()
    assert link.used_at is not None and link.channel == "telegram"
    assert audit.contact_id == officer
    assert audit.detail["channel"] == "zalo" and audit.detail["code_channel"] == "telegram"


async def test_the_linked_channel_has_the_role_and_area(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/link {code}")
    assert "Village report" in [o.label for o in zalo.replies[-1].options]  # the officer's menu
    await zalo.say("/toi")
    assert "Village officer: Thôn Nà Rụa" in zalo.text


async def test_a_code_works_once(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    await Chat(app, "zalo-1", channel="zalo").say(f"/lienket {code}")
    other = Chat(app, "zalo-2", channel="zalo")
    await other.say(f"/lienket {code}")
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
    assert "ứng dụng bạn đã đăng ký" in zalo.text
    async with app.db.sessions() as session:
        assert (await session.execute(select(LinkCode))).first() is None


async def test_roles_of_both_accounts_are_kept(app: App, tree: Tree) -> None:
    code = await link_code(await officer_on_telegram(app, tree))
    await make_contact(app, "zalo-1", COMMUNE_OFFICER, tree.other_commune, channel="zalo")
    zalo = Chat(app, "zalo-1", channel="zalo")
    await zalo.say(f"/lienket {code}")
    officer = await contact_of(app, "telegram", "tg-1")
    async with app.db.sessions() as session:
        roles = (
            (await session.execute(select(RoleGrant.role).where(RoleGrant.contact_id == officer)))
            .scalars()
            .all()
        )
    assert sorted(roles) == [COMMUNE_OFFICER, VILLAGE_OFFICER]


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
        answer = "\n".join(m["text"] for m in zalo.sent("zl-9"))
        assert "✅ Đã liên kết" in answer
        assert "/baocao — Báo cáo thôn" in answer  # the officer's menu, as Zalo shows it
        assert await zalo.deliver(zalo.update("zl-9", "/toi")) == 200
        assert "Thôn Nà Rụa" in zalo.sent("zl-9")[-1]["text"]
