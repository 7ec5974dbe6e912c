"""/console/onboarding through the real ASGI app, on SQLite and PostgreSQL: upload, codes for the
villages without an officer, revoke, the slips' PDF; and who may do none of it (issue 12, item 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.services.actor import CONSOLE
from bot.services.invites import create_invite
from storage.db import Database
from storage.models import COMMUNE_OFFICER, PROVINCE_STAFF, VILLAGE_OFFICER, Invite, RoleGrant
from tests.console_support import console_client, csrf_of, log_in
from tests.support import START, Tree, make_app, make_contact, seed_tree

BOT = "KhuyenHocCaoBangBot"
CSV = "commune_code,village_name,kind,officer_name\n01273,Thôn Bản Giới,thôn,Nguyễn Thị Hường\n"


@dataclass
class World:
    app: App
    tree: Tree


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    app = make_app(db.url, FixedClock(START), telegram_bot_username=BOT, zalo_bot_name="Bot Khuyến học")
    try:
        tree = await seed_tree(app)
        await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
        await make_contact(app, "other", COMMUNE_OFFICER, tree.other_commune)
        await make_contact(app, "province", PROVINCE_STAFF, tree.province, locale="en")
        await make_contact(app, "village", VILLAGE_OFFICER, tree.village)
        yield World(app, tree)
    finally:
        await app.db.dispose()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with console_client(world.app) as c:
        await log_in(c, world.app, "commune")
        yield c


async def upload(client: httpx.AsyncClient, text: str, csrf: str | None = None) -> httpx.Response:
    if csrf is None:
        csrf = csrf_of((await client.get("/console/onboarding")).text)
    data = {"csrf": csrf} if csrf else {}
    return await client.post(
        "/console/onboarding/upload", data=data, files={"file": ("thon.csv", text.encode(), "text/csv")}
    )


async def invites(app: App) -> list[Invite]:
    async with app.uow() as uow:
        return list((await uow.session.execute(select(Invite).order_by(Invite.id))).scalars())


async def test_upload_codes_and_the_open_codes_table(world: World, client: httpx.AsyncClient) -> None:
    page = await client.get("/console/onboarding")
    assert page.status_code == 200
    assert 'href="/console/onboarding"' in page.text  # the header's link
    for test_id in ("upload-file", "upload", "create-codes", "download-slips"):
        assert f'data-testid="{test_id}"' in page.text

    done = await upload(client, CSV)
    assert done.status_code == 200, done.text
    assert 'data-testid="upload-done"' in done.text
    assert "Thôn Bản Giới" in done.text and "Nguyễn Thị Hường" in done.text
    [invite] = await invites(world.app)
    assert invite.invitee_name == "Nguyễn Thị Hường"

    token = csrf_of(done.text)
    made = await client.post(
        "/console/onboarding/codes", data={"csrf": token, "unit_id": world.tree.commune.id}
    )
    assert made.status_code == 200
    # New: Tổ dân phố 1 (Thôn Nà Rụa has its officer); kept: Thôn Bản Giới's from the upload.
    assert "1 mã mới; 1 thôn giữ mã đã có" in made.text
    table = made.text.split('id="open-codes"', 1)[1]
    assert table.count('data-testid="revoke"') == 2


async def test_an_upload_with_problems_lists_them_by_line_and_saves_nothing(
    world: World, client: httpx.AsyncClient
) -> None:
    bad = "commune_code,village_name,kind\n01273,Thôn A,thôn\n01279,Xóm B,xóm\n01273,Thôn C,hamlet\n"
    page = await upload(client, bad)
    assert page.status_code == 422
    problems = page.text.split('id="upload-problems"', 1)[1].split("</ul>", 1)[0]
    assert 'data-line="3"' in problems and 'data-line="4"' in problems and 'data-line="2"' not in problems
    assert "Dòng 3: mã xã, phường 01279 không thuộc địa bàn của anh/chị" in problems
    assert "Nothing was saved" not in page.text  # the staff member reads Vietnamese
    assert await invites(world.app) == []


async def test_revoke_a_code(world: World, client: httpx.AsyncClient) -> None:
    async with world.app.uow() as uow:
        mine = await create_invite(uow, CONSOLE, world.tree.village, VILLAGE_OFFICER, START, 14)
        theirs = await create_invite(uow, CONSOLE, world.tree.other_village, VILLAGE_OFFICER, START, 14)
        await uow.commit()
    token = csrf_of((await client.get("/console/onboarding")).text)
    # Another commune's code, or one that does not exist: the same 404, and nothing changes.
    for invite_id in (theirs.id, 999_999):
        refused = await client.post(f"/console/onboarding/revoke/{invite_id}", data={"csrf": token})
        assert refused.status_code == 404
    assert (await client.post(f"/console/onboarding/revoke/{mine.id}")).status_code == 403  # no csrf
    done = await client.post(f"/console/onboarding/revoke/{mine.id}", data={"csrf": token})
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert 'data-testid="notice"' in page.text and f'data-invite="{mine.id}"' not in page.text
    revoked = {i.id: i.revoked_at for i in await invites(world.app)}
    assert revoked[mine.id] is not None and revoked[theirs.id] is None


async def test_the_slips_pdf_has_a_page_per_eight_codes_and_each_qr_opens_the_bot(
    world: World, client: httpx.AsyncClient
) -> None:
    rows = "".join(f"01273,Thôn {i},thôn,\n" for i in range(10))
    assert (await upload(client, "commune_code,village_name,kind,officer_name\n" + rows)).status_code == 200
    async with world.app.uow() as uow:  # a code of the other commune: never on this commune's slips
        await create_invite(uow, CONSOLE, world.tree.other_village, VILLAGE_OFFICER, START, 14)
        await uow.commit()
    pdf = await client.get("/console/onboarding/slips.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    doc = pdfium.PdfDocument(pdf.content)
    assert len(doc) == 2  # 10 villages
    found = set()
    for page in doc:
        found |= {r.text for r in zxingcpp.read_barcodes(page.render(scale=2.5).to_pil())}
    codes = [i.code for i in await invites(world.app) if i.unit_id != world.tree.other_village.id]
    assert found == {f"https://t.me/{BOT}?start={code}" for code in codes}
    # Another commune's id in the URL: 404, as for a unit that does not exist.
    assert (
        await client.get(f"/console/onboarding/slips.pdf?unit={world.tree.other_commune.id}")
    ).status_code == 404
    assert (await client.get("/console/onboarding?unit=999999")).status_code == 404


async def test_another_communes_ids_are_404_and_province_staff_reach_their_communes(world: World) -> None:
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune")
        token = csrf_of((await client.get("/console/onboarding")).text)
        other = world.tree.other_commune.id
        assert (await client.get(f"/console/onboarding?unit={other}")).status_code == 404
        made = await client.post("/console/onboarding/codes", data={"csrf": token, "unit_id": other})
        assert made.status_code == 404
        assert await invites(world.app) == []
    async with console_client(world.app) as client:
        await log_in(client, world.app, "province")
        page = await client.get("/console/onboarding")
        assert "Xã Trường Hà" in page.text and "Phường Thục Phán" in page.text  # communes to choose
        token = csrf_of(page.text)
        made = await client.post("/console/onboarding/codes", data={"csrf": token, "unit_id": other})
        assert made.status_code == 200 and "1 new codes" in made.text


async def test_without_a_session_csrf_or_role_nothing_happens(world: World) -> None:
    async with console_client(world.app) as client:
        assert (await client.get("/console/onboarding")).status_code == 401
        assert (await client.get("/console/onboarding/slips.pdf")).status_code == 401
        await log_in(client, world.app, "commune")
        assert (await upload(client, CSV, csrf="")).status_code == 403
        wrong = await upload(client, CSV, csrf="wrong")
        assert wrong.status_code == 403
        token = csrf_of((await client.get("/console/onboarding")).text)
        nope = await client.post("/console/onboarding/codes", data={"unit_id": world.tree.commune.id})
        assert nope.status_code == 403
        assert await invites(world.app) == []
        # The role taken away: the same session sees 403 at once.
        async with world.app.uow() as uow:
            contact = await uow.contacts.by_identity("test", "commune")
            assert contact is not None
            for grant in (
                await uow.session.execute(select(RoleGrant).where(RoleGrant.contact_id == contact.id))
            ).scalars():
                grant.revoked_at = world.app.clock.now()
            await uow.commit()
        assert (await client.get("/console/onboarding")).status_code == 403
        refused = await client.post(
            "/console/onboarding/upload",
            data={"csrf": token},
            files={"file": ("a.csv", CSV.encode(), "text/csv")},
        )
        assert refused.status_code == 403
        assert await invites(world.app) == []
