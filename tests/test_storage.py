"""The storage contract, run on SQLite and on PostgreSQL (the `db` fixture is parametrised)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, StatementError

from storage.db import Database
from storage.models import (
    COMMUNE,
    PROVINCE,
    VILLAGE,
    VILLAGE_OFFICER,
    ChannelIdentity,
    Contact,
    Invite,
    OutboxMessage,
    Submission,
    Unit,
)
from storage.models_outreach import KIND_OTHER, KIND_REPLY, SENDING, SENT, Delivery
from storage.uow import UnitOfWork

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 14, 9, 30, 15, 123456, tzinfo=VN)


def unit(kind: str, name: str, folded: str, parent: Unit | None = None, **kw: object) -> Unit:
    return Unit(
        kind=kind,
        name=name,
        name_folded=folded,
        parent_id=parent.id if parent else None,
        created_at=NOW,
        **kw,
    )


async def make_tree(db: Database) -> dict[str, int]:
    """Cao Bằng › Xã Trường Hà › {Xóm Pác Bó, Xóm Nà Mạ}; Cao Bằng › Phường Thục Phán › Tổ 1."""
    async with UnitOfWork(db) as uow:
        u = uow.units
        province = await u.add(unit(PROVINCE, "Cao Bằng", "cao bang", code="04"))
        commune = await u.add(unit(COMMUNE, "Xã Trường Hà", "xa truong ha", province, code="01392"))
        pac_bo = await u.add(unit(VILLAGE, "Xóm Pác Bó", "xom pac bo", commune))
        na_ma = await u.add(unit(VILLAGE, "Xóm Nà Mạ", "xom na ma", commune))
        ward = await u.add(unit(COMMUNE, "Phường Thục Phán", "phuong thuc phan", province))
        group = await u.add(unit(VILLAGE, "Tổ 1", "to 1", ward))
        ids = {
            "province": province.id,
            "commune": commune.id,
            "pac_bo": pac_bo.id,
            "na_ma": na_ma.id,
            "ward": ward.id,
            "group": group.id,
        }
        await uow.commit()
    return ids


async def make_contact(db: Database, external_id: str = "tg-1") -> int:
    async with UnitOfWork(db) as uow:
        contact = await uow.contacts.create("telegram", external_id, NOW, "Chị Lan")
        await uow.commit()
        return contact.id


# Units -----------------------------------------------------------------------------------------


async def test_units_materialised_path(db: Database) -> None:
    ids = await make_tree(db)
    async with UnitOfWork(db) as uow:
        province = await uow.units.get(ids["province"])
        commune = await uow.units.get(ids["commune"])
        pac_bo = await uow.units.get(ids["pac_bo"])
        ward = await uow.units.get(ids["ward"])
        assert province and commune and pac_bo and ward
        assert province.path == f"/{province.id}/"
        assert commune.path == f"/{province.id}/{commune.id}/"
        assert pac_bo.path == f"/{province.id}/{commune.id}/{pac_bo.id}/"

        within = uow.units.is_within
        assert within(pac_bo, commune) and within(pac_bo, province) and within(commune, commune)
        assert not within(commune, pac_bo)
        assert not within(pac_bo, ward)

        assert [a.id for a in await uow.units.ancestors(pac_bo)] == [province.id, commune.id]
        assert await uow.units.ancestors(province) == []

        assert (await uow.units.by_code("01392")) is commune
        assert await uow.units.by_code("99999") is None
        assert await uow.units.count() == 6
        assert await uow.units.count(VILLAGE) == 3
        children = await uow.units.children(commune.id)
        assert [c.name for c in children] == ["Xóm Nà Mạ", "Xóm Pác Bó"]  # by folded name
        assert [r.id for r in await uow.units.children(None)] == [province.id]


async def test_units_is_within_does_not_confuse_id_prefixes(db: Database) -> None:
    """Unit 1's subtree must not contain unit 12: the path keeps its slashes."""
    async with UnitOfWork(db) as uow:
        units = [await uow.units.add(unit(PROVINCE, f"T{i}", f"t{i}")) for i in range(12)]
        first, twelfth = units[0], units[11]
        assert not uow.units.is_within(twelfth, first)
        assert uow.units.is_within(first, first)


async def test_units_search_on_folded_names(db: Database) -> None:
    ids = await make_tree(db)
    async with UnitOfWork(db) as uow:
        found = await uow.units.search("pac bo", [VILLAGE])
        assert [u.id for u in found] == [ids["pac_bo"]]
        # Folded search finds every village with "xom"; kinds filter, parent filter, limit.
        assert {u.id for u in await uow.units.search("xom", [VILLAGE])} == {
            ids["pac_bo"],
            ids["na_ma"],
        }
        assert await uow.units.search("xom", [COMMUNE]) == []
        assert [u.id for u in await uow.units.search("", [VILLAGE], parent_id=ids["ward"])] == [ids["group"]]
        assert len(await uow.units.search("", [VILLAGE, COMMUNE, PROVINCE], limit=2)) == 2
        # LIKE wildcards typed by a user are not wildcards.
        assert len(await uow.units.search("%", [VILLAGE])) == 3
        assert await uow.units.search("x_m", [VILLAGE]) == []
        # Shorter names first: the closest match leads.
        ordered = await uow.units.search("a", [COMMUNE])
        assert [u.id for u in ordered] == [ids["commune"], ids["ward"]]


async def test_unit_code_unique(db: Database) -> None:
    await make_tree(db)
    async with UnitOfWork(db) as uow:
        with pytest.raises(IntegrityError):
            await uow.units.add(unit(COMMUNE, "Another", "another", code="01392"))


# Contacts, identities, roles ------------------------------------------------------------------


async def test_contacts_and_identities(db: Database) -> None:
    contact_id = await make_contact(db, "tg-42")
    async with UnitOfWork(db) as uow:
        found = await uow.contacts.by_identity("telegram", "tg-42")
        assert found is not None and found.id == contact_id
        assert found.display_name == "Chị Lan" and found.locale == "vi"
        assert await uow.contacts.by_identity("zalo", "tg-42") is None
        # The same person on another channel: a second identity for one contact.
        uow.session.add(
            ChannelIdentity(contact_id=contact_id, channel="zalo", external_id="z-42", created_at=NOW)
        )
        await uow.commit()
    async with UnitOfWork(db) as uow:
        zalo = await uow.contacts.by_identity("zalo", "z-42")
        assert zalo is not None and zalo.id == contact_id
        assert {(i.channel, i.external_id) for i in await uow.contacts.identities(contact_id)} == {
            ("telegram", "tg-42"),
            ("zalo", "z-42"),
        }


async def test_channel_identity_unique(db: Database) -> None:
    await make_contact(db, "tg-7")
    async with UnitOfWork(db) as uow:
        with pytest.raises(IntegrityError):
            await uow.contacts.create("telegram", "tg-7", NOW)
    async with UnitOfWork(db) as uow:
        # Same external id on another channel is another person.
        other = await uow.contacts.create("zalo", "tg-7", NOW)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        count = len((await uow.session.execute(select(Contact))).scalars().all())
        assert count == 2
        first = await uow.contacts.by_identity("telegram", "tg-7")
        assert first is not None and first.id != other.id


async def test_role_grants(db: Database) -> None:
    ids = await make_tree(db)
    contact_id = await make_contact(db)
    async with UnitOfWork(db) as uow:
        grant = await uow.contacts.grant(contact_id, VILLAGE_OFFICER, ids["pac_bo"], NOW)
        again = await uow.contacts.grant(contact_id, VILLAGE_OFFICER, ids["pac_bo"], NOW)
        assert again.id == grant.id  # granting twice keeps one row
        await uow.contacts.grant(contact_id, VILLAGE_OFFICER, ids["na_ma"], NOW)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        roles = await uow.contacts.roles(contact_id)
        assert [(r.role, r.unit_id) for r in roles] == [
            (VILLAGE_OFFICER, ids["pac_bo"]),
            (VILLAGE_OFFICER, ids["na_ma"]),
        ]
        officers = await uow.contacts.with_role_in(VILLAGE_OFFICER, [ids["pac_bo"]])
        assert [c.id for c in officers] == [contact_id]
        assert await uow.contacts.with_role_in(VILLAGE_OFFICER, [ids["group"]]) == []
        roles[0].revoked_at = NOW + timedelta(days=1)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert [r.unit_id for r in await uow.contacts.roles(contact_id)] == [ids["na_ma"]]
        # Granting again restores the revoked grant.
        restored = await uow.contacts.grant(contact_id, VILLAGE_OFFICER, ids["pac_bo"], NOW)
        assert restored.revoked_at is None
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert len(await uow.contacts.roles(contact_id)) == 2


# Invites ---------------------------------------------------------------------------------------


async def make_invite(db: Database, code: str, max_uses: int = 1) -> int:
    """An invite to Xóm Pác Bó; returns the unit's id."""
    ids = await make_tree(db)
    async with UnitOfWork(db) as uow:
        await uow.invites.add(
            Invite(
                code=code,
                unit_id=ids["pac_bo"],
                role=VILLAGE_OFFICER,
                max_uses=max_uses,
                expires_at=NOW + timedelta(days=14),
                created_at=NOW,
            )
        )
        await uow.commit()
    return ids["pac_bo"]


async def use_invite(db: Database, code: str) -> bool:
    async with UnitOfWork(db) as uow:
        invite = await uow.invites.by_code(code)
        assert invite is not None
        used = await uow.invites.use(invite)
        await uow.commit()
        return used


async def test_invite_use_is_counted_once(db: Database) -> None:
    await make_invite(db, "ABCD2345")
    assert await use_invite(db, "ABCD2345") is True
    assert await use_invite(db, "ABCD2345") is False
    async with UnitOfWork(db) as uow:
        invite = await uow.invites.by_code("ABCD2345")
        assert invite is not None and invite.uses == 1
        assert await uow.invites.by_code("NOPE0000") is None


async def test_invite_use_concurrent(db: Database) -> None:
    """Two transactions racing for the last use of an invite: exactly one wins."""
    await make_invite(db, "RACE2345")
    results = await asyncio.gather(use_invite(db, "RACE2345"), use_invite(db, "RACE2345"))
    assert sorted(results) == [False, True]


async def test_invite_multiple_uses(db: Database) -> None:
    await make_invite(db, "MANY2345", max_uses=3)
    results = [await use_invite(db, "MANY2345") for _ in range(4)]
    assert results == [True, True, True, False]


async def test_invite_code_unique(db: Database) -> None:
    unit_id = await make_invite(db, "SAME2345")
    async with UnitOfWork(db) as uow:
        with pytest.raises(IntegrityError):
            await uow.invites.add(
                Invite(
                    code="SAME2345",
                    unit_id=unit_id,
                    role=VILLAGE_OFFICER,
                    expires_at=NOW,
                    created_at=NOW,
                )
            )


# Dialogue state --------------------------------------------------------------------------------


async def test_dialogue_state_round_trip(db: Database) -> None:
    contact_id = await make_contact(db)
    state: dict[str, Any] = {
        "step": "so_hoi_vien",
        "answers": {"so_hoi_vien": 125, "ty_le": 0.75, "ghi_chu": "Thôn đã họp — tốt 👍"},
        "history": ["start", "chon_thon", 3],
        "confirmed": False,
        "pending": None,
    }
    async with UnitOfWork(db) as uow:
        assert await uow.dialogues.get(contact_id) is None
        await uow.dialogues.save(contact_id, "village_report", state, NOW)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        row = await uow.dialogues.get(contact_id)
        assert row is not None
        assert (row.flow, row.state, row.updated_at) == ("village_report", state, NOW)
        changed = {**state, "step": "xac_nhan", "answers": {"so_hoi_vien": 130, "extra": [1, 2]}}
        await uow.dialogues.save(contact_id, None, changed, NOW + timedelta(minutes=5))
        await uow.commit()
    async with UnitOfWork(db) as uow:
        row = await uow.dialogues.get(contact_id)
        assert row is not None
        assert (row.flow, row.state) == (None, changed)
        assert row.updated_at == NOW + timedelta(minutes=5)


async def test_uncommitted_work_is_rolled_back(db: Database) -> None:
    contact_id = await make_contact(db)
    async with UnitOfWork(db) as uow:
        await uow.dialogues.save(contact_id, "x", {"a": 1}, NOW)
        # no commit
    async with UnitOfWork(db) as uow:
        assert await uow.dialogues.get(contact_id) is None


# Submissions -----------------------------------------------------------------------------------


async def test_submission_versions_and_history(db: Database) -> None:
    ids = await make_tree(db)
    contact_id = await make_contact(db)
    record = f"{ids['pac_bo']}:2026-H1"
    for i, members in enumerate([100, 110, 105]):
        async with UnitOfWork(db) as uow:
            form_version = await uow.submissions.form_version(
                "village_report", "d1", {"fields": ["members"]}, NOW
            )
            saved = await uow.submissions.add_version(
                Submission(
                    form_key="village_report",
                    record_key=record,
                    unit_id=ids["pac_bo"],
                    period="2026-H1",
                    form_version_id=form_version.id,
                    values={"members": members},
                    submitted_by_contact_id=contact_id,
                    submitted_at=NOW + timedelta(hours=i),
                    channel="telegram",
                )
            )
            assert saved.version == i + 1
            await uow.commit()
    async with UnitOfWork(db) as uow:
        history = await uow.submissions.history("village_report", record)
        assert [(s.version, s.values["members"]) for s in history] == [(1, 100), (2, 110), (3, 105)]
        assert len({s.form_version_id for s in history}) == 1  # same definition, one row
        latest = await uow.submissions.latest("village_report", record)
        assert latest is not None and latest.version == 3
        by_unit = await uow.submissions.latest_for_unit("village_report", ids["pac_bo"])
        assert by_unit is not None and by_unit.version == 3
        assert await uow.submissions.count("village_report") == 3
        assert await uow.submissions.latest("village_report", "no-such") is None


async def test_submission_version_unique(db: Database) -> None:
    """Two writers giving the same version number: the database refuses the second."""
    ids = await make_tree(db)

    def sub(version: int) -> Submission:
        return Submission(
            form_key="f",
            record_key="r",
            version=version,
            unit_id=ids["na_ma"],
            period="2026",
            values={},
            submitted_at=NOW,
        )

    async with UnitOfWork(db) as uow:
        uow.session.add(sub(1))
        await uow.session.flush()
        uow.session.add(sub(1))
        with pytest.raises(IntegrityError):
            await uow.session.flush()


# Time ------------------------------------------------------------------------------------------


async def test_utc_datetime_round_trip(db: Database) -> None:
    vn_time = datetime(2026, 1, 15, 7, 5, 9, 987654, tzinfo=VN)
    async with UnitOfWork(db) as uow:
        contact = await uow.contacts.create("webchat", "w-1", vn_time)
        contact.consent_at = datetime(2026, 1, 15, 0, 5, 9, 987654, tzinfo=UTC)
        await uow.commit()
        contact_id = contact.id
    async with UnitOfWork(db) as uow:
        uow.session.expire_all()
        row = await uow.contacts.get(contact_id)
        assert row is not None
        assert row.created_at == vn_time  # the same instant
        assert row.created_at.tzinfo is not None
        assert row.created_at.utcoffset() == timedelta(0)
        assert row.created_at.astimezone(VN).hour == 7
        assert row.consent_at == vn_time
        # Comparisons in SQL work on instants, whatever zone the parameter has.
        q = select(Contact.id).where(Contact.created_at < datetime(2026, 1, 15, 0, 6, tzinfo=UTC))
        assert (await uow.session.execute(q)).scalars().all() == [contact_id]


async def test_naive_datetime_refused(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.session.add(Contact(created_at=datetime(2026, 1, 1, 12, 0)))
        with pytest.raises(StatementError, match="naive"):
            await uow.session.flush()


# Processed updates and outbox -------------------------------------------------------------------


async def test_processed_updates(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        assert await uow.updates.first_time("telegram", "1001", NOW) is True
        assert await uow.updates.first_time("telegram", "1001", NOW) is False
        assert await uow.updates.first_time("zalo", "1001", NOW) is True
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert await uow.updates.first_time("telegram", "1001", NOW) is False
        assert await uow.updates.first_time("telegram", "1002", NOW) is True


async def test_outbox_add(db: Database) -> None:
    contact_id = await make_contact(db)
    async with UnitOfWork(db) as uow:
        uow.outbox.add(contact_id, "telegram", "tg-1", {"text": "Xin chào"}, NOW)
        uow.outbox.add(
            contact_id, "telegram", "tg-1", {"text": "Nhắc lại"}, NOW, not_before=NOW + timedelta(1)
        )
        uow.outbox.add(contact_id, "zalo", "z-1", {"text": "other"}, NOW)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        pending, cursor = await uow.outbox.pending_for("telegram", "tg-1", NOW)
        # The reminder for tomorrow is not shown yet, and the cursor stays before it.
        assert [m.payload["text"] for m in pending] == ["Xin chào"]
        first = pending[0]
        assert first.sent_at is None and first.attempts == 0 and first.not_before is None
        assert cursor == first.id
        later, cursor = await uow.outbox.pending_for("telegram", "tg-1", NOW + timedelta(days=1), first.id)
        assert [m.payload["text"] for m in later] == ["Nhắc lại"]
        assert later[0].not_before == NOW + timedelta(days=1)
        assert await uow.outbox.pending_for("telegram", "tg-1", NOW + timedelta(2), cursor) == ([], cursor)
        total = (await uow.session.execute(select(OutboxMessage))).scalars().all()
        assert len(total) == 3


async def test_outbox_rolled_back_with_its_transaction(db: Database) -> None:
    contact_id = await make_contact(db)
    async with UnitOfWork(db) as uow:
        uow.outbox.add(contact_id, "telegram", "tg-1", {"text": "lost"}, NOW)
        await uow.session.flush()
    async with UnitOfWork(db) as uow:
        assert await uow.outbox.pending_for("telegram", "tg-1", NOW) == ([], 0)


async def test_audit_log(db: Database) -> None:
    contact_id = await make_contact(db)
    async with UnitOfWork(db) as uow:
        uow.audit.add(NOW, "invite_used", contact_id=contact_id, code="ABCD2345")
        uow.audit.add(NOW, "role_granted", contact_id=contact_id, role=VILLAGE_OFFICER)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        entries = await uow.audit.actions("invite_used")
        assert [(e.action, e.detail) for e in entries] == [("invite_used", {"code": "ABCD2345"})]
        assert len(await uow.audit.actions()) == 2
        assert entries[0].at == NOW


async def test_backends_reported(db: Database) -> None:
    assert db.dialect in {"sqlite", "postgresql"}


async def test_the_step_lock_says_whether_replies_wait(db: Database) -> None:
    """`lock_with_dialogue` answers, with the lock, what `replies_waiting` answers: replies to this
    contact on this channel that are queued or being sent (other channels, other kinds, and
    replies already sent do not count)."""
    contact_id = await make_contact(db)
    async with UnitOfWork(db) as uow:
        await uow.contacts.ensure("telegram", "tg-1", NOW, locale="vi")
        await uow.outbox.insert([(contact_id, "zalo", "z-1", {"text": "a"})], kind=KIND_REPLY, now=NOW)
        await uow.outbox.insert([(contact_id, "telegram", "tg-1", {"text": "b"})], kind=KIND_OTHER, now=NOW)
        await uow.commit()

    async def waiting() -> tuple[bool, bool]:
        async with UnitOfWork(db) as uow:
            locked = await uow.contacts.lock_with_dialogue("telegram", "tg-1")
            assert locked is not None and locked.contact.id == contact_id
            return locked.replies_waiting, await uow.outbox.replies_waiting(contact_id, "telegram")

    assert await waiting() == (False, False)
    async with UnitOfWork(db) as uow:
        mine = [(contact_id, "telegram", "tg-1", {"text": "c"})]
        (reply,) = await uow.outbox.insert(mine, kind=KIND_REPLY, now=NOW)
        await uow.commit()
    assert await waiting() == (True, True)
    for status, expected in ((SENDING, True), (SENT, False)):
        async with UnitOfWork(db) as uow:
            q = update(Delivery).where(Delivery.outbox_id == reply).values(status=status)
            await uow.session.execute(q)
            await uow.commit()
        assert await waiting() == (expected, expected)


async def test_every_step_finds_waiting_replies_by_contact(sqlite_db: Database) -> None:
    """The step's lock query asks whether replies to the person wait in the outbox; SQLite must
    answer from the contact's own index entries, not by scanning the channel's queued replies
    (what it did before migration 0006, which made every step slower during a long outage)."""
    from storage.repositories import _LOCK_CONTACT_WITH_DIALOGUE

    async with sqlite_db.engine.connect() as conn:
        compiled = _LOCK_CONTACT_WITH_DIALOGUE.compile(dialect=conn.dialect)
        params = compiled.construct_params({"channel": "telegram", "external_id": "42"})
        positional = tuple(params[name] for name in compiled.positiontup or ())
        rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), positional)
        plan = [str(row[-1]) for row in rows]
    searches = [step for step in plan if "deliveries" in step]
    assert searches and all("ix_deliveries_contact_reply" in step for step in searches), plan
