"""Picking one administrative unit (province, commune, village…) the same way in every dialogue.

The user presses an offered unit (or types its number or name), or types part of a name
without diacritics: "thuc phan" finds "Phường Thục Phán", and "na rua" is taken as "Thôn Nà
Rụa" even when longer names also contain it. The picker searches the units of the given kinds,
under a parent and inside the area where the user may take an action, and says what it found;
each dialogue keeps its own question and its own words for what went wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.conversations.engine import Context, FlowState, chosen
from bot.domain.i18n import Translator
from bot.domain.messages import Incoming, Kind, Option
from bot.domain.parsing import fold
from bot.domain.permissions import Action, may_act_on
from bot.domain.permissions import area as area_of
from storage.models import Unit

UNIT_PREFIX = "unit:"
LIST_LIMIT = 10  # units offered as options; more are reached by typing part of a name
SEARCH_LIMIT = 8
QUERY_CHARS = 60


def unit_options(units: Sequence[Unit], limit: int = LIST_LIMIT) -> list[Option]:
    """The first `limit` units as options the picker recognises."""
    return [Option(f"{UNIT_PREFIX}{u.id}", u.name) for u in units[:limit]]


def nothing_found(t: Translator, query: str) -> str:
    return t("Nothing found for “{query}”. Try another spelling or part of the name.", query=query)


@dataclass(frozen=True, slots=True)
class Picked:
    """What the user's message named. At most one field is set; none: no name could be read."""

    unit: Unit | None = None  # the one unit meant, and the user may act on it
    matches: tuple[Unit, ...] = ()  # several units match the typed name
    outside: Unit | None = None  # the unit meant is outside the user's area
    query: str = ""  # a name was typed and nothing matched it (as typed, shortened)


@dataclass(frozen=True, slots=True)
class UnitPicker:
    """Which units may be picked: of `kinds`, children of `parent_id`, and, with `action`, only
    where the user may take it (a unit outside is reported as `outside`, not as not found)."""

    kinds: tuple[str, ...]
    parent_id: int | None = None
    action: Action | None = None
    limit: int = SEARCH_LIMIT

    async def pick(self, ctx: Context, state: FlowState, msg: Incoming) -> Picked:
        option = chosen(state, msg)
        if option is not None and option.startswith(UNIT_PREFIX) and option[len(UNIT_PREFIX) :].isdigit():
            unit = await ctx.uow.units.get(int(option[len(UNIT_PREFIX) :]))
            if unit is None or not self._fits(unit):
                return Picked()
            return self._checked(ctx, unit)
        if msg.kind is not Kind.TEXT or not fold(msg.text):
            return Picked()
        query = fold(msg.text)[:QUERY_CHARS]
        area = area_of(ctx.grants, self.action) if self.action is not None else []
        found = await ctx.uow.units.search(
            query, self.kinds, self.parent_id, limit=self.limit, on=ctx.today, within=area
        )
        exact = [u for u in found if u.name_folded == query or u.name_folded.endswith(" " + query)]
        if len(exact) == 1:
            found = exact
        if len(found) == 1:
            return self._checked(ctx, found[0])
        if found:
            return Picked(matches=tuple(found))
        if self.action is not None:
            elsewhere = await ctx.uow.units.search(query, self.kinds, self.parent_id, limit=1, on=ctx.today)
            if elsewhere:
                return Picked(outside=elsewhere[0])
        return Picked(query=msg.text.strip()[:QUERY_CHARS])

    def _fits(self, unit: Unit) -> bool:
        return unit.kind in self.kinds and (self.parent_id is None or unit.parent_id == self.parent_id)

    def _checked(self, ctx: Context, unit: Unit) -> Picked:
        if self.action is not None and not may_act_on(ctx.grants, unit, self.action):
            return Picked(outside=unit)
        return Picked(unit=unit)
