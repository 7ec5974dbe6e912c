"""The composition root: everything one process runs is built here, in one place.

`bootstrap()` builds the `App` every layer is handed (settings, database, clock, forms, the
message handler and the platform senders), the dialogue with its flow table, the channels that
have a token, and the scheduled jobs — as typed fields of a `Bot`. Nothing registers itself at
import time. Tests call `bootstrap()` too, with their own settings and clock, and take what they
need from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from bot.channels.manager import ChannelRuntime
from bot.conversations.engine import FlowTable
from bot.conversations.flows import default_flows
from bot.domain.app import App
from bot.domain.clock import Clock, SystemClock
from bot.domain.forms.loader import load_forms
from bot.domain.settings import Settings
from bot.handlers.router import Dialogue
from bot.runtime.http import create_http_app, default_routers
from bot.runtime.scheduler import JobSpec, default_jobs
from storage.db import Database


@dataclass
class Bot:
    """One process of the bot."""

    app: App
    dialogue: Dialogue
    channels: ChannelRuntime  # Telegram and Zalo, those with a token; their senders are in app.senders
    jobs: dict[str, JobSpec]  # run on the elected instance; the scheduler lays schedules.yaml over them

    def http_app(self) -> FastAPI:
        """The HTTP app: health, metrics, the web chat and the channels' webhooks."""
        return create_http_app(self.app, default_routers(self.app, self.channels))


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> Bot:
    settings = settings or Settings()
    dialogue = Dialogue(FlowTable(default_flows()))
    app = App(
        settings=settings,
        db=Database(settings.database_url, settings.sqlite_driver),
        clock=clock or SystemClock(),
        forms=load_forms(Path(settings.content_dir) / "forms"),
        handler=dialogue.handle,
    )
    channels = ChannelRuntime(app)
    app.senders.update(channels.senders())
    return Bot(app=app, dialogue=dialogue, channels=channels, jobs=default_jobs())
