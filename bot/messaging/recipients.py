"""Who receives what leaves after the request, and where: the one recipient resolver.

Three questions, answered here for every sender (broadcasts, outreach, reminders, digests,
compiled reports):

* Who holds which role where: `officers` (role holders on units or kinds of units) and
  `members_in_areas` (role holders anywhere inside some subtrees).
* Which channel identity: an officer's work notices go to every channel they use
  (`Officer.identities`), outreach to one preferred identity per person (`pick_identity`:
  Zalo first, then Telegram, then the web chat; the newest among equals). Identities that
  blocked the bot are never chosen.
* Who said stop: outreach goes only to people who agreed (consent) and did not send /dung
  (storage.repositories_outreach.outreach_allowed); the outbox sender cancels queued outreach of
  people who stopped since (`obeys_stop`).
  Officers' deadline reminders, escalations, digests and compiled reports are work, not
  outreach: /dung does not stop them.

The questions are asked of `uow.recipients` (storage.repositories_outreach.RecipientRepository),
in the caller's unit of work or in a read-only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from bot.reports.aggregate import UnitRef
from storage.models import (
    COMMUNE,
    COMMUNE_OFFICER,
    PROVINCE,
    PROVINCE_STAFF,
    VILLAGE_KINDS,
    VILLAGE_OFFICER,
)
from storage.models_outreach import OUTREACH_KINDS
from storage.uow import Reads

# ------------------------------------------------------------------------------ audiences
# Who receives each kind of work notice, in one place. These are audiences, not permissions
# (bot.domain.permissions says who may act): an admin acts everywhere but receives none of them.

# Who answers for a unit of each kind: deadline reminders go to them, escalations name them.
ANSWERS_FOR = {
    **dict.fromkeys(VILLAGE_KINDS, VILLAGE_OFFICER),
    COMMUNE: COMMUNE_OFFICER,
    PROVINCE: PROVINCE_STAFF,
}
# Who is told when the units below theirs have not reported.
ESCALATION_ROLES = (COMMUNE_OFFICER, PROVINCE_STAFF)
# Review (bot/services/reviews.py): a returned report goes back to those who answer for the unit
# that filed it; reports waiting for review are pointed out (escalations, the weekly digest) to
# the officers of the unit above it, who review them.
RETURNED_TO = ANSWERS_FOR
REVIEWED_BY = {**dict.fromkeys(VILLAGE_KINDS, COMMUNE_OFFICER), COMMUNE: PROVINCE_STAFF}
# Who receives a unit's compiled figures (the weekly digest, half-year and annual reports).
COMPILED_REPORT_ROLES = {COMMUNE: COMMUNE_OFFICER, PROVINCE: PROVINCE_STAFF}
# The Lifelong Learning Week campaign: its reminder goes to officers, its call to report to
# those who file activity reports.
CAMPAIGN_OFFICER_ROLES = (VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF)
CAMPAIGN_REPORTER_ROLES = (VILLAGE_OFFICER, COMMUNE_OFFICER)
# The dated notices of the movement's calendar (content/campaigns/*.yaml `notices:`, e.g. the
# recognition calendar): the audience each names.
CALENDAR_AUDIENCES = {
    "village_officers": (VILLAGE_OFFICER,),
    "commune_officers": (COMMUNE_OFFICER,),
    "officers": CAMPAIGN_OFFICER_ROLES,
}

# Zalo first: the messenger officers and villagers use every day (DOMAIN.md); Telegram is
# restricted in Vietnam; the web chat is for demos. Other channels come after, newest first.
CHANNEL_PREFERENCE = ("zalo", "telegram", "webchat")


def obeys_stop(kind: str) -> bool:
    """Whether a delivery of this kind is cancelled for someone who sent /dung."""
    return kind in OUTREACH_KINDS


# ------------------------------------------------------------------------------ identities


def pick_identity(rows: Sequence[tuple[str, str, datetime]]) -> tuple[str, str] | None:
    """The identity to write to, from (channel, external_id, created_at) of unblocked ones."""
    if not rows:
        return None

    def rank(row: tuple[str, str, datetime]) -> tuple[int, float]:
        channel, _, created = row
        known = channel in CHANNEL_PREFERENCE
        order = CHANNEL_PREFERENCE.index(channel) if known else len(CHANNEL_PREFERENCE)
        return order, -created.timestamp()

    channel, external_id, _ = min(rows, key=rank)
    return channel, external_id


async def reachable(reads: Reads, contact_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Each contact's preferred identity that has not blocked the bot; absent when none."""
    out: dict[int, tuple[str, str]] = {}
    for cid, rows in (await reads.recipients.identities(contact_ids)).items():
        picked = pick_identity(rows)
        if picked is not None:
            out[cid] = picked
    return out


# ------------------------------------------------------------------------------ outreach


@dataclass(frozen=True, slots=True)
class Member:
    """Someone outreach may write to, at their preferred identity."""

    contact_id: int
    locale: str
    topics: tuple[str, ...]
    channel: str
    external_id: str


async def members_in_areas(
    reads: Reads,
    area_paths: Sequence[str],
    roles: Sequence[str],
    *,
    exclude_contact_id: int | None = None,
) -> list[Member]:
    """Everyone holding one of `roles` inside the subtrees at `area_paths`, who agreed, did not
    stop, and has an unblocked identity; by contact id."""
    people = await reads.recipients.outreach_in_areas(
        area_paths, roles, exclude_contact_id=exclude_contact_id
    )
    where = await reachable(reads, [cid for cid, _, _ in people])
    return [Member(cid, locale, topics, *where[cid]) for cid, locale, topics in people if cid in where]


# ------------------------------------------------------------------------------ officers


@dataclass(frozen=True, slots=True)
class Officer:
    """An officer in a role on a unit, with every channel to reach them."""

    contact_id: int
    locale: str
    role: str
    unit: UnitRef
    identities: tuple[tuple[str, str], ...]  # (channel, external_id), not blocked


async def officers(
    reads: Reads,
    roles: Sequence[str],
    *,
    unit_ids: Sequence[int] | None = None,
    unit_kinds: Sequence[str] | None = None,
) -> list[Officer]:
    """Active role holders (on `unit_ids`, or on units of `unit_kinds`) reachable on some channel.

    No consent or /dung filter: these are the officers' work notices.
    """
    rows = await reads.recipients.role_holders(roles, unit_ids=unit_ids, unit_kinds=unit_kinds)
    reach = await reads.recipients.identities([cid for _, cid, _, _ in rows])
    return [
        Officer(cid, locale, role, UnitRef.of(unit), tuple((c, e) for c, e, _ in reach[cid]))
        for role, cid, locale, unit in rows
        if reach.get(cid)
    ]


# ------------------------------------------------------------------------------ requests


async def officers_in_area(
    reads: Reads, role: str, area_path: str, kinds: Sequence[str], on: date
) -> list[Officer]:
    """The holders of `role` on the units of `kinds` inside an area who answer for them
    (ANSWERS_FOR): those an ad hoc request asks (bot/domain/requests.py AUDIENCE_KINDS)."""
    units = await reads.requests.units_in(area_path, kinds, on)
    if not units:
        return []
    holders = await officers(reads, [role], unit_ids=[u.id for u in units])
    return [o for o in holders if ANSWERS_FOR.get(o.unit.kind) == o.role]
