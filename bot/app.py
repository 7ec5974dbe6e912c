"""The application object built once by `bot.bootstrap.bootstrap` (the composition root)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.settings import Settings
from storage.db import Database
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.forms.model import Form


@dataclass
class App:
    settings: Settings
    db: Database
    clock: Clock
    forms: dict[str, Form] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db)

    @property
    def content_dir(self) -> Path:
        return Path(self.settings.content_dir)
