"""The console's village page (bot/channels/console/pages/village.py) through HTTP on the real
ASGI app, on both backends: the history with the diff between versions, approve and return
through the same services as /duyet (audit row, the village officer's notice), the reason's
error on the page, and who may see or act: another commune's officer gets 404 for the page and
the POSTs, a session without the console role 403, a POST without its CSRF token 403, and the
buttons only where the review service would act (the latest version, still waiting).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from bot.services.reviews import record_state
from storage.db import Database
from storage.models import VILLAGE_OFFICER, RoleGrant
from tests.console_support import console_client, csrf_of, log_in
from tests.test_reports_helpers import outbox_to, submit, submit_commune_report, vn
from tests.test_village_history import YEAR, World, build_world, file

_DIFF_FIELDS = re.compile(r'<li data-field="([a-z_]+)">')


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    built = await build_world(db)
    try:
        yield built
    finally:
        await built.app.db.dispose()


async def post(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    return await client.post(path, data=data)


def page_of(w: World, unit_id: int | None = None) -> str:
    return f"/console/village/{unit_id if unit_id is not None else w.tree.village.id}"


async def state(w: World) -> str:
    async with w.app.read_only() as reads:
        return (await record_state(reads, "village_report", f"{w.tree.village.id}:{YEAR}")).state


async def two_versions(w: World) -> int:
    """Version 1, then a correction of two figures; the id of version 2."""
    await file(w, w.tree.village)
    w.clock.set(vn(2026, 11, 26, 9))
    done = await file(w, w.tree.village, households_total=120, fund_raised_vnd=9_500_000)
    return done.submission.id


async def test_the_page_shows_every_version_and_only_the_changed_fields(world: World) -> None:
    latest = await two_versions(world)
    async with console_client(world.app) as client:
        await log_in(client, world.app, "commune-officer")
        page = await client.get(page_of(world))
        assert page.status_code == 200, page.text
        html = page.text
        assert "Thôn Nà Rụa" in html and "Phường Thục Phán" in html
        assert html.count('data-testid="version"') == 2
        assert _DIFF_FIELDS.findall(html) == ["households_total", "fund_raised_vnd"]
        assert "Tổng số hộ" in html and 'Nông Thị Lan<br><span class="muted">Cán bộ thôn' in html
        assert 'data-state="waiting"' in html
        assert f'name="submission_id" value="{latest}"' in html and 'data-testid="approve"' in html
        # In English: the same page in the staff member's other language.
        await client.post(
            "/console/lang", data={"locale": "en", "csrf": csrf_of(html), "back": page_of(world)}
        )
        english = (await client.get(page_of(world))).text
        assert "Total households" in english and "Waiting for review" in english
        assert "₫9,500,000" in english or "9,500,000" in english


async def test_approve_from_the_page(world: World) -> None:
    app = world.app
    latest = await two_versions(world)
    async with console_client(app) as client:
        await log_in(client, app, "commune-officer")
        token = csrf_of((await client.get(page_of(world))).text)
        done = await client.post(
            f"{page_of(world)}/approve", data={"csrf": token, "submission_id": str(latest)}
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"{page_of(world)}?done=approved&sid={latest}"
        after = await client.get(done.headers["location"])
        assert "✅ Đã duyệt: Thôn Nà Rụa, năm 2026 (lần gửi thứ 2)." in after.text
        assert 'data-state="approved"' in after.text and 'data-testid="approve"' not in after.text
    assert await state(world) == "approved"
    async with app.uow() as uow:
        [row] = await uow.audit.actions("review.approved")
        officer = await uow.contacts.by_identity("test", "commune-officer")
        assert officer is not None
        assert (row.contact_id, row.unit_id, row.detail["submission_id"]) == (
            officer.id,
            world.tree.village.id,
            latest,
        )
    # Approving it again from an old page: refused on the page, nothing written.
    async with console_client(app) as client:
        await log_in(client, app, "province-staff")
        token = csrf_of((await client.get(page_of(world))).text)
        again = await client.post(
            f"{page_of(world)}/approve", data={"csrf": token, "submission_id": str(latest)}
        )
        assert again.status_code == 400 and "đã được duyệt" in again.text
    async with app.uow() as uow:
        assert len(await uow.audit.actions("review.approved")) == 1


async def test_return_needs_a_reason_and_tells_the_village_officer(world: World) -> None:
    app = world.app
    latest = await two_versions(world)
    async with console_client(app) as client:
        await log_in(client, app, "commune-officer")
        token = csrf_of((await client.get(page_of(world))).text)
        empty = await client.post(
            f"{page_of(world)}/return", data={"csrf": token, "submission_id": str(latest), "reason": "  "}
        )
        assert empty.status_code == 400
        assert "ít nhất 3 ký tự" in empty.text and 'data-testid="error"' in empty.text
        assert await state(world) == "waiting" and await outbox_to(app, "village-officer") == []
        done = await client.post(
            f"{page_of(world)}/return",
            data={"csrf": token, "submission_id": str(latest), "reason": "Số hộ chưa   khớp"},
        )
        assert done.status_code == 303
        after = await client.get(done.headers["location"])
        assert "↩️ Đã trả lại: Thôn Nà Rụa" in after.text and "đã được báo lý do" in after.text
        assert 'data-state="returned"' in after.text and "Số hộ chưa khớp" in after.text
        assert "Lần gửi thứ 2 bị Hoàng Văn Dũng (Cán bộ Hội Khuyến học xã, phường) trả lại" in after.text
    assert await state(world) == "returned"
    [notice] = await outbox_to(app, "village-officer")
    assert "Số hộ chưa khớp" in notice["text"] and "lần gửi thứ 2" in notice["text"]


async def test_another_communes_officer_gets_404_for_the_page_and_the_posts(world: World) -> None:
    app = world.app
    latest = await two_versions(world)
    async with console_client(app) as client:
        await log_in(client, app, "other-commune-officer")
        assert (await client.get(page_of(world))).status_code == 404
        assert (await client.get(page_of(world, 987654))).status_code == 404  # no such unit: the same
        own = await client.get(page_of(world, world.tree.other_village.id))
        assert own.status_code == 200
        token = csrf_of(own.text)
        for action in ("approve", "return"):
            refused = await client.post(
                f"{page_of(world)}/{action}",
                data={"csrf": token, "submission_id": str(latest), "reason": "Sai số liệu"},
            )
            assert refused.status_code == 404
            # Nor through their own village's URL with this village's version.
            smuggled = await client.post(
                f"{page_of(world, world.tree.other_village.id)}/{action}",
                data={"csrf": token, "submission_id": str(latest), "reason": "Sai số liệu"},
            )
            assert smuggled.status_code == 404
    assert await state(world) == "waiting" and await outbox_to(app, "village-officer") == []


async def test_csrf_and_sessions_without_the_console_role(world: World) -> None:
    app = world.app
    latest = await two_versions(world)
    async with console_client(app) as client:
        await log_in(client, app, "commune-officer")
        token = csrf_of((await client.get(page_of(world))).text)
        no_token = await client.post(f"{page_of(world)}/approve", data={"submission_id": str(latest)})
        wrong = await client.post(
            f"{page_of(world)}/approve", data={"csrf": token + "x", "submission_id": str(latest)}
        )
        assert (no_token.status_code, wrong.status_code) == (403, 403)
        assert await state(world) == "waiting"
        # The commune role taken away, a village officer's left: the same cookie sees nothing.
        async with app.uow() as uow:
            officer = await uow.contacts.by_identity("test", "commune-officer")
            assert officer is not None
            await uow.session.execute(
                update(RoleGrant).where(RoleGrant.contact_id == officer.id).values(revoked_at=app.clock.now())
            )
            await uow.contacts.grant(officer.id, VILLAGE_OFFICER, world.tree.village.id, app.clock.now())
            await uow.commit()
        assert (await client.get(page_of(world))).status_code == 403
        post = await client.post(
            f"{page_of(world)}/approve", data={"csrf": token, "submission_id": str(latest)}
        )
        assert post.status_code == 403
    assert await state(world) == "waiting"


async def test_buttons_only_on_the_latest_waiting_version_of_those_who_review(world: World) -> None:
    app, tree = world.app, world.tree
    first = (await file(world, tree.village)).submission.id
    async with console_client(app) as client:
        await log_in(client, app, "commune-officer")
        token = csrf_of((await client.get(page_of(world))).text)
        world.clock.set(vn(2026, 11, 25, 9, 5))
        await file(world, tree.village, households_total=120)  # a correction arrives meanwhile
        stale = await post(client, f"{page_of(world)}/approve", csrf=token, submission_id=str(first))
        assert stale.status_code == 400 and "lần gửi mới hơn" in stale.text
        assert await state(world) == "waiting"
        # The commune's own report: its officer reads it, the province reviews it.
        await _commune_report(world)
        own = await client.get(page_of(world, tree.commune.id))
        assert own.status_code == 200 and 'data-form="commune_report"' in own.text
        assert 'data-testid="approve"' not in own.text and 'data-testid="return"' not in own.text
        sid = await _commune_sid(world)
        refused = await post(
            client, f"{page_of(world, tree.commune.id)}/approve", csrf=token, submission_id=str(sid)
        )
        assert refused.status_code == 403
    # Past the lock (11/12/2026) the period is closed to the village, not to its reviewers.
    world.clock.set(vn(2026, 12, 12, 9))
    async with console_client(app) as client:
        await log_in(client, app, "commune-officer")
        locked = (await client.get(page_of(world))).text
        assert 'data-testid="locked"' in locked and 'data-testid="approve"' in locked
        assert f'name="submission_id" value="{first}"' not in locked  # an older version: no buttons
        # Reopen it for the village's officers, as /duyet does: the lock goes, the act is listed.
        reopened = await post(
            client, f"{page_of(world)}/reopen", csrf=csrf_of(locked), form_key="village_report", period=YEAR
        )
        assert reopened.status_code == 303
        opened = (await client.get(page_of(world))).text
        assert 'data-testid="locked"' not in opened and 'data-testid="reopen"' not in opened
        again = await post(
            client, f"{page_of(world)}/reopen", csrf=csrf_of(locked), form_key="village_report", period=YEAR
        )
        assert again.status_code == 400 and 'data-testid="error"' in again.text
        async with app.uow() as uow:
            assert len(await uow.audit.actions("review.reopened")) == 1
    async with console_client(app) as client:
        await log_in(client, app, "province-staff")
        above = await client.get(page_of(world, tree.commune.id))
        assert 'data-testid="approve"' in above.text


async def _commune_report(w: World) -> None:
    await submit_commune_report(w.app, w.tree.commune, YEAR, vn(2026, 11, 21))


async def _commune_sid(w: World) -> int:
    async with w.app.read_only() as reads:
        latest = await reads.submissions.latest("commune_report", f"{w.tree.commune.id}:{YEAR}")
        assert latest is not None
        return latest.id


async def test_a_return_nobody_can_be_told_of_says_so(world: World) -> None:
    app, tree = world.app, world.tree
    group = (await submit(app, tree.group, YEAR, vn(2026, 11, 20))).id  # Tổ dân phố 1: no officer
    async with console_client(app) as client:
        await log_in(client, app, "commune-officer")
        path = page_of(world, tree.group.id)
        token = csrf_of((await client.get(path)).text)
        # A notice the record does not bear out is not shown.
        assert 'data-testid="notice"' not in (await client.get(f"{path}?done=approved&sid={group}")).text
        done = await post(client, f"{path}/return", csrf=token, submission_id=str(group), reason="Thiếu")
        assert done.headers["location"] == f"{path}?done=returned-untold&sid={group}"
        after = (await client.get(done.headers["location"])).text
        assert "Tổ dân phố 1 chưa có cán bộ nào dùng bot" in after
