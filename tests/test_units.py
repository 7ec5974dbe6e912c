"""Provinces and communes from vietnam-provinces; villages from CSV and from chat."""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.services.actor import CONSOLE
from bot.services.units import (
    DEMO_COMMUNE_CODE,
    BadVillageCsv,
    BadVillageKind,
    BadVillageName,
    DuplicateVillage,
    add_village,
    admin_data_version,
    import_admin_units,
    import_villages_csv,
    parse_village_kind,
    rename_village,
    seed_demo,
)
from storage.db import Database
from storage.models import (
    COMMUNE,
    PROVINCE,
    RESIDENTIAL_GROUP,
    VILLAGE,
    VILLAGE_KINDS,
    Unit,
)
from storage.uow import UnitOfWork

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
CONTENT = Path(__file__).resolve().parent.parent / "content"
CAO_BANG = "04"
THUC_PHAN = "01273"  # Phường Thục Phán, Cao Bằng
TRUONG_HA = "01392"  # Xã Trường Hà, Cao Bằng


@pytest.fixture
async def imported(db: Database) -> Database:
    async with UnitOfWork(db) as uow:
        await import_admin_units(uow, NOW)
        await uow.commit()
    return db


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def unit_count(uow: UnitOfWork) -> int:
    return int((await uow.session.execute(select(func.count(Unit.id)))).scalar_one())


# --- provinces and communes ---------------------------------------------------------------


async def test_full_import_loads_34_provinces_and_3321_communes(db: Database) -> None:
    started = time.perf_counter()
    async with UnitOfWork(db) as uow:
        result = await import_admin_units(uow, NOW)
        await uow.commit()
    elapsed = time.perf_counter() - started

    assert (result.inserted, result.updated, result.unchanged) == (3355, 0, 0)
    assert result.data_version == admin_data_version() == "2025.10.1"
    assert elapsed < 15, f"import took {elapsed:.1f}s"

    async with UnitOfWork(db) as uow:
        assert await uow.units.count(PROVINCE) == 34
        assert await uow.units.count(COMMUNE) == 3321
        [entry] = await uow.audit.actions("units.import")
        assert entry.detail["data_version"] == "2025.10.1"
        assert entry.detail["provinces"] == 34
        assert entry.detail["communes"] == 3321
        assert entry.detail["inserted"] == 3355


async def test_imported_units_carry_codes_names_types_and_paths(imported: Database) -> None:
    async with UnitOfWork(imported) as uow:
        cao_bang = await uow.units.by_code(CAO_BANG)
        ward = await uow.units.by_code(THUC_PHAN)
        hanoi = await uow.units.by_code("01")
        assert cao_bang is not None and ward is not None and hanoi is not None

        assert (cao_bang.kind, cao_bang.name, cao_bang.division_type) == (
            PROVINCE,
            "Cao Bằng",
            "tỉnh",
        )
        assert cao_bang.parent_id is None
        assert cao_bang.path == f"/{cao_bang.id}/"
        assert hanoi.division_type == "thành phố trung ương"

        assert (ward.kind, ward.name, ward.division_type) == (COMMUNE, "Phường Thục Phán", "phường")
        assert ward.name_folded == "phuong thuc phan"
        assert ward.parent_id == cao_bang.id
        assert ward.path == f"/{cao_bang.id}/{ward.id}/"
        assert uow.units.is_within(ward, cao_bang)
        assert ward.valid_from == date(2025, 7, 1)
        assert ward.valid_to is None
        assert ward.source == "vietnam-provinces 2025.10.1"
        assert ward.created_at == NOW

        assert [u.name for u in await uow.units.search("thuc phan", [COMMUNE])] == ["Phường Thục Phán"]
        # Codes are zero-padded: two digits for provinces, five for communes.
        codes = (await uow.session.execute(select(Unit.kind, Unit.code))).all()
        assert {len(c or "") for k, c in codes if k == PROVINCE} == {2}
        assert {len(c or "") for k, c in codes if k == COMMUNE} == {5}
        # Every commune's path sits under its province's.
        bad = [
            u.code
            for u in (await uow.session.execute(select(Unit).where(Unit.kind == COMMUNE))).scalars()
            if not u.path.endswith(f"/{u.id}/") or u.path.count("/") != 3
        ]
        assert bad == []
        # Đặc khu (island special zones) are communes too.
        types = (
            await uow.session.execute(select(Unit.division_type).where(Unit.kind == COMMUNE).distinct())
        ).scalars()
        assert set(types) == {"xã", "phường", "đặc khu"}


async def test_reimport_changes_nothing(imported: Database) -> None:
    async with UnitOfWork(imported) as uow:
        before = await unit_count(uow)
        result = await import_admin_units(uow, NOW)
        await uow.commit()
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 3355)
    async with UnitOfWork(imported) as uow:
        assert await unit_count(uow) == before == 3355
        dupes = (
            await uow.session.execute(select(Unit.code).group_by(Unit.code).having(func.count(Unit.id) > 1))
        ).all()
        assert dupes == []
        assert len(await uow.audit.actions("units.import")) == 2


async def test_reimport_repairs_a_renamed_unit_and_keeps_its_id(imported: Database) -> None:
    async with UnitOfWork(imported) as uow:
        ward = await uow.units.by_code(THUC_PHAN)
        assert ward is not None
        ward_id = ward.id
        ward.name = "Phường Cũ"
        ward.name_folded = "phuong cu"
        await uow.commit()
    async with UnitOfWork(imported) as uow:
        result = await import_admin_units(uow, NOW)
        await uow.commit()
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 3354)
    async with UnitOfWork(imported) as uow:
        ward = await uow.units.by_code(THUC_PHAN)
        assert ward is not None
        assert (ward.id, ward.name, ward.name_folded) == (
            ward_id,
            "Phường Thục Phán",
            "phuong thuc phan",
        )


async def test_reimport_inserts_missing_units_under_existing_provinces(imported: Database) -> None:
    async with UnitOfWork(imported) as uow:
        ward = await uow.units.by_code(THUC_PHAN)
        assert ward is not None
        await uow.session.delete(ward)
        await uow.commit()
    async with UnitOfWork(imported) as uow:
        result = await import_admin_units(uow, NOW)
        await uow.commit()
    assert (result.inserted, result.updated, result.unchanged) == (1, 0, 3354)
    async with UnitOfWork(imported) as uow:
        ward = await uow.units.by_code(THUC_PHAN)
        cao_bang = await uow.units.by_code(CAO_BANG)
        assert ward is not None and cao_bang is not None
        assert ward.path == f"/{cao_bang.id}/{ward.id}/"


# --- villages from CSV --------------------------------------------------------------------

GOOD_CSV = """commune_code,village_name,kind
01392,Xóm Pác Bó,xóm
01392,  Xóm   Nà Mạ ,village
1392,Tổ dân phố 1,tổ dân phố
01273,Tổ dân phố 1,residential_group
01273,Thôn Nà Rụa,thôn
"""


async def test_csv_import_inserts_villages_under_their_communes(imported: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "v.csv", GOOD_CSV)
    async with UnitOfWork(imported) as uow:
        result = await import_villages_csv(uow, path, NOW)
        await uow.commit()
    assert (result.inserted, result.updated, result.unchanged, result.errors) == (5, 0, 0, [])

    async with UnitOfWork(imported) as uow:
        truong_ha = await uow.units.by_code(TRUONG_HA)
        assert truong_ha is not None
        villages = await uow.units.children(truong_ha.id, VILLAGE_KINDS)
        assert [(v.name, v.kind, v.division_type) for v in villages] == [
            ("Tổ dân phố 1", RESIDENTIAL_GROUP, "tổ dân phố"),
            ("Xóm Nà Mạ", VILLAGE, "xóm"),  # name cleaned; designation read off the name
            ("Xóm Pác Bó", VILLAGE, "xóm"),
        ]
        for v in villages:
            assert v.code is None
            assert v.path == f"{truong_ha.path}{v.id}/"
        [entry] = await uow.audit.actions("villages.import")
        assert entry.detail["inserted"] == 5


async def test_csv_import_is_idempotent(imported: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "v.csv", GOOD_CSV)
    for _ in range(2):
        async with UnitOfWork(imported) as uow:
            result = await import_villages_csv(uow, path, NOW)
            await uow.commit()
    assert (result.inserted, result.updated, result.unchanged, result.errors) == (0, 0, 5, [])
    async with UnitOfWork(imported) as uow:
        assert await unit_count(uow) == 3355 + 5


async def test_csv_reimport_matches_by_folded_name_and_updates(imported: Database, tmp_path: Path) -> None:
    async with UnitOfWork(imported) as uow:
        await import_villages_csv(uow, write_csv(tmp_path / "a.csv", GOOD_CSV), NOW)
        await uow.commit()
    async with UnitOfWork(imported) as uow:
        pac_bo = await uow.units.search("pac bo", VILLAGE_KINDS)
        pac_bo_id = pac_bo[0].id
    changed = "commune_code,village_name,kind\n01392,XÓM PÁC BÓ,xóm\n01392,Xom Na Ma,village\n"
    async with UnitOfWork(imported) as uow:
        result = await import_villages_csv(uow, write_csv(tmp_path / "b.csv", changed), NOW)
        await uow.commit()
    assert (result.inserted, result.updated, result.unchanged) == (0, 2, 0)
    async with UnitOfWork(imported) as uow:
        village = await uow.units.get(pac_bo_id)
        assert village is not None and village.name == "XÓM PÁC BÓ"
        assert await unit_count(uow) == 3355 + 5


async def test_csv_bad_rows_are_reported_with_line_numbers(imported: Database, tmp_path: Path) -> None:
    text = (
        "commune_code,village_name,kind\n"  # line 1
        "01392,Xóm Pác Bó,xóm\n"  # 2 fine
        "99999,Thôn Ma,thôn\n"  # 3 unknown commune
        "01392,Xóm Lạ,hamlet\n"  # 4 bad kind
        "\n"  # 5 blank: skipped
        "01392,,village\n"  # 6 no name
        "01392,Xóm Nà Mạ\n"  # 7 missing column
        '01392,"Xóm\nCốc Sâu",village\n'  # 8-9 a quoted newline is one record
        "01392,XOM PAC BO,village\n"  # 10 the same village twice in one file
        "abc,Thôn X,thôn\n"  # 11 bad code
        f"01392,{'x' * 101},village\n"  # 12 name too long
    )
    path = write_csv(tmp_path / "bad.csv", text)
    async with UnitOfWork(imported) as uow:
        result = await import_villages_csv(uow, path, NOW)
        await uow.commit()
    assert (result.inserted, result.updated, result.unchanged) == (2, 0, 0)
    assert [e.split(":")[0] for e in result.errors] == [
        "line 3",
        "line 4",
        "line 6",
        "line 7",
        "line 10",
        "line 11",
        "line 12",
    ]
    assert "99999" in result.errors[0]
    assert "hamlet" in result.errors[1]
    assert "line 2" in result.errors[4]
    async with UnitOfWork(imported) as uow:
        names = {v.name for v in await uow.units.search("", VILLAGE_KINDS, limit=50)}
        assert names == {"Xóm Pác Bó", "Xóm Cốc Sâu"}


async def test_csv_with_wrong_header_is_refused(imported: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", "code,name\n01392,Xóm Pác Bó\n")
    async with UnitOfWork(imported) as uow:
        with pytest.raises(BadVillageCsv):
            await import_villages_csv(uow, path, NOW)


async def test_csv_with_excel_bom_is_read(imported: Database, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("commune_code,village_name,kind\r\n01392,Bản Nưa,bản\r\n".encode("utf-8-sig"))
    async with UnitOfWork(imported) as uow:
        result = await import_villages_csv(uow, path, NOW)
    assert (result.inserted, result.errors) == (1, [])


@pytest.mark.parametrize(
    ("text", "kind", "designation"),
    [
        ("village", VILLAGE, None),
        ("Residential_Group", RESIDENTIAL_GROUP, None),
        ("thôn", VILLAGE, "thôn"),
        ("Bản", VILLAGE, "bản"),
        ("ap", VILLAGE, "ấp"),
        ("làng", VILLAGE, "làng"),
        ("xom", VILLAGE, "xóm"),
        ("buôn", VILLAGE, "buôn"),
        ("Tổ dân phố", RESIDENTIAL_GROUP, "tổ dân phố"),
        ("khu phố", RESIDENTIAL_GROUP, "khu phố"),
        ("tổ", RESIDENTIAL_GROUP, "tổ"),
    ],
)
def test_village_kinds(text: str, kind: str, designation: str | None) -> None:
    assert parse_village_kind(text) == (kind, designation)


def test_unknown_village_kind() -> None:
    with pytest.raises(BadVillageKind):
        parse_village_kind("district")


# --- villages from chat -------------------------------------------------------------------


async def test_add_and_rename_village_keeps_the_id(imported: Database) -> None:
    async with UnitOfWork(imported) as uow:
        commune = await uow.units.by_code(TRUONG_HA)
        assert commune is not None
        village = await add_village(uow, CONSOLE, commune, "  Xóm   Khuổi  Nặm ", "village", NOW)
        await uow.commit()
        village_id = village.id
    assert (village.name, village.name_folded) == ("Xóm Khuổi Nặm", "xom khuoi nam")
    assert (village.kind, village.division_type, village.code) == (VILLAGE, "xóm", None)
    assert village.path == f"{commune.path}{village.id}/"

    async with UnitOfWork(imported) as uow:
        village2 = await uow.units.get(village_id)
        assert village2 is not None
        await rename_village(uow, CONSOLE, village2, "Thôn Khuổi Nặm Mới", NOW)
        await uow.commit()

    async with UnitOfWork(imported) as uow:
        renamed = await uow.units.get(village_id)
        assert renamed is not None
        assert (renamed.name, renamed.name_folded) == ("Thôn Khuổi Nặm Mới", "thon khuoi nam moi")
        assert renamed.division_type == "thôn"
        assert renamed.parent_id == commune.id
        [added] = await uow.audit.actions("village.add")
        assert added.unit_id == village_id
        [entry] = await uow.audit.actions("village.rename")
        assert entry.unit_id == village_id
        assert entry.contact_id is None  # the operator at the console, named as such
        renaming = {"old_name": "Xóm Khuổi Nặm", "new_name": "Thôn Khuổi Nặm Mới"}
        assert entry.detail == {"by": "console", **renaming}


async def test_duplicate_village_refused(imported: Database) -> None:
    async with UnitOfWork(imported) as uow:
        commune = await uow.units.by_code(TRUONG_HA)
        other = await uow.units.by_code(THUC_PHAN)
        assert commune is not None and other is not None
        first = await add_village(uow, CONSOLE, commune, "Xóm Pác Bó", "xóm", NOW)
        second = await add_village(uow, CONSOLE, commune, "Xóm Nà Mạ", "xóm", NOW)
        with pytest.raises(DuplicateVillage) as caught:
            await add_village(uow, CONSOLE, commune, "xom pac bo", "village", NOW)
        assert caught.value.existing.id == first.id
        # The same name in another commune is another village.
        await add_village(uow, CONSOLE, other, "Xóm Pác Bó", "xóm", NOW)
        # Renaming onto a sibling's name is refused too; renaming to a new spelling is not.
        with pytest.raises(DuplicateVillage):
            await rename_village(uow, CONSOLE, second, "XÓM PÁC BÓ", NOW)
        await rename_village(uow, CONSOLE, first, "XÓM PÁC BÓ", NOW)
        assert first.name == "XÓM PÁC BÓ"


async def test_bad_village_names_refused(imported: Database) -> None:
    async with UnitOfWork(imported) as uow:
        commune = await uow.units.by_code(TRUONG_HA)
        assert commune is not None
        with pytest.raises(BadVillageName):
            await add_village(uow, CONSOLE, commune, "   ", "village", NOW)
        with pytest.raises(BadVillageName):
            await add_village(uow, CONSOLE, commune, "x" * 101, "village", NOW)
        assert (await add_village(uow, CONSOLE, commune, "x" * 100, "village", NOW)).name == "x" * 100
        with pytest.raises(BadVillageKind):
            await add_village(uow, CONSOLE, commune, "Xóm Mới", "district", NOW)
        province = await uow.units.by_code(CAO_BANG)
        assert province is not None
        with pytest.raises(ValueError, match="commune"):
            await add_village(uow, CONSOLE, province, "Xóm Mới", "village", NOW)


# --- demo ---------------------------------------------------------------------------------


async def test_seed_demo_is_idempotent(db: Database) -> None:
    for round_ in range(2):
        async with UnitOfWork(db) as uow:
            seed = await seed_demo(uow, CONTENT, NOW)
            await uow.commit()
        assert seed.commune.code == DEMO_COMMUNE_CODE
        assert seed.province.name == "Cao Bằng"
        assert 6 <= len(seed.villages) <= 10
        assert all(v.parent_id == seed.commune.id for v in seed.villages)
        assert seed.villages_import.errors == []
        if round_ == 0:
            assert seed.admin_import is not None and seed.admin_import.inserted == 3355
        else:
            assert seed.admin_import is None
            assert seed.villages_import.inserted == 0
    async with UnitOfWork(db) as uow:
        assert await uow.units.count(PROVINCE) == 34
        assert await uow.units.count(COMMUNE) == 3321
        villages = await uow.units.count(VILLAGE) + await uow.units.count(RESIDENTIAL_GROUP)
        assert 9 <= villages <= 14
