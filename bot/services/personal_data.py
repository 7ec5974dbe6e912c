"""A person's rights over their data (Law 91/2025/QH15, Decree 356/2025/NĐ-CP): see it (/dulieu),
withdraw consent and have it deleted (/xoadulieu), and nothing kept after saying no at /start.

Each takes the `Actor` asking and the contact whose data it is: a person for themselves, or the
operator at the console (`khuyenhoc contact show|erase`) answering a request made by letter.
What is deleted and what is kept is storage's (storage/repositories_personal.py); docs/privacy.md
describes it table by table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.permissions import Action, NotAllowed
from bot.services.actor import Actor
from storage.models import Contact, Unit
from storage.repositories_personal import FiledReport, KeptMessages, RoleHeld
from storage.uow import UnitOfWork

WEBCHAT = "webchat"


@dataclass(frozen=True, slots=True)
class Chat:
    channel: str
    external_id: str | None  # None for the web chat: its id is the browser's key, never shown
    since: datetime
    blocked_at: datetime | None


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Everything the bot keeps about one person, as /dulieu shows it and its file lists it."""

    contact: Contact
    home_unit: Unit | None
    chats: list[Chat]
    roles: list[RoleHeld]
    topics: list[str] | None  # None: no preferences stored (every topic)
    stopped_at: datetime | None
    reports: list[FiledReport]
    actions: list[tuple[datetime, str, int | None]]  # the audit rows naming them: when, what, unit
    messages: KeptMessages
    open_dialogue: str | None
    generated_at: datetime
    units: dict[int, str] = field(default_factory=dict)  # unit id → name, for the actions

    def as_json(self) -> bytes:
        """The file /dulieu attaches: every field, readable, in UTF-8."""
        c = self.contact

        def when(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat()

        doc: dict[str, Any] = {
            "generated_at": when(self.generated_at),
            "law": "Luật Bảo vệ dữ liệu cá nhân 91/2025/QH15",
            "contact": {
                "id": c.id,
                "display_name": c.display_name,
                "language": c.locale,
                "consent_at": when(c.consent_at),
                "created_at": when(c.created_at),
                "last_seen_at": when(c.last_seen_at),
                "home_unit": None if self.home_unit is None else self.home_unit.name,
            },
            "chats": [
                {
                    "channel": ch.channel,
                    "external_id": ch.external_id,
                    "since": when(ch.since),
                    "blocked_at": when(ch.blocked_at),
                }
                for ch in self.chats
            ],
            "roles": [
                {
                    "role": r.role,
                    "unit": r.unit.name,
                    "granted_at": when(r.granted_at),
                    "revoked_at": when(r.revoked_at),
                }
                for r in self.roles
            ],
            "subscription": {
                "topics": self.topics,
                "stopped_at": when(self.stopped_at),
            },
            "open_dialogue": self.open_dialogue,
            "messages_kept": {"count": self.messages.count, "oldest": when(self.messages.oldest)},
            "reports": [
                {
                    "form": r.form_key,
                    "unit": r.unit_name,
                    "period": r.period,
                    "version": r.version,
                    "submitted_at": when(r.submitted_at),
                    "channel": r.channel,
                    "values": r.values,
                }
                for r in self.reports
            ],
            "actions": [
                {"at": when(at), "action": action, "unit": self.units.get(unit_id) if unit_id else None}
                for at, action, unit_id in self.actions
            ],
        }
        return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Erased:
    """What a deletion did: rows changed per table, and whether the contact row went too."""

    counts: dict[str, int]
    removed: bool


def _authorize(actor: Actor, contact: Contact) -> None:
    """A person acts on their own data only; the console on anyone's."""
    actor.require_any(Action.OWN_DATA)
    if not actor.is_console and actor.contact_id != contact.id:
        raise NotAllowed(Action.OWN_DATA, reason="another person's data")


async def personal_data(uow: UnitOfWork, actor: Actor, contact: Contact, now: datetime) -> PersonalData:
    """/dulieu: what the bot keeps about `contact`. Showing it is audited."""
    _authorize(actor, contact)
    p = uow.personal
    chats = [
        Chat(i.channel, None if i.channel == WEBCHAT else i.external_id, i.created_at, i.blocked_at)
        for i in sorted(await uow.contacts.identities(contact.id), key=lambda i: i.id)
    ]
    sub = await uow.subscriptions.get(contact.id)
    dialogue = await uow.dialogues.get(contact.id)
    actions = [(a.at, a.action, a.unit_id) for a in await p.actions(contact.id)]
    unit_ids = sorted({u for _, _, u in actions if u is not None})
    data = PersonalData(
        contact=contact,
        home_unit=await uow.units.get(contact.home_unit_id) if contact.home_unit_id else None,
        chats=chats,
        roles=await p.roles_ever(contact.id),
        topics=list(sub.topics) if sub is not None else None,
        stopped_at=sub.stopped_at if sub is not None else None,
        reports=await p.reports_filed(contact.id),
        actions=actions,
        messages=await p.kept_messages(contact.id),
        open_dialogue=dialogue.flow if dialogue is not None else None,
        generated_at=now,
        units={u.id: u.name for u in await uow.units.many(unit_ids)} if unit_ids else {},
    )
    _audit(uow, actor, contact, now, "contact.data_shown")
    return data


async def erase_personal_data(uow: UnitOfWork, actor: Actor, contact: Contact, now: datetime) -> Erased:
    """/xoadulieu, after the person confirmed: consent withdrawn, personal data deleted, the
    reports they filed kept as the unit's records (storage.repositories_personal). Audited; the
    contact row stays as an empty stub that the audit rows and reports point at."""
    _authorize(actor, contact)
    counts = await _erase(uow, contact)
    _audit(uow, actor, contact, now, "contact.erase", **counts)
    return Erased(counts, removed=False)


async def forget_contact(uow: UnitOfWork, contact: Contact, now: datetime) -> Erased:
    """Delete a contact's personal data that no longer has a purpose, with no request to audit:
    someone who said no at /start, or a contact left with no chat after its last one was linked
    to another account. The row goes too when nothing that must stay points at it."""
    counts = await _erase(uow, contact)
    removed = await uow.personal.delete_if_unreferenced(contact)
    return Erased(counts, removed)


async def decline_consent(uow: UnitOfWork, contact: Contact, now: datetime) -> Erased | None:
    """The person said no at /start. Someone who never agreed is forgotten (nothing stays);
    someone who agreed before keeps their registration: withdrawing it is /xoadulieu, which
    asks for a confirmation first. None when nothing was deleted."""
    if contact.consent_at is not None:
        return None
    return await forget_contact(uow, contact, now)


async def _erase(uow: UnitOfWork, contact: Contact) -> dict[str, int]:
    counts = await uow.personal.erase(contact.id)
    contact.display_name = None
    contact.consent_at = None
    contact.home_unit_id = None
    contact.last_seen_at = None
    return counts


def _audit(
    uow: UnitOfWork, actor: Actor, contact: Contact, now: datetime, action: str, **detail: Any
) -> None:
    if actor.is_console:  # the row names the person the console acted on
        uow.audit.add(now, action, contact.id, by="console", **detail)
    else:
        actor.audit(uow, now, action, **detail)
