"""Who may do what, where: one table of actions and the roles that may take them.

Every check — the services that write, the menu and help that offer commands, the command table
— asks this table, so a role's reach is changed in one place. A role is held on a unit and
reaches that unit's subtree: an officer acts only inside their own area (DESIGN.md, boundary 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from storage.models import (
    ADMIN,
    COMMUNE_OFFICER,
    MEMBER,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    Unit,
)
from storage.uow import Reads


class Action(StrEnum):
    REPORT = "report"  # file village and activity reports (/baocao, /hoatdong)
    REPORT_COMMUNE = "report_commune"  # file the commune's own report (/baocaoxa)
    MANAGE_VILLAGES = "manage_villages"  # list, add and rename villages (/thon)
    CREATE_INVITE = "create_invite"  # invite officers to a unit of one's area
    COMPILE_REPORT = "compile_report"  # compiled reports on demand (/baocaotonghop)
    BROADCAST = "broadcast"  # send news to the people of one's area (/guitin, /tinhtrang)
    RECEIVE_OUTREACH = "receive_outreach"  # tips and news (/chude, /tin)
    LINK = "link"  # use one account on several channels (/lienket, /huylienket): open to everyone
    OWN_DATA = "own_data"  # see and delete one's own data (/dulieu, /xoadulieu): open to everyone
    # Approve or return a report, reopen a locked period (/duyet). Checked on the PARENT of the
    # unit that filed: commune officers review their villages, province staff their communes.
    REVIEW = "review"
    REQUEST = "request"  # ask the officers of one's area for an ad hoc report (/yeucau; /tinhtrang)
    SET_PROFILE = "set_profile"  # the signer and number symbol of a unit's compiled reports (/hoso)
    CONSOLE = "console"  # the staff console in the browser (/web): what it shows needs its own actions


PERMISSIONS: Mapping[Action, tuple[str, ...]] = {
    Action.REPORT: (VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    # The commune's own report: its officers, and those above who may file it for them.
    Action.REPORT_COMMUNE: (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.MANAGE_VILLAGES: (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.CREATE_INVITE: (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.COMPILE_REPORT: (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.BROADCAST: (COMMUNE_OFFICER, PROVINCE_STAFF),
    Action.RECEIVE_OUTREACH: (MEMBER, VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.LINK: (MEMBER, VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.REVIEW: (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.OWN_DATA: (MEMBER, VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    Action.REQUEST: (COMMUNE_OFFICER, PROVINCE_STAFF),
    # Whoever gets the unit's compiled reports sets who signs them.
    Action.SET_PROFILE: (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
    # The desk work of commune and province staff; each page also asks its own action.
    Action.CONSOLE: (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
}

# The action that filing a form needs, when it is not Action.REPORT: the dialogue offers the form,
# and the submission service accepts it, only under this action.
FORM_ACTIONS: Mapping[str, Action] = {"commune_report": Action.REPORT_COMMUNE}

# Actions anyone may take, holding a role or not yet (a person links a new chat before they
# register in it; anyone may see and delete what the bot keeps about them); for them `holds` is
# always true.
OPEN: frozenset[Action] = frozenset({Action.LINK, Action.OWN_DATA})


# Which roles a role may hand out by invite code, inside its own area: never its own rank or
# above (an admin excepted), so that an invite cannot lift anyone above the person who made it.
INVITABLE: Mapping[str, tuple[str, ...]] = {
    COMMUNE_OFFICER: (VILLAGE_OFFICER,),
    PROVINCE_STAFF: (VILLAGE_OFFICER, COMMUNE_OFFICER),
    ADMIN: (VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN),
}


# Whose officers a role may ask for an ad hoc report (báo cáo đột xuất, seed 000 line 97), inside
# its own area: the officers below it, as the association's reports go up village → commune →
# province.
ASKABLE: Mapping[str, tuple[str, ...]] = {
    COMMUNE_OFFICER: (VILLAGE_OFFICER,),
    PROVINCE_STAFF: (VILLAGE_OFFICER, COMMUNE_OFFICER),
}


def roles_for(action: Action) -> tuple[str, ...]:
    return PERMISSIONS[action]


def report_action(form_key: str) -> Action:
    """The action under which the form `form_key` is filed (FORM_ACTIONS, else REPORT)."""
    return FORM_ACTIONS.get(form_key, Action.REPORT)


@dataclass(frozen=True, slots=True)
class Grant:
    """A role with its unit loaded, as the conversations need it."""

    role: str
    unit: Unit


class NotAllowed(Exception):
    """The acting contact holds no role that allows the action on that unit."""

    def __init__(self, action: Action, unit: Unit | None = None, reason: str | None = None) -> None:
        where = f" on unit {unit.id}" if unit is not None else ""
        super().__init__(f"{action} not allowed{where}" + (f": {reason}" if reason else ""))
        self.action = action
        self.unit = unit
        self.reason = reason


def holds(grants: Iterable[Grant], action: Action) -> bool:
    """True when some role allows the action somewhere (always, for an open action)."""
    if action in OPEN:
        return True
    roles = PERMISSIONS[action]
    return any(g.role in roles for g in grants)


def area(grants: Iterable[Grant], action: Action) -> list[Unit]:
    """The units on which the action is allowed (each with its subtree)."""
    roles = PERMISSIONS[action]
    return [g.unit for g in grants if g.role in roles]


def may_act_on(grants: Iterable[Grant], unit: Unit, action: Action) -> bool:
    """True when a role allowing `action` is held on `unit` or on one of its ancestors."""
    roles = PERMISSIONS[action]
    return any(g.role in roles and unit.path.startswith(g.unit.path) for g in grants)


def may_invite(grants: Iterable[Grant], unit: Unit, role: str) -> bool:
    """True when a role held on `unit` or an ancestor may hand out `role` there (INVITABLE)."""
    return any(role in INVITABLE.get(g.role, ()) and unit.path.startswith(g.unit.path) for g in grants)


def may_ask(grants: Iterable[Grant], unit: Unit, role: str) -> bool:
    """True when a role held on `unit` or an ancestor may ask officers of `role` there (ASKABLE)."""
    return any(
        role in ASKABLE.get(g.role, ())
        and g.role in PERMISSIONS[Action.REQUEST]
        and unit.path.startswith(g.unit.path)
        for g in grants
    )


def require(grants: Iterable[Grant], action: Action, unit: Unit) -> None:
    """Raise NotAllowed unless `may_act_on` — for the services, which check before they write."""
    if not may_act_on(grants, unit, action):
        raise NotAllowed(action, unit)


async def load_grants(uow: Reads, contact_id: int) -> list[Grant]:
    """The contact's active roles with their units."""
    return [Grant(role, unit) for role, unit in await uow.contacts.roles_with_units(contact_id)]
