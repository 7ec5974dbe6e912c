"""Typed dialogue state and phase tables.

Every flow declares its phases as a table (phase → handler) and its state as a pydantic model
whose `phase` is a Literal. The tests below derive what they check from those declarations and
from the flows' code, and then show, through the real service layer, that a dialogue row
written by another version of the bot (a phase that is gone, a state of another shape) gets a
short "asked again" message instead of an error on every message until it expires.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any, get_args

import pytest

from bot.conversations.engine import Flow, Prompt
from bot.conversations.flows import default_flows
from bot.domain.app import App
from tests.support import Chat, Tree, make_app, make_contact, seed_tree

FLOWS = default_flows()
IDS = [f.name for f in FLOWS]

ASKED_AGAIN = "The bot was updated while you were answering, so here is the question again."
STARTED_AGAIN = "The bot was updated while you were answering, so this starts again from the beginning."
WENT_WRONG = "something went wrong"


# ---- the tables agree with the code ---------------------------------------------------------


def _phase_values(node: ast.expr) -> Iterator[ast.expr]:
    """The expressions a phase can take from one assigned value (both arms of `a if c else b`)."""
    if isinstance(node, ast.IfExp):
        yield from _phase_values(node.body)
        yield from _phase_values(node.orelse)
    else:
        yield node


def _phases_set_in(cls: type) -> list[tuple[int, ast.expr]]:
    """Every value the class's code assigns to a `.phase` (plain, tuple or keyword assignment)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    found: list[tuple[int, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "phase":
                    found += [(node.lineno, v) for v in _phase_values(node.value)]
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts, strict=True):
                        if isinstance(t, ast.Attribute) and t.attr == "phase":
                            found += [(node.lineno, x) for x in _phase_values(v)]
        elif isinstance(node, ast.keyword) and node.arg == "phase":
            found += [(node.value.lineno, v) for v in _phase_values(node.value)]
    return found


@pytest.mark.parametrize("flow", FLOWS, ids=IDS)
def test_every_phase_the_code_sets_has_a_handler_in_the_table(flow: Flow[Any]) -> None:
    cls = type(flow)
    set_by_code = _phases_set_in(cls)
    for line, value in set_by_code:
        assert isinstance(value, ast.Constant) and isinstance(value.value, str), (
            f"{cls.__name__}, line {line} of the class: a phase must be a literal name from the table, "
            f"not {ast.unparse(value)!r}"
        )
        assert value.value in flow.phases, (
            f"{cls.__name__} sets phase {value.value!r} (line {line} of the class), "
            f"which its table {sorted(flow.phases)} does not have"
        )
    # …and every phase of the table is reachable: set by the code or the state's first phase.
    default = flow.state_type.model_fields["phase"].default
    reachable = {v.value for _, v in set_by_code if isinstance(v, ast.Constant)} | {default}
    never = set(flow.phases) - reachable
    assert not never, f"{cls.__name__}: phases never entered: {never}"


@pytest.mark.parametrize("flow", FLOWS, ids=IDS)
def test_the_state_type_allows_exactly_the_phases_of_the_table(flow: Flow[Any]) -> None:
    """The Literal of `phase` is what mypy checks every assignment against, and what a stored
    row is validated against: it must name the same phases as the table."""
    allowed = set(get_args(flow.state_type.model_fields["phase"].annotation))
    assert allowed == set(flow.phases)


@pytest.mark.parametrize("flow", FLOWS, ids=IDS)
def test_each_phase_handler_documents_itself_in_one_line(flow: Flow[Any]) -> None:
    for phase, handler in flow.phases.items():
        doc = (handler.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{flow.name}.{phase}: a one-line docstring, please"


def test_a_phase_the_table_lacks_is_refused_when_the_table_is_built() -> None:
    from bot.conversations.engine import phase_table

    async def undocumented(*_: object) -> None: ...

    with pytest.raises(TypeError, match="one-line docstring"):
        phase_table({"x": undocumented})  # type: ignore[dict-item]


def test_rows_written_before_typed_state_are_read() -> None:
    """The engine keys of the first edition (options/numbered/last_prompt, leave.saved…) and
    onboarding's "step" still load."""
    from bot.conversations.flows.onboarding import Onboarding

    old = {
        "step": "province",
        "options": [],
        "numbered": True,
        "last_prompt": {"text": "Type the name of your province", "options": [], "numbered": True},
        "leave": {
            "cmd": "baocao",
            "arg": "",
            "known": True,
            "saved": {
                "options": [],
                "numbered": True,
                "last_prompt": {"text": "Type the name of your province", "options": [], "numbered": True},
            },
        },
        "something_a_later_version_added": 1,
    }
    state = Onboarding().load(old)
    assert state.phase == "province"
    assert state.leave is not None and state.leave.cmd == "baocao"
    assert state.leave.saved == Prompt(text="Type the name of your province")
    assert Onboarding().load(state.dump()) == state  # and round-trips


# ---- a row from another version, through the service layer ----------------------------------


@pytest.fixture
async def officer(sqlite_db: object, sqlite_url: str) -> tuple[App, Tree]:
    app = make_app(sqlite_url)
    tree = await seed_tree(app)
    await make_contact(app, "u1", "village_officer", tree.village, "en")
    yield app, tree  # type: ignore[misc]
    await app.db.dispose()


async def _stored(app: App) -> tuple[str | None, dict[str, Any]]:
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", "u1")
        assert contact is not None
        row = await uow.dialogues.get(contact.id)
        assert row is not None
        return row.flow, dict(row.state)


async def _overwrite(app: App, flow: str, state: dict[str, Any]) -> None:
    """What another version of the bot left in the contact's dialogue row."""
    async with app.uow() as uow:
        contact = await uow.contacts.by_identity("test", "u1")
        assert contact is not None
        await uow.dialogues.save(contact.id, flow, state, app.clock.now())
        await uow.commit()


async def _three_answers(chat: Chat) -> None:
    await chat.say("/baocao")
    await chat.press("2026")
    for answer in ("120", "500", "80"):
        await chat.say(answer)
    assert "Question 4/25" in chat.text


async def test_a_phase_renamed_by_a_deploy_asks_the_open_question_again(officer: tuple[App, Tree]) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _three_answers(chat)
    _, state = await _stored(app)
    await _overwrite(app, "form", {**state, "phase": "question"})  # "field" was renamed in another version

    await chat.say("60")
    assert WENT_WRONG not in chat.text
    assert ASKED_AGAIN in chat.text and "Question 4/25" in chat.text
    _, after = await _stored(app)
    assert after["values"] == state["values"] and "60" not in str(after["values"].values())

    await chat.say("60")  # the answer, now read by this version
    assert "Question 5/25" in chat.text
    _, after = await _stored(app)
    assert after["values"]["population_total"] == 500 and after["phase"] == "field"


async def test_a_state_of_another_shape_starts_the_report_again(officer: tuple[App, Tree]) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _three_answers(chat)
    other_shape = {"form": "village_report", "phase": "field", "values": ["not", "a", "dict"]}
    await _overwrite(app, "form", other_shape)

    await chat.say("60")
    assert WENT_WRONG not in chat.text
    assert STARTED_AGAIN in chat.text and "Which period?" in chat.text
    await chat.press("2026")
    assert "Question 1/25" in chat.text
    await chat.say("120")
    assert "Question 2/25" in chat.text


async def test_a_question_the_form_no_longer_has_starts_the_report_again(officer: tuple[App, Tree]) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _three_answers(chat)
    _, state = await _stored(app)
    await _overwrite(app, "form", {**state, "field": "a_question_removed_from_the_form"})

    await chat.say("60")
    assert WENT_WRONG not in chat.text
    assert STARTED_AGAIN in chat.text and "Which period?" in chat.text


async def test_a_command_in_a_lost_dialogue_is_obeyed(officer: tuple[App, Tree]) -> None:
    app, _ = officer
    chat = Chat(app, "u1")
    await _three_answers(chat)
    _, state = await _stored(app)
    await _overwrite(app, "form", {**state, "phase": "question"})

    await chat.say("/huy")
    assert "Cancelled. Nothing was saved." in chat.text
    assert ASKED_AGAIN not in chat.text


CO = "commune_officer@commune"
LOST: list[tuple[str | None, str, Callable[[Tree], dict[str, Any]], str]] = [
    (CO, "villages", lambda tree: {"phase": "gone", "commune_id": tree.commune.id}, "has 2 villages"),
    (CO, "summary", lambda tree: {"phase": "gone"}, "which period?"),
    (CO, "broadcast", lambda tree: {"phase": "gone", "area_id": "x"}, "Who in Phường Thục Phán"),
    (None, "onboarding", lambda tree: {"phase": "gone"}, "Please choose your language"),
    ("village_officer@village", "topics", lambda tree: {"phase": "gone"}, "Press a topic"),
    ("village_officer@village", "language", lambda tree: {"phase": "gone"}, "Choose your language"),
    ("village_officer@village", "status", lambda tree: {"phase": "gone"}, "receive one article a week"),
]


@pytest.mark.parametrize(("as_who", "flow", "state", "expect"), LOST, ids=[case[1] for case in LOST])
async def test_every_flow_recovers_from_a_lost_phase(
    sqlite_db: object,
    sqlite_url: str,
    as_who: str | None,
    flow: str,
    state: Callable[[Tree], dict[str, Any]],
    expect: str,
) -> None:
    app = make_app(sqlite_url)
    try:
        tree = await seed_tree(app)
        role, unit = as_who.split("@") if as_who else (None, None)
        await make_contact(app, "u1", role, getattr(tree, unit) if unit else None, "en")
        chat = Chat(app, "u1")
        await _overwrite(app, flow, state(tree))
        await chat.say("1")
        assert WENT_WRONG not in chat.text
        assert ASKED_AGAIN in chat.text or STARTED_AGAIN in chat.text
        assert expect in chat.text
    finally:
        await app.db.dispose()
