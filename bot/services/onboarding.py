"""Onboarding at scale, for staff at the console: villages (and their officers' names) from an
uploaded CSV, one invite code for every village still without an officer, the open codes of an
area and their printable slips.

Every write goes through the same rules as in chat: villages as `MANAGE_VILLAGES` allows (a
commune officer in their commune, province staff in their province's communes), codes through
`create_invite` (its permission check, its audit row per code).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bot.domain.clock import VN_TZ
from bot.domain.i18n import N_
from bot.domain.parsing import fold
from bot.domain.permissions import Action
from bot.domain.text import clean_name
from bot.reports.invite_slips import Slip
from bot.services.actor import Actor
from bot.services.invites import create_invite, require_invite
from bot.services.units import (
    VILLAGE_CSV_COLUMNS,
    BadVillageCsv,
    CsvProblem,
    apply_villages,
    plan_villages,
    read_village_rows,
)
from storage.models import VILLAGE_KINDS, VILLAGE_OFFICER, Invite, Unit
from storage.uow import Reads, UnitOfWork

# A province has 2,000-3,000 villages; a line of the file is about 60 bytes.
MAX_UPLOAD_BYTES = 1_000_000
MAX_UPLOAD_LINES = 5_000
OFFICER_COLUMN = "officer_name"
MAX_OFFICER_NAME = 100
# A name only: six digits in a row (spaces and dots between them ignored) look like a phone number.
_PHONE_LIKE = re.compile(r"\d(?:[\s.\-]?\d){5,}")


@dataclass(frozen=True, slots=True)
class VillageCode:
    village: Unit
    invite: Invite
    created: bool  # False: the village already had an open code, which is kept


@dataclass
class UploadResult:
    problems: list[CsvProblem] = field(default_factory=list)  # when any: nothing was written
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    codes: list[VillageCode] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _officer_name(raw: str, line: int, problems: list[CsvProblem]) -> str | None:
    name = clean_name(raw)
    if not name:
        return None
    if _PHONE_LIKE.search(name):
        problems.append(CsvProblem(line, N_("write the officer's name only, without a phone number")))
        return None
    if len(name) > MAX_OFFICER_NAME:
        problems.append(
            CsvProblem(line, N_("the officer's name is longer than {n} characters"), {"n": MAX_OFFICER_NAME})
        )
        return None
    return name


async def upload_villages(
    uow: UnitOfWork,
    actor: Actor,
    data: bytes,
    filename: str,
    now: datetime,
    expiry_days: int,
) -> UploadResult:
    """Load `commune_code,village_name,kind[,officer_name]` (the village CSV of `khuyenhoc units
    import`, plus an optional name) and give each listed village without an officer a code.

    All or nothing: when any line has a problem (bad line, unknown commune, a commune outside the
    actor's area, a phone number where a name belongs, a file too large or too long), nothing is
    written and every problem is returned with its line number. Villages are matched by (commune,
    folded name) as in the CLI import, so uploading the same file twice adds nothing twice. A
    village that already has an open code keeps it (see `codes_for_villages`); the officer's name
    from the file is put on it.
    NotAllowed when the actor may neither manage villages nor invite anywhere.
    """
    actor.require_any(Action.MANAGE_VILLAGES)
    actor.require_any(Action.CREATE_INVITE)
    result = UploadResult()
    if len(data) > MAX_UPLOAD_BYTES:
        kb = MAX_UPLOAD_BYTES // 1000
        result.problems.append(CsvProblem(0, N_("the file is larger than {kb} KB"), {"kb": kb}))
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.problems.append(CsvProblem(0, N_("the file is not UTF-8 text: save it as “CSV UTF-8”")))
        return result
    try:
        rows, problems = read_village_rows(
            io.StringIO(text, newline=""), filename, optional=(OFFICER_COLUMN,), max_lines=MAX_UPLOAD_LINES
        )
    except BadVillageCsv:
        header = ",".join((*VILLAGE_CSV_COLUMNS, OFFICER_COLUMN))
        result.problems.append(
            CsvProblem(
                1, N_("the first line must be {header} (the last column may be left out)"), {"header": header}
            )
        )
        return result
    names = {row.line: _officer_name(row.extra[0], row.line, problems) if row.extra else None for row in rows}
    plan = await plan_villages(
        uow,
        rows,
        f"upload {filename}"[:64],
        now,
        problems,
        allowed=lambda commune: (
            actor.may(Action.MANAGE_VILLAGES, commune) and actor.may(Action.CREATE_INVITE, commune)
        ),
    )
    if not rows and not problems:
        problems.append(CsvProblem(0, N_("the file lists no village")))
    if problems:
        result.problems = sorted(problems, key=lambda p: p.line)
        return result
    await apply_villages(uow, plan)
    found = await uow.units.villages_by_name((c.id for c in plan.communes.values()), VILLAGE_KINDS)
    listed: list[tuple[Unit, str | None]] = []
    for row in plan.rows:
        commune = plan.communes[row.commune_code]
        listed.append((found[(commune.id, fold(row.name))], names.get(row.line)))
    result.added, result.updated, result.unchanged = len(plan.new), len(plan.changes), plan.unchanged
    result.codes = await codes_for_villages(uow, actor, listed, now, expiry_days)
    actor.audit(
        uow,
        now,
        "villages.upload",
        file=filename[:100],
        communes=sorted(c.id for c in plan.communes.values()),
        inserted=result.added,
        updated=result.updated,
        unchanged=result.unchanged,
        codes_created=sum(1 for c in result.codes if c.created),
        codes_kept=sum(1 for c in result.codes if not c.created),
        names=sum(1 for _, name in listed if name),
    )
    await uow.units.flush()
    return result


async def codes_for_villages(
    uow: UnitOfWork,
    actor: Actor,
    villages: Sequence[tuple[Unit, str | None]],
    now: datetime,
    expiry_days: int,
) -> list[VillageCode]:
    """A village-officer code for each village (with the officer's name, when given) that has no
    active village officer, in the caller's transaction.

    A village whose open code (not revoked, not expired, not used up) is still there keeps it
    instead of getting a second one: a slip already handed out stays good, and asking twice never
    doubles the codes. A name given now replaces the one on the kept code. Villages with an officer
    are left out of the result.
    """
    if not villages:
        return []
    by_area: dict[str, list[tuple[Unit, str | None]]] = {}
    for village, name in villages:
        commune_path = village.path.rsplit("/", 2)[0] + "/"
        by_area.setdefault(commune_path, []).append((village, name))
    codes: list[VillageCode] = []
    for path, listed in by_area.items():
        officered = await uow.invites.units_with_role(path, VILLAGE_OFFICER)
        open_codes = await uow.invites.open_by_unit(path, VILLAGE_OFFICER, now)
        for village, name in listed:
            if village.id in officered:
                continue
            kept = open_codes.get(village.id)
            if kept is not None:
                require_invite(actor, village, VILLAGE_OFFICER)
                if name and kept.invitee_name != name:
                    kept.invitee_name = name
                codes.append(VillageCode(village, kept, created=False))
                continue
            invite = await create_invite(
                uow, actor, village, VILLAGE_OFFICER, now, expiry_days, invitee_name=name
            )
            open_codes[village.id] = invite
            codes.append(VillageCode(village, invite, created=True))
    return codes


async def codes_for_area(
    uow: UnitOfWork, actor: Actor, area: Unit, now: datetime, expiry_days: int
) -> list[VillageCode]:
    """ "Codes for all villages without an officer" in `area` (a commune, or a province: every
    village of its communes), in one transaction; see `codes_for_villages` for which are made.

    NotAllowed unless the actor may invite in `area`.
    """
    actor.require(Action.CREATE_INVITE, area)
    villages = await uow.invites.villages_of(area.path, VILLAGE_KINDS, now.astimezone(VN_TZ).date())
    codes = await codes_for_villages(uow, actor, [(v, None) for v in villages], now, expiry_days)
    actor.audit(
        uow,
        now,
        "invites.bulk",
        area.id,
        villages=len(villages),
        created=sum(1 for c in codes if c.created),
        kept=sum(1 for c in codes if not c.created),
    )
    await uow.invites.flush()
    return codes


@dataclass(frozen=True, slots=True)
class OpenCode:
    invite: Invite
    unit: Unit
    parent: Unit | None  # the village's commune


async def open_codes(reads: Reads, areas: Iterable[Unit], now: datetime) -> list[OpenCode]:
    """The codes of the areas that can still be used, with their unit and its parent."""
    rows = await reads.invites.open_in([a.path for a in areas], now)
    parent_ids = sorted({u.parent_id for _, u in rows if u.parent_id is not None})
    parents = {p.id: p for p in await reads.units.many(parent_ids)} if parent_ids else {}
    return [
        OpenCode(invite, unit, parents.get(unit.parent_id) if unit.parent_id is not None else None)
        for invite, unit in rows
    ]


def last_valid_day(invite: Invite) -> date:
    """The last day (Vietnam's calendar) the code works: one expiring at 00:00 works until the day before."""
    return (invite.expires_at.astimezone(VN_TZ) - timedelta(microseconds=1)).date()


def slips_of(codes: Iterable[OpenCode]) -> list[Slip]:
    """The printable slips of open village-officer codes, by commune and village."""
    slips = [
        Slip(
            village=c.unit.name,
            commune=c.parent.name if c.parent is not None else "",
            code=c.invite.code,
            expires=last_valid_day(c.invite),
            invitee=c.invite.invitee_name,
        )
        for c in codes
        if c.invite.role == VILLAGE_OFFICER
    ]
    return sorted(slips, key=lambda s: (fold(s.commune), fold(s.village)))
