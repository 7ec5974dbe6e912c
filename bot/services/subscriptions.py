"""A person's outreach: topics (/chude), the newest article (/tin), stop (/dung) and start again
(/batdau). The rules and the cancelling of queued messages live in bot/messaging/outreach.py;
these are the use cases the dialogues call, with their audit rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from bot.messaging.outreach import newest_item_for, resume_outreach, set_topics, stop_outreach
from bot.services.actor import Actor
from storage.models import Contact
from storage.models_outreach import ContentItem, Subscription
from storage.uow import UnitOfWork


def _person(actor: Actor) -> Contact:
    if actor.contact is None:
        raise ValueError("outreach preferences belong to a person, not the console")
    return actor.contact


async def choose_topics(uow: UnitOfWork, actor: Actor, topics: Sequence[str], now: datetime) -> Subscription:
    """Choose topics (none: every topic). Choosing is no opt-out: a stop stays a stop."""
    return await set_topics(uow, _person(actor).id, topics, now)


async def newest_article(uow: UnitOfWork, actor: Actor, today: date, now: datetime) -> ContentItem | None:
    """/tin: the newest article for the person (language, roles, topics), remembered as sent."""
    person = _person(actor)
    sub = await uow.subscriptions.get(person.id)
    roles = [g.role for g in actor.grants]
    item = await newest_item_for(uow, person, roles, list(sub.topics) if sub else [], today)
    if item is not None:
        await uow.sent_items.record([(person.id, item.item_key)], now)
    return item


async def opt_out(uow: UnitOfWork, actor: Actor, now: datetime) -> int:
    """/dung: nothing more is sent, queued messages included. Returns the messages cancelled."""
    cancelled = await stop_outreach(uow, _person(actor).id, now)
    actor.audit(uow, now, "outreach.stop")
    return cancelled


async def opt_in(uow: UnitOfWork, actor: Actor, now: datetime) -> bool:
    """/batdau: messages again. False when they were not stopped (nothing to audit then)."""
    was_stopped = await resume_outreach(uow, _person(actor).id, now)
    if was_stopped:
        actor.audit(uow, now, "outreach.resume")
    return was_stopped
