"""The one service function every channel calls for every incoming message.

Inside one unit of work: lock and load the contact, their roles and their dialogue, skip a
delivery already processed, step the dialogue, save, commit. Only then are the replies returned for the
channel to send, so a crash halfway leaves the dialogue where it was and loses nothing.

One contact, one step at a time, on every instance (DESIGN.md, boundary 10): a step first waits
for the person's in-process lock (storage.locks; the fast path, and the order of arrival), then
takes the row lock on their contact and dialogue (PostgreSQL; on SQLite the one writer at a time
already serializes), so that instances behind a load balancer never lose or reorder an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError

from bot.domain.app import App
from bot.domain.i18n import Translator, translator
from bot.domain.messages import Handled, Incoming, Reply
from bot.domain.permissions import Grant
from bot.domain.text import clean_name
from storage.models import Contact, DialogueState
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Turn:
    """One incoming message with everything loaded for it, inside the open unit of work."""

    app: App
    uow: UnitOfWork
    contact: Contact
    grants: list[Grant]
    t: Translator
    now: datetime
    row: DialogueState | None
    msg: Incoming


class TurnResult(Protocol):
    replies: list[Reply]
    flow: str | None
    state: dict[str, Any]


# What steps the dialogue: the handlers' router, handed in by the layer above (DESIGN.md, boundary 8).
Stepper = Callable[[Turn], Awaitable[TurnResult]]

# last_seen_at is written at most this often: saves an UPDATE on most messages.
LAST_SEEN_RESOLUTION = timedelta(minutes=10)


def _name(display_name: str | None) -> str | None:
    """A platform's display name, kept as a name (NFC, no control characters, 255 at most)."""
    return (clean_name(display_name, 255) or None) if display_name else None


async def handle_incoming(app: App, msg: Incoming, step: Stepper) -> Handled:
    locale = app.settings.default_locale
    # The contact, once known to outlive this transaction, and whether replies to them wait in
    # the outbox: the channel queues what it cannot send, and queues behind what waits (Handled).
    contact_id: int | None = None
    waiting = False
    try:
        async with app.db.contact_locks.hold((msg.channel, msg.external_id)), app.uow() as uow:
            now = app.clock.now()
            locked = await uow.contacts.lock_with_dialogue(msg.channel, msg.external_id)
            if locked is None:  # a new person, or one who never had a dialogue row
                await uow.contacts.ensure(
                    msg.channel, msg.external_id, now, locale=locale, display_name=_name(msg.display_name)
                )
                locked = await uow.contacts.lock_with_dialogue(msg.channel, msg.external_id)
                assert locked is not None
            else:  # it existed before: still there if this step fails
                contact_id = locked.contact.id
            contact, row = locked.contact, locked.dialogue
            locale, waiting = contact.locale, locked.replies_waiting
            if msg.update_id and not await uow.updates.first_time(msg.channel, msg.update_id, now):
                log.info("duplicate %s update ignored", msg.channel)
                return Handled([], locale, contact_id, waiting)
            if locked.blocked:  # a message from the person proves they no longer block the bot
                await uow.channels.set_blocked(msg.channel, msg.external_id, None)
                log.info("%s %s unblocked", msg.channel, contact.id)
            if contact.last_seen_at is None or now - contact.last_seen_at > LAST_SEEN_RESOLUTION:
                contact.last_seen_at = now
            grants = [Grant(role, unit) for role, unit in locked.roles]
            turn = Turn(app, uow, contact, grants, translator(contact.locale), now, row, msg)
            outcome = await step(turn)
            await uow.dialogues.save(contact.id, outcome.flow, outcome.state, now, row)
            await uow.commit()
            return Handled(outcome.replies, contact.locale, contact.id, waiting)
    except IntegrityError:
        # Two deliveries of one update raced past the duplicate check: the other one won.
        if msg.update_id:
            log.info("concurrent duplicate %s update ignored", msg.channel)
            return Handled([], locale, contact_id, waiting)
        log.exception("integrity error while handling a %s message", msg.channel)
    except Exception:
        log.exception("error while handling a %s message", msg.channel)
    app.metrics.step_errors.labels(msg.channel).inc()
    t = translator(locale)
    return Handled(
        [
            Reply(
                t(
                    "Sorry, something went wrong on our side. Nothing you sent before was lost: please send your last answer again."
                )
            )
        ],
        locale,
        contact_id,
        waiting,
    )
