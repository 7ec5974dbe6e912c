"""Backups: SQLite through its online backup API, PostgreSQL through pg_dump / pg_restore.

SQLite: `sqlite3.Connection.backup` copies the database page by page while the bot keeps
running (a write in between restarts the copy of what changed, so the file is a consistent
snapshot); the copy goes to a temporary name first and is renamed when complete, so a crash
never leaves a half-written file under a backup's name. Files are named by date and time
(`khuyenhoc-2026-12-10-021000.db`); those older than the retention period are deleted.

PostgreSQL: `pg_dump --format=custom` when the client tools are installed (connection details
go through PG* environment variables, never the command line, where other users could read the
password); without them `PgTools.missing` explains the command to run.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.db import normalise_url
from storage.readonly import sqlite_file

PREFIX = "khuyenhoc-"
_NAME = re.compile(rf"^{PREFIX}(\d{{4}}-\d{{2}}-\d{{2}}-\d{{6}})\.(db|dump)$")
PAGES_PER_STEP = 256  # pages copied between lets-go of the lock: writers wait at most one step


class BackupError(RuntimeError):
    """A backup or restore that could not be made; the message says why and what to do."""


def backup_path(folder: Path, now: datetime, suffix: str) -> Path:
    """The file for a backup made at `now` (UTC in the name: the same on every server)."""
    return folder / f"{PREFIX}{now.astimezone(UTC):%Y-%m-%d-%H%M%S}.{suffix}"


def backups(folder: Path) -> list[tuple[datetime, Path]]:
    """The backup files in `folder`, oldest first, with the time in their name."""
    found = []
    for path in folder.glob(f"{PREFIX}*") if folder.is_dir() else []:
        m = _NAME.match(path.name)
        if m:
            found.append((datetime.strptime(m.group(1), "%Y-%m-%d-%H%M%S").replace(tzinfo=UTC), path))
    return sorted(found)


def prune_backups(folder: Path, now: datetime, keep_days: int) -> list[Path]:
    """Delete backups older than `keep_days`, never the newest one; the files deleted."""
    found = backups(folder)
    cutoff = now - timedelta(days=keep_days)
    gone = [path for at, path in found[:-1] if at < cutoff]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


# ----------------------------------------------------------------------------- SQLite


def _copy(source: sqlite3.Connection, target_file: Path) -> None:
    tmp = target_file.with_name(target_file.name + ".part")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)  # personal data: owner only
    os.close(fd)
    target = sqlite3.connect(tmp)
    try:
        source.backup(target, pages=PAGES_PER_STEP)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        ok = target.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise BackupError(f"the copy failed its check: {ok}")
    finally:
        target.close()
    os.replace(tmp, target_file)


def sqlite_backup(database: Path, folder: Path, now: datetime) -> Path:
    """A consistent copy of the SQLite file `database`, taken while it is in use."""
    if not database.exists():
        raise BackupError(f"there is no database at {database}")
    folder.mkdir(parents=True, exist_ok=True)
    target = backup_path(folder, now, "db")
    source = sqlite3.connect(database, timeout=30)
    try:
        _copy(source, target)
    finally:
        source.close()
    return target


def sqlite_restore(backup: Path, database: Path, folder: Path, now: datetime) -> Path | None:
    """Replace the database's content with `backup`'s. The current content is backed up first
    (the path returned; None when there was no database). Stop the bot before restoring."""
    check = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        ok = check.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup} is not a SQLite database: {exc}") from None
    finally:
        check.close()
    if not ok or ok[0] != "ok":
        raise BackupError(f"{backup} failed its check: {ok}")
    before = sqlite_backup(database, folder, now) if database.exists() else None
    database.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    target = sqlite3.connect(database, timeout=30)
    try:
        source.backup(target)  # page by page into the live file, under its write lock
    finally:
        target.close()
        source.close()
    return before


# ----------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PgTools:
    """How to reach a PostgreSQL database with its client tools."""

    url: str

    def env(self) -> dict[str, str]:
        u = make_url(normalise_url(self.url))
        values = {
            "PGHOST": u.host,
            "PGPORT": str(u.port) if u.port else None,
            "PGUSER": u.username,
            "PGPASSWORD": u.password,
            "PGDATABASE": u.database,
        }
        return {**os.environ, **{k: v for k, v in values.items() if v}}

    @staticmethod
    def missing(tool: str) -> str | None:
        """None when `tool` is installed; otherwise what to do instead."""
        if shutil.which(tool):
            return None
        return (
            f"{tool} is not installed here. Install the PostgreSQL client (Debian/Ubuntu: apt-get install "
            "postgresql-client, the same major version as the server), or run it where it is, e.g.\n"
            "  docker compose exec db pg_dump -U khuyenhoc --format=custom khuyenhoc > khuyenhoc.dump\n"
            "  docker compose exec -T db pg_restore -U khuyenhoc --clean --if-exists --no-owner "
            "-d khuyenhoc < khuyenhoc.dump"
        )

    def dump(self, folder: Path, now: datetime) -> Path:
        if (why := self.missing("pg_dump")) is not None:
            raise BackupError(why)
        folder.mkdir(parents=True, exist_ok=True)
        target = backup_path(folder, now, "dump")
        tmp = target.with_name(target.name + ".part")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.close(fd)
        self._run(["pg_dump", "--format=custom", "--no-owner", f"--file={tmp}"])
        os.replace(tmp, target)
        return target

    def restore(self, backup: Path) -> None:
        """Replace the database's content with the dump's, in one transaction."""
        if (why := self.missing("pg_restore")) is not None:
            raise BackupError(why)
        database = self.env().get("PGDATABASE", "")
        options = ["--clean", "--if-exists", "--no-owner", "--single-transaction"]
        self._run(["pg_restore", *options, f"--dbname={database}", str(backup)])

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, env=self.env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[:2000]}")


# ----------------------------------------------------------------------------- either


def backup(url: str, folder: Path, now: datetime) -> Path:
    """Back the database of `url` up into `folder`; the file written."""
    path = sqlite_file(normalise_url(url))
    if path is not None:
        return sqlite_backup(Path(path), folder, now)
    if normalise_url(url).startswith("sqlite"):
        raise BackupError("an in-memory database cannot be backed up")
    return PgTools(url).dump(folder, now)


def restore(url: str, backup_file: Path, folder: Path, now: datetime) -> Path | None:
    """Restore `backup_file` into the database of `url`; on SQLite, the backup of what was there."""
    path = sqlite_file(normalise_url(url))
    if path is not None:
        return sqlite_restore(backup_file, Path(path), folder, now)
    PgTools(url).restore(backup_file)
    return None
