"""Who may do what, where: checked in the service layer from the contact's roles and units."""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import (
    ADMIN,
    COMMUNE_OFFICER,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    Unit,
)
from storage.uow import UnitOfWork

REPORTING_ROLES = (VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN)
VILLAGE_MANAGER_ROLES = (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN)


@dataclass(frozen=True, slots=True)
class Grant:
    """A role with its unit loaded, as the conversations need it."""

    role: str
    unit: Unit


def area_units(grants: list[Grant], roles: tuple[str, ...]) -> list[Unit]:
    return [g.unit for g in grants if g.role in roles]


def may_act_on(grants: list[Grant], unit: Unit, roles: tuple[str, ...]) -> bool:
    """True when one of `roles` is held on `unit` or on one of its ancestors."""
    return any(g.role in roles and unit.path.startswith(g.unit.path) for g in grants)


async def load_grants(uow: UnitOfWork, contact_id: int) -> list[Grant]:
    """The contact's active roles with their units."""
    return [Grant(role, unit) for role, unit in await uow.contacts.roles_with_units(contact_id)]
