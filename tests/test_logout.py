"""Issue 11, item 6: logging out of the web chat revokes the id on the server.

The id is the browser's only credential; before, it stayed valid for ever on a shared commune
PC. Both backends; the page's button is tested in Chromium (tests/test_webchat_browser.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.domain.app import App
from bot.runtime.http import create_http_app
from storage.db import Database
from storage.models import VILLAGE_OFFICER
from tests.support import make_app, make_contact, seed_tree, webchat_id

CLIENT = "officer-browser-0000000001"


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url)
    try:
        yield app
    finally:
        await app.db.dispose()


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_http_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_a_logged_out_id_reaches_neither_the_account_nor_its_messages(
    app: App, client: httpx.AsyncClient
) -> None:
    tree = await seed_tree(app)
    stored = await webchat_id(app, CLIENT)  # the database keeps the id's keyed hash
    await make_contact(app, stored, VILLAGE_OFFICER, tree.village, channel="webchat")
    async with app.uow() as uow:
        officer = await uow.contacts.by_identity("webchat", stored)
        assert officer is not None
        uow.outbox.add(officer.id, "webchat", stored, {"text": "Mã mời cho thôn: ABCD-EFGH"}, app.clock.now())
        await uow.commit()
    poll = {"client_id": CLIENT}
    assert len((await client.get("/api/webchat/poll", params=poll)).json()["messages"]) == 1
    r = await client.post("/api/webchat/messages", json={"client_id": CLIENT, "text": "/toi"})
    assert "Thôn Nà Rụa" in str(r.json())  # the officer's account

    r = await client.post("/api/webchat/logout", json={"client_id": CLIENT})
    assert r.status_code == 200 and r.json() == {"revoked": True}

    assert (await client.get("/api/webchat/poll", params=poll)).json()["messages"] == []
    async with app.uow() as uow:
        assert await uow.contacts.by_identity("webchat", stored) is None
        (audit,) = await uow.audit.actions("identity.revoke")
        assert audit.contact_id == officer.id
        # The account itself is kept: its role, and the identity row (now unusable).
        assert [g.role for g in await uow.contacts.roles(officer.id)] == [VILLAGE_OFFICER]
        (identity,) = await uow.contacts.identities(officer.id)
        assert identity.external_id.startswith("revoked:") and identity.blocked_at is not None
    # The old id, if it was copied, is a stranger now.
    r = await client.post("/api/webchat/messages", json={"client_id": CLIENT, "text": "/toi"})
    assert "Thôn Nà Rụa" not in str(r.json())
    async with app.uow() as uow:
        stranger = await uow.contacts.by_identity("webchat", stored)
        assert stranger is not None and stranger.id != officer.id
        assert await uow.contacts.roles(stranger.id) == []


async def test_logging_out_twice_or_an_unknown_id_is_harmless(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/webchat/logout", json={"client_id": CLIENT})
    assert r.status_code == 200 and r.json() == {"revoked": False}
    assert (await client.post("/api/webchat/logout", json={"client_id": "bad id"})).status_code == 422
