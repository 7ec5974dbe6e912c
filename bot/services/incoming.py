"""The one service function every channel calls for every incoming message.

Inside one unit of work: skip a delivery already processed, load the contact, their roles and
their dialogue state, step the dialogue, save, commit. Only then are the replies returned for
the channel to send, so a crash halfway leaves the dialogue where it was and loses nothing.
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
from bot.domain.messages import Incoming, Reply
from bot.domain.permissions import Grant, load_grants
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


async def handle_incoming(app: App, msg: Incoming, step: Stepper) -> list[Reply]:
    locale = app.settings.default_locale
    try:
        async with app.uow() as uow:
            now = app.clock.now()
            if msg.update_id and not await uow.updates.first_time(msg.channel, msg.update_id, now):
                log.info("duplicate %s update ignored", msg.channel)
                return []
            found = await uow.contacts.with_dialogue(msg.channel, msg.external_id)
            if found is None:
                contact = await uow.contacts.create(msg.channel, msg.external_id, now, msg.display_name)
                contact.locale = app.settings.default_locale
                row = None
            else:
                contact, row = found
            if contact.last_seen_at is None or now - contact.last_seen_at > LAST_SEEN_RESOLUTION:
                contact.last_seen_at = now
            locale = contact.locale
            grants = await load_grants(uow, contact.id)
            turn = Turn(app, uow, contact, grants, translator(contact.locale), now, row, msg)
            outcome = await step(turn)
            await uow.dialogues.save(contact.id, outcome.flow, outcome.state, now, row)
            await uow.commit()
            return outcome.replies
    except IntegrityError:
        # Two deliveries of one update raced past the duplicate check: the other one won.
        if msg.update_id:
            log.info("concurrent duplicate %s update ignored", msg.channel)
            return []
        log.exception("integrity error while handling a %s message", msg.channel)
    except Exception:
        log.exception("error while handling a %s message", msg.channel)
    app.metrics.step_errors.labels(msg.channel).inc()
    t = translator(locale)
    return [
        Reply(
            t(
                "Sorry, something went wrong on our side. Nothing you sent before was lost: please send your last answer again."
            )
        )
    ]
