"""The composition root: everything the bot needs is built here, in one place."""

from __future__ import annotations

from pathlib import Path

from bot.conversations.engine import FlowTable
from bot.conversations.flows import default_flows
from bot.domain.app import App
from bot.domain.clock import Clock, SystemClock
from bot.domain.forms.loader import load_forms
from bot.domain.settings import Settings
from bot.handlers.router import Dialogue
from storage.db import Database


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> App:
    """Build the app. Tests call this too, with their own settings (a temporary database) and clock."""
    settings = settings or Settings()
    forms = load_forms(Path(settings.content_dir) / "forms")
    return App(
        handler=Dialogue(FlowTable(default_flows())).handle,
        settings=settings,
        db=Database(settings.database_url, settings.sqlite_driver),
        clock=clock or SystemClock(),
        forms=forms,
    )
