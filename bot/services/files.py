"""Files kept for the person they were made for, so that a web chat link still works later.

The web chat shows a reply's files at once, but its page keeps only text and links across a
reload: each file a reply carries is kept on the server under an unguessable id bound to the
contact (storage/models_files.py), and the page downloads it again from
GET /api/webchat/files/{id}. Files queued for later (a compiled report after its deadline) get
their ids when they are queued (bot/messaging/outbox.py). Like logging out, this is done for the
person themselves: there is no permission to check, and no audit row (the file is a copy of
what they were just given).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.domain.messages import Attachment
from storage.models_files import Download, KeptFileRepository
from storage.uow import UnitOfWork


async def keep_files(
    uow: UnitOfWork, contact_id: int, files: Sequence[Attachment], now: datetime
) -> list[str | None]:
    """An id per file, in order; None for a file that is not kept (`Attachment.keep`)."""
    keys: list[str | None] = []
    for f in files:
        if not f.keep:
            keys.append(None)
            continue
        stored = await uow.files.store(f.filename, f.content_type, f.data, now)
        keys.append(await uow.kept_files.keep(contact_id, stored.id, f.filename, f.content_type, now))
    return keys


async def kept_file(
    files: KeptFileRepository, key: str, channel: str, external_id: str, now: datetime, days: int
) -> Download | None:
    """The file `key` for the identity asking, unless it is someone else's or older than `days`."""
    return await files.download(key, channel, external_id, now - timedelta(days=days))
