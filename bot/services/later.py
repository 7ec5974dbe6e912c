"""Replies made after the dialogue step has committed: `Reply.later`.

Some answers need a heavy read, a compiled report above all. Read inside the step's unit of
work it held the write transaction (on SQLite the process-wide write lock) and, with the inline
driver, the event loop: a national report stopped every other chat for one to two seconds. A
flow answers instead with a `Reply(later=work)`. Once the step is saved, `run_later` gives the
work a read-only unit of work (storage.readonly: its own connection, no lock, off the loop) and
puts the replies the work returns where that reply stood. The dialogue has moved on already, so
a failure here costs the report, never the conversation: the reply's own text is said instead.
"""

from __future__ import annotations

import logging

from bot.domain.app import App
from bot.domain.messages import Reply

log = logging.getLogger(__name__)


async def run_later(app: App, replies: list[Reply], channel: str) -> list[Reply]:
    """`replies` with each `later` reply replaced by what its work returns."""
    if all(r.later is None for r in replies):
        return replies
    out: list[Reply] = []
    for reply in replies:
        if reply.later is None:
            out.append(reply)
            continue
        try:
            async with app.read_only() as reads:
                out += await reply.later(reads)
        except Exception:
            log.exception("work after a %s dialogue step failed", channel)
            app.metrics.step_errors.labels(channel).inc()
            out.append(Reply(reply.text))
    return out
