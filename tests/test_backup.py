"""Issue 11, item 9: `khuyenhoc db backup` / `db restore` and the nightly backup.

The issue's test: back up a live database during a dialogue, restore it, and find every
submission. SQLite through the online backup API; PostgreSQL through pg_dump / pg_restore (when
the client tools are installed; without them the command explains what to run).
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.runtime.backup import back_up, nightly_backup
from bot.runtime.cli import app as cli
from storage import backup as storage_backup
from storage.migrate import upgrade
from storage.models import VILLAGE_OFFICER, Submission
from tests.conftest import BACKENDS, fresh_postgres_database
from tests.support import START, VILLAGE_REPORT_ANSWERS, Chat, make_app, make_contact, seed_tree

OFFICERS = ("officer-village", "officer-group", "officer-other")


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    else:
        async with fresh_postgres_database() as pg:
            yield pg


async def report(chat: Chat) -> None:
    """A whole village report, confirmed."""
    await chat.say("/baocao")
    await chat.press("2026")
    for answer in VILLAGE_REPORT_ANSWERS:
        await chat.say(answer)
    await chat.press("confirm")
    assert "✅" in chat.text


async def submissions(app: App) -> set[tuple[int, str, int]]:
    async with app.db.sessions() as session:
        rows = await session.execute(select(Submission.unit_id, Submission.period, Submission.version))
        return {tuple(r) for r in rows.all()}  # type: ignore[misc]


async def test_a_backup_taken_during_a_dialogue_restores_every_submission(url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, url)
    folder = tmp_path / "backups"
    app = make_app(url, FixedClock(START), backup_dir=str(folder))
    try:
        tree = await seed_tree(app)
        for ext, unit in zip(OFFICERS, (tree.village, tree.group, tree.other_village), strict=True):
            await make_contact(app, ext, VILLAGE_OFFICER, unit)
        await report(Chat(app, OFFICERS[0]))
        await report(Chat(app, OFFICERS[1]))
        before = await submissions(app)
        assert len(before) == 2

        # The third officer is halfway through their report while the backup runs.
        third = Chat(app, OFFICERS[2])
        await third.say("/baocao")
        await third.press("2026")

        async def keep_answering() -> None:
            for answer in VILLAGE_REPORT_ANSWERS[:12]:
                await third.say(answer)
                await asyncio.sleep(0)

        (written, _), _ = await asyncio.gather(asyncio.to_thread(back_up, app), keep_answering())
        for answer in VILLAGE_REPORT_ANSWERS[12:]:
            await third.say(answer)
        await third.press("confirm")
        assert len(await submissions(app)) == 3

        assert written.parent == folder and written.name.startswith("khuyenhoc-2026-11-22-")
        if app.db.dialect == "sqlite":
            assert stat.S_IMODE(os.stat(written).st_mode) == 0o600  # personal data: owner only
    finally:
        await app.db.dispose()

    # Disaster: the database is lost (a fresh, empty one in its place) …
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).unlink()
        for suffix in ("-wal", "-shm"):
            Path(url.split("///", 1)[1] + suffix).unlink(missing_ok=True)
    # … and restored from the backup.
    await asyncio.to_thread(storage_backup.restore, url, written, folder, START + timedelta(hours=1))
    restored = make_app(url)
    try:
        # Every submission made before the backup; the one confirmed after it is not in it.
        assert await submissions(restored) == before
        # The dialogue that was under way is in the copy, somewhere in the report.
        async with restored.uow() as uow:
            contact = await uow.contacts.by_identity("test", OFFICERS[2])
            assert contact is not None
            dialogue = await uow.dialogues.get(contact.id)
            assert dialogue is not None and dialogue.flow is not None
    finally:
        await restored.db.dispose()


def test_old_backups_are_deleted_but_never_the_newest(tmp_path: Path) -> None:
    for day in (1, 2, 5, 10):
        at = START.replace(day=day)
        storage_backup.backup_path(tmp_path, at, "db").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("kept")  # not a backup: never touched
    gone = storage_backup.prune_backups(tmp_path, START.replace(day=10), keep_days=7)
    assert sorted(p.name[10:20] for p in gone) == ["2026-11-01", "2026-11-02"]  # before 3/11
    assert len(storage_backup.backups(tmp_path)) == 2 and (tmp_path / "notes.txt").exists()
    # Long after the last backup, the last one is still kept.
    assert len(storage_backup.prune_backups(tmp_path, START + timedelta(days=100), keep_days=7)) == 1
    assert len(storage_backup.backups(tmp_path)) == 1


async def test_the_nightly_job_backs_up_sqlite_when_enabled(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    await asyncio.to_thread(upgrade, url)
    for enabled, written in ((False, 0), (True, 1)):
        app = make_app(url, backup_dir=str(tmp_path / "b"), backup_nightly=enabled)
        try:
            assert await nightly_backup(app) == written
        finally:
            await app.db.dispose()
    assert len(storage_backup.backups(tmp_path / "b")) == 1


async def test_the_nightly_job_leaves_postgresql_to_its_administrator(
    postgres_url: str, tmp_path: Path
) -> None:
    app = make_app(postgres_url, backup_dir=str(tmp_path / "b"))
    try:
        assert await nightly_backup(app) == 0
    finally:
        await app.db.dispose()
    assert not (tmp_path / "b").exists()


def test_the_cli_backs_up_and_restores_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = {"DATABASE_URL": f"sqlite:///{db}", "BACKUP_DIR": str(tmp_path / "b"), "CONTENT_DIR": "content"}
    upgrade(env["DATABASE_URL"])
    runner = CliRunner()
    done = runner.invoke(cli, ["db", "backup"], env=env)
    assert done.exit_code == 0, done.output
    assert "Backup written:" in done.output
    ((_, written),) = storage_backup.backups(tmp_path / "b")
    done = runner.invoke(cli, ["db", "restore", str(written)], env=env, input="n\n")
    assert done.exit_code != 0  # asked, and declined
    done = runner.invoke(cli, ["db", "restore", "--yes", str(written)], env=env)
    assert done.exit_code == 0, done.output
    assert "What was there before is kept in" in done.output and "Restored from" in done.output


def test_without_pg_dump_the_cli_explains_the_command(postgres_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"DATABASE_URL": postgres_url, "BACKUP_DIR": str(tmp_path / "b"), "PATH": str(empty)}
    done = CliRunner().invoke(cli, ["db", "backup"], env=env)
    assert done.exit_code == 1
    assert "pg_dump is not installed" in done.output and "docker compose exec db pg_dump" in done.output
