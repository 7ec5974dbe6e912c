"""The nightly backup job (SQLite) and what `khuyenhoc db backup` / `db restore` share.

The work is in storage/backup.py; this module adds the settings (folder, days kept) and runs the
copy off the event loop. On PostgreSQL the job does nothing: a server's backups are the
database administrator's (pg_dump, or the hosting's snapshots; docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.domain.app import App
from bot.messaging.jobs import Job
from storage import backup as storage_backup
from storage.db import is_sqlite

log = logging.getLogger(__name__)


def back_up(app: App) -> tuple[Path, list[Path]]:
    """One backup now, then the old ones pruned: the file written and the files deleted."""
    settings = app.settings
    folder = Path(settings.backup_dir)
    now = app.clock.now()
    written = storage_backup.backup(settings.database_url, folder, now)
    return written, storage_backup.prune_backups(folder, now, settings.backup_keep_days)


async def nightly_backup(app: App) -> int:
    """Job: back a SQLite database up (setting backup_nightly); 1 when a file was written."""
    if not app.settings.backup_nightly or not is_sqlite(app.settings.database_url):
        return 0
    written, gone = await asyncio.to_thread(back_up, app)
    log.info("backup written: %s (%d old ones deleted)", written, len(gone))
    return 1


JOBS = (Job("backup", nightly_backup, "10 2 * * *"),)
