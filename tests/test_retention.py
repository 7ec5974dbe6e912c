"""Issue 11, item 3: the nightly prune deletes what outlived its retention period, and nothing else.

Both backends, fixed clock. Before the job existed, contacts who never consented and processed
update ids were kept forever (one contact per new web chat id: ~20 GB a day under attack).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.messaging.retention import BATCH, prune_expired
from bot.runtime.scheduler import default_jobs, jobs_for
from storage.db import Database
from storage.models import (
    VILLAGE_OFFICER,
    ChannelIdentity,
    Contact,
    DialogueState,
    OutboxMessage,
    ProcessedUpdate,
)
from storage.models_limits import InviteTry
from tests.support import Chat, make_app, seed_tree
from tests.test_reports_helpers import vn

NOW = vn(2026, 11, 20, 2, 40)


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url, FixedClock(NOW))
    try:
        yield app
    finally:
        await app.db.dispose()


async def person(
    app: App, name: str, seen: datetime, *, consent: bool = False, role_on: int | None = None
) -> int:
    """A contact with an identity, a dialogue row and a queued message, last seen at `seen`."""
    async with app.uow() as uow:
        contact = await uow.contacts.create("webchat", name, seen)
        contact.consent_at = seen if consent else None
        await uow.dialogues.save(contact.id, "onboarding", {"phase": "consent"}, seen)
        uow.outbox.add(contact.id, "webchat", name, {"text": "hi"}, seen)
        if role_on is not None:  # an officer made before consent was asked, say: a record, so kept
            await uow.contacts.grant(contact.id, VILLAGE_OFFICER, role_on, seen)
        await uow.commit()
        return contact.id


async def ids(app: App, column: object) -> set[object]:
    async with app.db.sessions() as session:
        return set((await session.execute(select(column))).scalars())  # type: ignore[call-overload]


async def test_the_prune_job_deletes_what_outlived_its_retention(app: App) -> None:
    tree = await seed_tree(app)
    old = NOW - timedelta(days=8)  # retention: 7 days for unconsented contacts and update ids
    recent = NOW - timedelta(days=6)
    gone = await person(app, "old-no-consent-0001", old)
    kept_recent = await person(app, "new-no-consent-0001", recent)
    kept_consent = await person(app, "old-consented-00001", old, consent=True)
    kept_role = await person(app, "old-officer-0000001", old, role_on=tree.village.id)
    async with app.uow() as uow:
        assert await uow.updates.first_time("telegram", "1", old)
        assert await uow.updates.first_time("telegram", "2", recent)
        # A dialogue untouched for 31 days (retention 30) goes; its contact stays.
        await uow.dialogues.save(kept_consent, "form_runner", {"answers": {}}, NOW - timedelta(days=31))
        uow.invite_tries.record(NOW - timedelta(days=31), kept_recent, None, None, "unknown")
        uow.invite_tries.record(NOW - timedelta(days=29), kept_recent, None, None, "unknown")
        await uow.commit()

    pruned = await prune_expired(app)

    assert await ids(app, Contact.id) == {kept_recent, kept_consent, kept_role}
    assert gone not in await ids(app, ChannelIdentity.contact_id)
    assert gone not in await ids(app, OutboxMessage.contact_id)
    assert await ids(app, ProcessedUpdate.update_id) == {"2"}
    assert await ids(app, DialogueState.contact_id) == {kept_recent, kept_role}
    assert len(await ids(app, InviteTry.id)) == 1
    assert pruned == 4  # a contact (with their rows), an update id, a dialogue, an invite try
    assert await prune_expired(app) == 0


async def test_a_pruned_contact_who_writes_again_starts_afresh(app: App) -> None:
    await seed_tree(app)
    chat = Chat(app, "came-back-00000001", channel="webchat")
    await chat.say("/start")
    assert "ngôn ngữ" in chat.text
    app.clock.set(NOW + timedelta(days=8))  # type: ignore[attr-defined]
    assert await prune_expired(app) >= 1
    async with app.db.sessions() as session:
        assert (await session.execute(select(func.count(Contact.id)))).scalar_one() == 0
    await chat.say("/start")  # a new contact, as if they had never come
    assert "ngôn ngữ" in chat.text


async def test_the_prune_works_in_batches(app: App) -> None:
    old = NOW - timedelta(days=30)
    async with app.uow() as uow:
        for n in range(BATCH + 7):
            await uow.updates.first_time("zalo", f"u{n}", old)
        await uow.commit()
    assert await prune_expired(app) == BATCH + 7


def test_the_jobs_are_scheduled_at_night_from_schedules_yaml() -> None:
    jobs = default_jobs()
    assert {"retention", "backup"} <= set(jobs)
    app = make_app("sqlite+aiosqlite:///:memory:")
    timed = jobs_for(app)
    for name, hour in (("retention", 2), ("backup", 2)):
        fire = timed[name].trigger.get_next_fire_time(None, NOW)
        assert fire is not None and fire.hour == hour
