"""Who is acting: a contact with their grants, or the operator at the console.

Every service that writes takes an `Actor`, checks it against the permission table
(bot/domain/permissions.py) and names it in the audit row. The CLI (`khuyenhoc invite create`,
`khuyenhoc units import`, the demo seed) acts as `CONSOLE`: whoever can run the command on the
server already holds the database, so the table does not apply; the audit row says so
(`contact_id` empty, `by: "console"`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.permissions import Action, Grant, NotAllowed, holds, may_act_on, require
from storage.models import Contact, Unit
from storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class Actor:
    """A contact and the roles they hold now; `contact=None` only for `CONSOLE`."""

    contact: Contact | None
    grants: tuple[Grant, ...] = ()

    @classmethod
    def of(cls, contact: Contact, grants: Iterable[Grant]) -> Actor:
        return cls(contact, tuple(grants))

    @property
    def is_console(self) -> bool:
        return self.contact is None

    @property
    def contact_id(self) -> int | None:
        return None if self.contact is None else self.contact.id

    def holds(self, action: Action) -> bool:
        return self.is_console or holds(self.grants, action)

    def may(self, action: Action, unit: Unit) -> bool:
        return self.is_console or may_act_on(self.grants, unit, action)

    def require(self, action: Action, unit: Unit) -> None:
        """Raise NotAllowed unless the actor may take `action` on `unit` (or its subtree)."""
        if not self.is_console:
            require(self.grants, action, unit)

    def require_any(self, action: Action) -> None:
        """Raise NotAllowed unless some role of the actor allows `action` somewhere."""
        if not self.holds(action):
            raise NotAllowed(action)

    def audit(
        self, uow: UnitOfWork, now: datetime, action: str, unit_id: int | None = None, **detail: Any
    ) -> None:
        """The audit row of a write, naming the actor."""
        if self.is_console:
            detail = {"by": "console", **detail}
        uow.audit.add(now, action, self.contact_id, unit_id, **detail)


CONSOLE = Actor(None)
