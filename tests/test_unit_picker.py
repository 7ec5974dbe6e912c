"""The unit picker every dialogue uses (bot/conversations/widgets/unit_picker.py), on a real
database: options, names typed without diacritics, the exact name among longer ones, units
outside the user's area, and nothing found."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.conversations.engine import Context, FlowState, FlowTable, ask
from bot.conversations.flows import default_flows
from bot.conversations.widgets.unit_picker import UnitPicker, unit_options
from bot.domain.app import App
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Kind
from bot.domain.permissions import Action, load_grants
from bot.handlers.command_table import menu_reply
from bot.services.actor import CONSOLE
from bot.services.units import add_village
from storage.models import COMMUNE, VILLAGE, VILLAGE_KINDS
from tests.support import Tree, make_app, make_contact, seed_tree


@pytest.fixture
async def world(sqlite_db: object, sqlite_url: str) -> AsyncIterator[tuple[App, Tree]]:
    app = make_app(sqlite_url)
    tree = await seed_tree(app)
    await make_contact(app, "co", "commune_officer", tree.commune, "en")
    yield app, tree
    await app.db.dispose()


@dataclass(frozen=True)
class Seen:
    """A `Picked`, read while its session was open: unit ids and names."""

    unit: int | None = None
    matches: frozenset[str] = frozenset()
    outside: int | None = None
    query: str = ""


async def _pick(app: App, picker: UnitPicker, msg: Incoming, state: FlowState | None = None) -> Seen:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", "co")
        assert contact is not None
        ctx = Context(
            uow=uow,
            settings=app.settings,
            forms=app.forms,
            contact=contact,
            grants=await load_grants(uow, contact.id),
            t=translator("en"),
            now=app.clock.now(),
            channel="test",
            flows=FlowTable(default_flows()),
            menu=menu_reply,
        )
        p = await picker.pick(ctx, state or FlowState(phase="x"), msg)
        return Seen(
            p.unit.id if p.unit else None,
            frozenset(u.name for u in p.matches),
            p.outside.id if p.outside else None,
            p.query,
        )


def _typed(text: str) -> Incoming:
    return Incoming("test", "co", Kind.TEXT, text=text)


async def test_a_name_typed_without_diacritics(world: tuple[App, Tree]) -> None:
    app, tree = world
    picked = await _pick(app, UnitPicker(VILLAGE_KINDS, action=Action.REPORT), _typed("na rua"))
    assert picked.unit == tree.village.id


async def test_the_exact_name_wins_over_longer_names_containing_it(world: tuple[App, Tree]) -> None:
    app, tree = world
    async with app.uow() as uow:
        commune = await uow.units.get(tree.commune.id)
        assert commune is not None
        await add_village(uow, CONSOLE, commune, "Thôn Nà Rụa Mới", VILLAGE, app.clock.now())
        await uow.commit()
    picker = UnitPicker(VILLAGE_KINDS, tree.commune.id, Action.REPORT)
    picked = await _pick(app, picker, _typed("na rua"))
    assert picked.unit == tree.village.id
    several = await _pick(app, picker, _typed("thon"))
    assert several.matches == {"Thôn Nà Rụa", "Thôn Nà Rụa Mới"} and several.unit is None


async def test_a_unit_outside_the_area_is_named_not_hidden(world: tuple[App, Tree]) -> None:
    app, tree = world
    picked = await _pick(app, UnitPicker(VILLAGE_KINDS, action=Action.REPORT), _typed("Pác Bó"))
    assert picked.unit is None and picked.outside == tree.other_village.id
    # without an action to check, the same name is found
    anyone = await _pick(app, UnitPicker(VILLAGE_KINDS), _typed("pac bo"))
    assert anyone.unit == tree.other_village.id


async def test_nothing_found_keeps_what_was_typed(world: tuple[App, Tree]) -> None:
    app, _ = world
    picked = await _pick(app, UnitPicker(VILLAGE_KINDS), _typed("  Thôn Không Có  "))
    assert picked == Seen(query="Thôn Không Có")
    assert await _pick(app, UnitPicker(VILLAGE_KINDS), Incoming("test", "co", Kind.IMAGE)) == Seen()


async def test_an_offered_unit_by_button_or_number_and_only_of_the_right_kind(
    world: tuple[App, Tree],
) -> None:
    app, tree = world
    state = FlowState(phase="x")
    ask(state, "Which?", unit_options([tree.group, tree.village]))
    picker = UnitPicker(VILLAGE_KINDS, tree.commune.id)
    by_button = await _pick(
        app, picker, Incoming("test", "co", Kind.OPTION, option_id=f"unit:{tree.village.id}"), state
    )
    assert by_button.unit == tree.village.id
    by_number = await _pick(app, picker, _typed("1"), state)
    assert by_number.unit == tree.group.id
    wrong_kind = UnitPicker((COMMUNE,))
    assert await _pick(app, wrong_kind, _typed("1"), state) == Seen()
