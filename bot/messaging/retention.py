"""The nightly prune: what is kept only for a while is deleted once its retention period is over.

Contacts who never consented (and hold no role, filed nothing, appear in no audit row) are
deleted `unconsented_contact_retention_days` after they last wrote, with their channel
identities, dialogue and queued messages: each new web chat id is a contact, so without this
anyone could grow the database without bound (issue 11). Processed update ids, dialogue rows
and wrong invite codes go after their own periods (settings); messages the bot sent (outbox rows
and their deliveries) `sent_message_retention_days` after they were queued, once final (a
broadcast keeps its counts: OutboxRepository.delete); compiled files kept for the web chat's
links after `kept_file_days`, with the stored files nothing has used for as long. Deletes run in
batches, each its own short transaction, so that dialogues carry on between them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.domain.app import App
from bot.messaging.jobs import Job, scheduled_for
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

BATCH = 500


async def _in_batches(app: App, prune: Callable[[UnitOfWork], Awaitable[int]]) -> int:
    total = 0
    while True:
        async with app.uow() as uow:
            n = await prune(uow)
            await uow.commit()
        total += n
        if n < BATCH:
            return total


async def prune_expired(app: App) -> int:
    """Job: delete what has outlived its retention period; the number of rows deleted."""
    settings = app.settings
    now = scheduled_for(app)
    contacts_before = now - timedelta(days=settings.unconsented_contact_retention_days)
    updates_before = now - timedelta(days=settings.processed_update_retention_days)
    # Never a dialogue the engine would still continue or explain as expired.
    dialogue_days = max(
        timedelta(days=settings.dialogue_retention_days), timedelta(hours=settings.dialogue_expiry_hours)
    )
    dialogues_before = now - dialogue_days
    tries_before = now - timedelta(days=settings.invite_try_retention_days)
    files_before = now - timedelta(days=settings.kept_file_days)
    sent_before = now - timedelta(days=settings.sent_message_retention_days)
    counts = {
        "contacts": await _in_batches(
            app, lambda uow: uow.retention.prune_unconsented(contacts_before, BATCH)
        ),
        "updates": await _in_batches(app, lambda uow: uow.retention.prune_updates(updates_before, BATCH)),
        "dialogues": await _in_batches(
            app, lambda uow: uow.retention.prune_dialogues(dialogues_before, BATCH)
        ),
        "invite_tries": await _in_batches(
            app, lambda uow: uow.retention.prune_invite_tries(tries_before, BATCH)
        ),
        # Messages sent (or failed, cancelled) long ago; never one still queued or being sent.
        "sent_messages": await _in_batches(app, lambda uow: uow.retention.prune_sent(sent_before, BATCH)),
        # The web chat's download links first, then the stored files none of them holds.
        "kept_files": await _in_batches(app, lambda uow: uow.kept_files.prune(files_before, BATCH)),
        "report_files": await _in_batches(app, lambda uow: uow.kept_files.prune_stored(files_before, BATCH)),
        # Console links and sessions are worth nothing once expired; a day's grace for the curious.
        "console": await _in_batches(app, lambda uow: uow.console.prune(now - timedelta(days=1), BATCH)),
    }
    if any(counts.values()):
        log.info("pruned: %s", ", ".join(f"{n} {what}" for what, n in counts.items()))
    return sum(counts.values())


JOBS = (Job("retention", prune_expired, "40 2 * * *"),)
