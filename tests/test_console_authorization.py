"""Every console route, probed with another commune's ids (issue 12, item 8).

A commune officer changes the URL, a query or a form field to the id of a unit, report or invite
of the commune next door: whatever the route, the answer is 404 or 403 (or a refusal of the
input), never that commune's page, file or names. The routes are read from the app itself, so a
page added later is probed too; a parameter this test does not know makes it fail until it is
taught what a foreign value of it is.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from bot.channels.console.auth import Console
from bot.channels.console.pages import PAGES
from bot.channels.console.router import PREFIX, create_router
from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.permissions import load_grants
from bot.services.actor import CONSOLE, Actor
from bot.services.broadcasts import Audience, Message, queue_broadcast
from bot.services.invites import create_invite
from storage.db import Database
from storage.models import COMMUNE_OFFICER, MEMBER, VILLAGE_OFFICER, Unit
from storage.models_reviews import Review
from tests.console_support import console_client, csrf_of, log_in
from tests.support import Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import submit, vn

NOW = vn(2026, 12, 2, 9)
# Routes open to anyone by design (they show nothing of an area), and logging out (no id; it would
# end the probing session: tests/test_console_login.py covers it).
PUBLIC = {"/console/login", "/console/static/{name}", "/console/logout"}
# Form and query fields that carry no id (the values sent are harmless).
HARMLESS = {
    "csrf": None,
    "locale": "vi",
    "back": "/console/",
    "reason": "Số liệu chưa khớp, đề nghị sửa lại",
    "form_key": "village_report",
    "period": None,
    "show": None,
    "chart": None,
    "done": None,
    "kind": "csv",  # the downloads: the raw CSV (its unit probed), the compiled files alike
    "form": None,
    "sent": None,  # the broadcasts page's notices name only a number
    "cancelled": None,
}


def foreign_values(tree: Tree, ids: dict[str, int]) -> dict[str, list[Any]]:
    """For each id-carrying parameter, the other commune's values to try."""
    units = [tree.other_commune.id, tree.other_village.id, tree.province.id]
    return {
        "unit_id": units,
        "unit": units,
        "invite_id": [ids["invite"]],
        "submission_id": [ids["submission"]],
        "sid": [ids["submission"]],  # the village page's "done" notice names a submission
        "area": units,
        "broadcast_id": [ids["broadcast"]],
    }


@pytest.fixture
async def setup(db: Database) -> AsyncIterator[tuple[App, Tree, dict[str, int]]]:
    app = make_app(db.url, FixedClock(NOW))
    tree = await seed_tree(app)
    await make_contact(app, "commune", COMMUNE_OFFICER, tree.commune)
    saved = await submit(app, tree.other_village, "2026", NOW)
    await make_contact(app, "other-commune", COMMUNE_OFFICER, tree.other_commune)
    await make_contact(app, "other-member", MEMBER, tree.other_village)
    async with app.uow() as uow:
        invite = await create_invite(uow, CONSOLE, tree.other_village, VILLAGE_OFFICER, NOW, 14)
        other = await uow.contacts.by_identity("test", "other-commune")
        assert other is not None
        broadcast = await queue_broadcast(
            uow,
            Actor.of(other, await load_grants(uow, other.id)),
            Audience((tree.other_commune.id,)),
            Message(text="Họp chi hội"),
            now=NOW,
            send_at=NOW + timedelta(days=1),
        )
        await uow.commit()
    yield app, tree, {"invite": invite.id, "submission": saved.id, "broadcast": broadcast.id}
    await app.db.dispose()  # else its pooled connections are closed by the garbage collector, in a later test


def stranger_csv(tree: Tree) -> bytes:
    """A village for the other commune, as an uploaded file."""
    return f"commune_code,village_name,kind\n{tree.other_commune.code},Thôn Lạ,thôn\n".encode()


def console_routes(app: App) -> list[tuple[str, APIRoute]]:
    """(full path, route) of the console's own routes and of every page in PAGES."""
    own = [(r.path, r) for r in create_router(app).routes if isinstance(r, APIRoute)]
    console = Console(app)
    pages = [(PREFIX + r.path, r) for page in PAGES for r in page(console).routes if isinstance(r, APIRoute)]
    return [(path, r) for path, r in own + pages if path not in PUBLIC]


def parameters(route: APIRoute) -> dict[str, str]:
    """Every parameter the route reads from the request: name → where (path, query, form, file)."""
    found: dict[str, str] = {}
    for param in route.dependant.path_params:
        found[param.name] = "path"
    for param in route.dependant.query_params:
        found[param.name] = "query"
    for param in route.dependant.body_params:
        found[param.name] = "file" if "UploadFile" in repr(param.field_info.annotation) else "form"
    return found


async def test_every_route_refuses_another_communes_ids(setup: tuple[App, Tree, dict[str, int]]) -> None:
    app, tree, ids = setup
    foreign = foreign_values(tree, ids)
    secret_names = (tree.other_commune.name, tree.other_village.name)
    probed = 0
    async with console_client(app) as client:
        await log_in(client, app, "commune")
        token = csrf_of((await client.get("/console/", follow_redirects=True)).text)
        for full_path, route in console_routes(app):
            params = parameters(route)
            unknown = [p for p in params if p not in foreign and p not in HARMLESS and params[p] != "file"]
            assert not unknown, f"{full_path}: teach this test what a foreign {unknown} is"
            carrying = [p for p in params if p in foreign]
            for method in route.methods:
                for name in carrying or [None]:
                    for value in foreign[name] if name else [None]:
                        path = full_path
                        query: dict[str, Any] = {}
                        form: dict[str, Any] = {"csrf": token}
                        files = None
                        for p, where in params.items():
                            v = value if p == name else foreign[p][0] if p in foreign else HARMLESS.get(p)
                            if where == "path":
                                path = path.replace("{" + p + "}", str(v))
                            elif where == "query" and v is not None:
                                query[p] = v
                            elif where == "form" and v is not None:
                                form[p] = v
                            elif where == "file":
                                files = {p: ("x.csv", stranger_csv(tree), "text/csv")}
                        if method == "GET":
                            response = await client.get(path, params=query)
                        else:
                            response = await client.request(
                                method, path, params=query, data=form, files=files
                            )
                        probed += 1
                        where = f"{method} {path} {query} {name}={value}"
                        if response.status_code in (400, 403, 404, 422):
                            assert not any(n in response.text for n in secret_names), where
                            continue
                        # Accepted (a route that ignores the id, e.g. a list of one's own area):
                        # then nothing of the other commune may show, and nothing of it may change.
                        assert response.status_code in (200, 303), f"{where}: {response.status_code}"
                        body = response.text if "text" in response.headers.get("content-type", "") else ""
                        assert not any(n in body for n in secret_names), f"{where}: shows the other commune"
                        assert not re.search(r"\.(pdf|xlsx|docx|csv|png|zip)", path) or not name, where
    assert probed >= 10
    # The other commune's report is not reviewed, its invite still open, its villages unchanged.
    async with app.uow() as uow:
        reviews = await uow.session.scalar(select(func.count()).select_from(Review))
        invite = await uow.invites.get(ids["invite"])
        villages = await uow.session.scalars(select(Unit.name).where(Unit.parent_id == tree.other_commune.id))
        assert reviews == 0
        assert invite is not None and invite.revoked_at is None
        broadcast = await uow.broadcasts.get(ids["broadcast"])
        assert broadcast is not None and broadcast.cancelled_at is None
        assert "Thôn Lạ" not in set(villages)
