"""GET /metrics: the app's counters (bot.domain.metrics) in Prometheus' text format.

Counters are per instance: Prometheus scrapes every instance and adds them up. The outbox's
depth and the age of its oldest due message are read from the database at scrape time, through
a read-only unit of work, so they are the same whichever instance is asked. The reverse proxy
keeps /metrics off the internet (docs/deploy.md).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.domain.app import App

log = logging.getLogger(__name__)

PATH = "/metrics"


async def read_outbox(app: App) -> None:
    """Set the outbox gauges from the database, one series per channel with messages pending."""
    m = app.metrics
    now = app.clock.now()
    try:
        async with app.read_only() as reads:
            rows = await reads.outbox.depth(now)
    except Exception:
        log.exception("/metrics: the outbox could not be read")
        rows = None
    m.outbox_depth.clear()
    m.outbox_oldest_due_age.clear()
    for channel, count, oldest_due in rows or []:
        m.outbox_depth.labels(channel).set(count)
        m.outbox_oldest_due_age.labels(channel).set(
            max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0
        )


def create_router(app: App) -> APIRouter:
    router = APIRouter()

    @router.get(PATH, include_in_schema=False)
    async def metrics() -> Response:
        await read_outbox(app)
        return Response(generate_latest(app.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
