"""The content library (content/articles) loaded into the database, by the operator."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.messaging.content import SyncResult, sync_content
from storage.uow import UnitOfWork


async def sync_library(uow: UnitOfWork, content_dir: Path, now: datetime) -> SyncResult:
    """New and changed articles stored, removed ones retired (not committed). ContentError
    when a file cannot be read: then nothing is stored."""
    return await sync_content(uow, content_dir, now)
