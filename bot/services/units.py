"""The unit tree: national provinces and communes, villages from CSV files or from chat.

Provinces and communes come from the `vietnam-provinces` package and carry national codes.
Villages have no national code (DOMAIN.md): they are keyed by their internal id and matched by
(commune, folded name), because commune councils merge and rename them.
"""

from __future__ import annotations

import csv
import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.domain.i18n import N_
from bot.domain.parsing import fold
from bot.domain.permissions import Action
from bot.domain.text import clean_name
from bot.services.actor import CONSOLE, Actor
from storage.models import (
    COMMUNE,
    PROVINCE,
    RESIDENTIAL_GROUP,
    VILLAGE,
    VILLAGE_KINDS,
    Unit,
)
from storage.uow import UnitOfWork

# The 34 provinces and 3,321 communes took effect on this date (Resolution 202/2025/QH15).
ADMIN_VALID_FROM = date(2025, 7, 1)
ADMIN_PACKAGE = "vietnam-provinces"
MAX_VILLAGE_NAME = 100
MAX_UNIT_NAME = 255  # the column's width: national names are far shorter
VILLAGE_CSV_COLUMNS = ("commune_code", "village_name", "kind")
DEMO_VILLAGES_CSV = Path("units") / "demo_villages.csv"
# Xã Trường Hà, Cao Bằng (Pác Bó): the demo commune; the CSV also holds villages of a second one.
DEMO_COMMUNE_CODE = "01392"

# Vietnamese designations accepted for a village kind, with their display form. Longest first,
# so "tổ dân phố" wins over "tổ" when read off the front of a name.
_DESIGNATIONS: tuple[tuple[str, str], ...] = (
    ("tổ dân phố", RESIDENTIAL_GROUP),
    ("khu phố", RESIDENTIAL_GROUP),
    ("khóm", RESIDENTIAL_GROUP),
    ("thôn", VILLAGE),
    ("bản", VILLAGE),
    ("buôn", VILLAGE),
    ("làng", VILLAGE),
    ("xóm", VILLAGE),
    ("plei", VILLAGE),
    ("sóc", VILLAGE),
    ("ấp", VILLAGE),
    ("tổ", RESIDENTIAL_GROUP),
)


class BadVillageName(ValueError):
    """Empty, or longer than MAX_VILLAGE_NAME characters."""


class DuplicateVillage(ValueError):
    """The commune already has a village with the same folded name."""

    def __init__(self, existing: Unit) -> None:
        super().__init__(f"village {existing.name!r} already exists (id {existing.id})")
        self.existing = existing


class BadVillageKind(ValueError):
    """Not one of village, residential_group or a Vietnamese designation."""


class BadVillageCsv(ValueError):
    """The file cannot be read as a village list at all (wrong header)."""


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    data_version: str | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class DemoSeed:
    province: Unit
    commune: Unit
    villages: list[Unit]
    admin_import: ImportResult | None  # None when the units were already there
    villages_import: ImportResult


def admin_data_version() -> str:
    """The installed `vietnam-provinces` version, e.g. "2025.10.1"."""
    return importlib.metadata.version(ADMIN_PACKAGE)


def clean_village_name(name: str) -> str:
    """The name as it is kept (bot.domain.text.clean_name: NFC, no control or format characters,
    single spaces); refuse empty or over-long names."""
    cleaned = clean_name(name)
    if not cleaned:
        raise BadVillageName("empty village name")
    if len(cleaned) > MAX_VILLAGE_NAME:
        raise BadVillageName(f"village name longer than {MAX_VILLAGE_NAME} characters")
    return cleaned


def parse_village_kind(text: str) -> tuple[str, str | None]:
    """Map "village", "residential_group" or a designation ("thôn", "tổ dân phố") to
    (kind, designation); the designation is None for the English kinds."""
    folded = fold(text).replace("-", "_")
    if folded in ("village", "residential_group", "residential group"):
        return (VILLAGE if folded == "village" else RESIDENTIAL_GROUP), None
    for word, kind in _DESIGNATIONS:
        if folded == fold(word):
            return kind, word
    raise BadVillageKind(f"unknown village kind {text.strip()!r}")


def designation_from_name(name: str, kind: str) -> str | None:
    """The designation a name starts with ("Xóm Pác Bó" → "xóm"), when it agrees with `kind`."""
    folded = fold(name)
    for word, word_kind in _DESIGNATIONS:
        fw = fold(word)
        if folded == fw or folded.startswith(fw + " "):
            return word if word_kind == kind else None
    return None


def _village_designation(name: str, kind: str, given: str | None) -> str | None:
    return given if given is not None else designation_from_name(name, kind)


# --- provinces and communes -------------------------------------------------------------------


@dataclass(frozen=True)
class _AdminRow:
    code: str
    kind: str
    name: str
    division_type: str
    parent_code: str | None


def _admin_rows() -> list[_AdminRow]:
    from vietnam_provinces import Province, Ward

    rows: list[_AdminRow] = []
    for province in sorted(Province.iter_all(), key=lambda p: int(p.code)):
        pcode = f"{int(province.code):02d}"
        rows.append(_AdminRow(pcode, PROVINCE, province.name, province.division_type.value, None))
        for ward in sorted(Ward.iter_by_province(province.code), key=lambda w: int(w.code)):
            rows.append(
                _AdminRow(f"{int(ward.code):05d}", COMMUNE, ward.name, ward.division_type.value, pcode)
            )
    return rows


async def import_admin_units(uow: UnitOfWork, now: datetime) -> ImportResult:
    """Load or refresh the 34 provinces and 3,321 communes; idempotent, matched by code."""
    import vietnam_provinces

    version = admin_data_version()
    source = f"{ADMIN_PACKAGE} {version}"
    result = ImportResult(data_version=version)
    rows = _admin_rows()

    existing = await uow.units.coded()

    for kind in (PROVINCE, COMMUNE):  # provinces first: communes need their ids
        new: list[dict[str, Any]] = []
        moved: list[tuple[Unit, Unit | None]] = []
        for row in rows:
            if row.kind != kind:
                continue
            parent = existing[row.parent_code] if row.parent_code is not None else None
            name = clean_name(row.name, MAX_UNIT_NAME)
            wanted: dict[str, Any] = {
                "kind": row.kind,
                "name": name,
                "name_folded": fold(name),
                "division_type": row.division_type,
                "parent_id": parent.id if parent is not None else None,
                "valid_from": ADMIN_VALID_FROM,
                "valid_to": None,
            }
            unit = existing.get(row.code)
            if unit is None:
                new.append(wanted | {"code": row.code, "source": source, "created_at": now, "path": ""})
                result.inserted += 1
                continue
            diff = {k: v for k, v in wanted.items() if getattr(unit, k) != v}
            if not diff:
                result.unchanged += 1
                continue
            for key, value in diff.items():
                setattr(unit, key, value)
            unit.source = source
            if "parent_id" in diff:
                moved.append((unit, parent))
            result.updated += 1
        for unit, parent in moved:
            # Only communes move between provinces, and they have no coded children to carry.
            unit.path = f"{parent.path if parent is not None else '/'}{unit.id}/"
        await uow.units.flush()
        await uow.units.add_many(new, (kind,))
        if kind == PROVINCE and new:
            existing.update(await uow.units.by_codes((v["code"] for v in new), PROVINCE))

    counts = {k: sum(1 for r in rows if r.kind == k) for k in (PROVINCE, COMMUNE)}
    CONSOLE.audit(  # the national list is loaded by the operator, never from chat
        uow,
        now,
        "units.import",
        source=source,
        data_version=version,
        data_date=str(getattr(vietnam_provinces, "__data_version__", "")),
        provinces=counts[PROVINCE],
        communes=counts[COMMUNE],
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
    )
    await uow.units.flush()
    return result


# --- villages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VillageRow:
    """One village line of a CSV file, read and checked on its own."""

    line: int
    commune_code: str
    name: str
    kind: str
    designation: str | None
    extra: tuple[str, ...] = ()  # the optional columns after the three (e.g. the officer's name)


@dataclass(frozen=True)
class CsvProblem:
    """What is wrong with one line: an English message id (N_) and its values, so that the CLI
    prints it in English and the console in the staff's language. Line 0: the whole file."""

    line: int
    message: str
    params: Mapping[str, object] = field(default_factory=dict)

    def english(self) -> str:
        return f"line {self.line}: " + self.message.format(**self.params)


def read_village_rows(
    f: TextIO, filename: str, *, optional: tuple[str, ...] = (), max_lines: int | None = None
) -> tuple[list[VillageRow], list[CsvProblem]]:
    """The rows of a `commune_code,village_name,kind[,optional…]` file and the problems of the
    lines that could not be read. BadVillageCsv for a wrong header (nothing else can be read);
    with `max_lines`, reading stops at the first line past it, with a problem saying so."""
    rows: list[VillageRow] = []
    problems: list[CsvProblem] = []
    reader = csv.reader(f)
    header = next(reader, None)
    names = tuple(h.strip().lower() for h in header) if header is not None else ()
    width = len(names)
    if names[:3] != VILLAGE_CSV_COLUMNS or names[3:] != optional[: width - 3]:
        expected = ",".join(VILLAGE_CSV_COLUMNS + optional)
        raise BadVillageCsv(f"{filename}: the header must be {expected}, got {header!r}")
    line = reader.line_num
    for record in reader:
        start, line = line + 1, reader.line_num
        if max_lines is not None and start > max_lines:
            problems.append(CsvProblem(start, N_("the file has more than {n} lines"), {"n": max_lines}))
            break
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != width:
            problems.append(
                CsvProblem(start, N_("expected {n} columns, got {got}"), {"n": width, "got": len(record)})
            )
            continue
        raw_code, raw_name, raw_kind, *extra = (cell.strip() for cell in record)
        if not raw_code.isdigit() or len(raw_code) > 5:
            problems.append(CsvProblem(start, N_("bad commune code “{code}”"), {"code": raw_code}))
            continue
        try:
            name = clean_village_name(raw_name)
        except BadVillageName:
            problems.append(
                CsvProblem(
                    start,
                    N_("the village name is empty or longer than {n} characters"),
                    {"n": MAX_VILLAGE_NAME},
                )
            )
            continue
        try:
            kind, designation = parse_village_kind(raw_kind)
        except BadVillageKind:
            problems.append(
                CsvProblem(
                    start,
                    N_("unknown village kind “{kind}” (thôn, tổ dân phố, village or residential_group)"),
                    {"kind": raw_kind},
                )
            )
            continue
        rows.append(VillageRow(start, raw_code.zfill(5), name, kind, designation, tuple(extra)))
    return rows, problems


@dataclass
class VillagePlan:
    """What loading the rows would change, worked out before anything is written."""

    communes: dict[str, Unit] = field(default_factory=dict)  # by code
    new: list[dict[str, Any]] = field(default_factory=list)
    changes: list[tuple[Unit, dict[str, Any]]] = field(default_factory=list)
    unchanged: int = 0
    rows: list[VillageRow] = field(default_factory=list)  # the rows without a problem


async def plan_villages(
    uow: UnitOfWork,
    rows: Sequence[VillageRow],
    source: str,
    now: datetime,
    problems: list[CsvProblem],
    allowed: Callable[[Unit], bool] | None = None,
) -> VillagePlan:
    """Match the rows to communes and to the villages already there, by (commune, folded name).

    A row whose commune is unknown, outside `allowed`, or that repeats an earlier row adds a
    problem and is left out of the plan.
    """
    plan = VillagePlan()
    plan.communes = await uow.units.by_codes((r.commune_code for r in rows), COMMUNE)
    existing = await uow.units.villages_by_name((c.id for c in plan.communes.values()), VILLAGE_KINDS)
    seen: dict[tuple[int, str], int] = {}
    for row in rows:
        commune = plan.communes.get(row.commune_code)
        if allowed is not None and (commune is None or not allowed(commune)):
            # The same answer for a code that exists elsewhere and one that does not: the upload
            # reveals nothing outside the staff's area.
            problems.append(
                CsvProblem(
                    row.line,
                    N_("the commune code {code} is not a commune of your area"),
                    {"code": row.commune_code},
                )
            )
            continue
        if commune is None:
            problems.append(
                CsvProblem(row.line, N_("unknown commune code {code}"), {"code": row.commune_code})
            )
            continue
        folded = fold(row.name)
        first_line = seen.setdefault((commune.id, folded), row.line)
        if first_line != row.line:
            problems.append(CsvProblem(row.line, N_("same village as line {first}"), {"first": first_line}))
            continue
        plan.rows.append(row)
        designation = _village_designation(row.name, row.kind, row.designation)
        village = existing.get((commune.id, folded))
        if village is None:
            plan.new.append(
                {
                    "kind": row.kind,
                    "division_type": designation,
                    "code": None,
                    "name": row.name,
                    "name_folded": folded,
                    "parent_id": commune.id,
                    "path": "",
                    "source": source,
                    "created_at": now,
                }
            )
            continue
        wanted = {"kind": row.kind, "name": row.name, "division_type": designation}
        diff = {k: v for k, v in wanted.items() if getattr(village, k) != v}
        if diff:
            plan.changes.append((village, diff))
        else:
            plan.unchanged += 1
    return plan


async def apply_villages(uow: UnitOfWork, plan: VillagePlan) -> None:
    """Write what `plan_villages` worked out: changed villages in place, new ones in bulk."""
    for village, diff in plan.changes:
        for key, value in diff.items():
            setattr(village, key, value)
    await uow.units.flush()
    await uow.units.add_many(plan.new, VILLAGE_KINDS)


async def import_villages_csv(uow: UnitOfWork, path: Path, now: datetime) -> ImportResult:
    """Load villages from `commune_code,village_name,kind`; idempotent, matched by
    (commune, folded name). Bad rows are reported by line number; the others are imported."""
    result = ImportResult()
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows, problems = read_village_rows(f, path.name)
    plan = await plan_villages(uow, rows, f"csv {path.name}"[:64], now, problems)
    await apply_villages(uow, plan)
    result.inserted, result.updated, result.unchanged = len(plan.new), len(plan.changes), plan.unchanged
    result.errors = [p.english() for p in sorted(problems, key=lambda p: p.line)]
    CONSOLE.audit(
        uow,
        now,
        "villages.import",
        file=path.name,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        errors=len(result.errors),
    )
    await uow.units.flush()
    return result


async def add_village(
    uow: UnitOfWork, actor: Actor, commune: Unit, name: str, kind: str, now: datetime
) -> Unit:
    """Add a village or residential group to a commune (a commune officer, in chat).

    NotAllowed outside the actor's area, BadVillageName, BadVillageKind, DuplicateVillage.
    """
    if commune.kind != COMMUNE:
        raise ValueError(f"villages belong to a commune, not to a {commune.kind}")
    actor.require(Action.MANAGE_VILLAGES, commune)
    cleaned = clean_village_name(name)
    village_kind, given = parse_village_kind(kind)
    folded = fold(cleaned)
    duplicate = await uow.units.child_by_folded_name(commune.id, folded)
    if duplicate is not None and duplicate.kind in VILLAGE_KINDS:
        raise DuplicateVillage(duplicate)
    village = await uow.units.add(
        Unit(
            kind=village_kind,
            division_type=_village_designation(cleaned, village_kind, given),
            code=None,
            name=cleaned,
            name_folded=folded,
            parent_id=commune.id,
            source="chat",
            created_at=now,
        )
    )
    actor.audit(
        uow,
        now,
        "village.add",
        village.id,
        commune_id=commune.id,
        name=cleaned,
        kind=village_kind,
    )
    await uow.units.flush()
    return village


async def rename_village(uow: UnitOfWork, actor: Actor, village: Unit, new_name: str, now: datetime) -> Unit:
    """Rename a village in place: its id, and so its reports and officers, stay.

    NotAllowed outside the actor's area, BadVillageName, DuplicateVillage.
    """
    if village.kind not in VILLAGE_KINDS:
        raise ValueError(f"only villages are renamed here, not a {village.kind}")
    actor.require(Action.MANAGE_VILLAGES, village)
    cleaned = clean_village_name(new_name)
    if cleaned == village.name:
        return village
    folded = fold(cleaned)
    if village.parent_id is not None and folded != village.name_folded:
        duplicate = await uow.units.child_by_folded_name(village.parent_id, folded)
        if duplicate is not None and duplicate.id != village.id and duplicate.kind in VILLAGE_KINDS:
            raise DuplicateVillage(duplicate)
    old_name = village.name
    village.name = cleaned
    village.name_folded = folded
    # A designation read off the old name ("Xóm …") follows the name; one given explicitly stays.
    from_new = designation_from_name(cleaned, village.kind)
    if from_new is not None or designation_from_name(old_name, village.kind) is not None:
        village.division_type = from_new
    actor.audit(
        uow,
        now,
        "village.rename",
        village.id,
        old_name=old_name,
        new_name=cleaned,
    )
    await uow.units.flush()
    return village


# --- demo -----------------------------------------------------------------------------------


async def seed_demo(uow: UnitOfWork, content_dir: Path, now: datetime) -> DemoSeed:
    """Make sure the demo has units: the national list (once) and the demo villages."""
    admin: ImportResult | None = None
    if await uow.units.count(PROVINCE) == 0:
        admin = await import_admin_units(uow, now)
    villages_result = await import_villages_csv(uow, content_dir / DEMO_VILLAGES_CSV, now)
    if villages_result.errors:
        raise ValueError("demo villages: " + "; ".join(villages_result.errors))
    commune = await uow.units.by_code(DEMO_COMMUNE_CODE)
    if commune is None or commune.parent_id is None:
        raise LookupError(f"demo commune {DEMO_COMMUNE_CODE} is missing")
    province = await uow.units.get(commune.parent_id)
    if province is None:
        raise LookupError(f"province of demo commune {DEMO_COMMUNE_CODE} is missing")
    villages = await uow.units.children(commune.id, VILLAGE_KINDS)
    return DemoSeed(province, commune, villages, admin, villages_result)
