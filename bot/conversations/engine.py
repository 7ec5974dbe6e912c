"""The dialogue engine's core types.

A dialogue (a `Flow`) is a small state machine whose state is plain JSON kept in the
`dialogue_states` row of the contact. `start` and `resume` return the replies and the new state;
the service layer loads, saves and commits, and the channel sends. Flows read the clock only
through the context.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bot.domain.clock import VN_TZ
from bot.domain.i18n import Translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import fold
from bot.domain.permissions import Grant, load_grants
from bot.domain.settings import Settings
from storage.models import Contact
from storage.uow import UnitOfWork

State = dict[str, Any]

# Words that steer a dialogue, compared after folding (no diacritics, lower case).
CANCEL_WORDS = frozenset({"huy", "huy bo", "cancel", "/huy", "/cancel", "thoi"})
BACK_WORDS = frozenset({"quay lai", "back", "ql", "tro lai", "lui"})
SKIP_WORDS = frozenset({"bo qua", "skip", "bq", "khong tra loi", "-"})
KEEP_WORDS = frozenset({"giu nguyen", "gn", "keep", "giu", "nhu cu", "nhu ky truoc", "same"})


class Menu(Protocol):
    """The main menu for the person in `ctx`: built by the handlers from the command table."""

    def __call__(self, ctx: Context, intro: str | None = None) -> Reply: ...


@dataclass
class Context:
    """What a flow may use while handling one message, inside one transaction."""

    uow: UnitOfWork
    settings: Settings
    forms: dict[str, Any]
    contact: Contact
    grants: list[Grant]
    t: Translator
    now: datetime
    channel: str
    flows: FlowTable
    menu: Menu

    @property
    def today(self) -> date:
        return self.now.astimezone(VN_TZ).date()

    @property
    def app_content_dir(self) -> Path:
        return Path(self.settings.content_dir)

    async def refresh_grants(self) -> None:
        """Reload roles after this message granted one (an invite code was redeemed)."""
        self.grants = await load_grants(self.uow, self.contact.id)

    def set_locale(self, t: Translator) -> None:
        self.t = t
        self.contact.locale = t.locale


@dataclass
class Step:
    """The outcome of one turn. `state=None` ends the flow; `then` starts another one."""

    replies: list[Reply] = field(default_factory=list)
    state: State | None = None
    then: tuple[str, dict[str, Any]] | None = None
    flow: str | None = None  # set by whoever starts a flow; a resumed flow keeps its name


class Flow(ABC):
    """One dialogue, found by its `name` in the flow table."""

    name: ClassVar[str]

    @abstractmethod
    async def start(self, ctx: Context, args: dict[str, Any]) -> Step: ...

    @abstractmethod
    async def resume(self, ctx: Context, state: State, msg: Incoming) -> Step: ...

    async def reprompt(self, ctx: Context, state: State) -> list[Reply]:
        """The current question again, as it was asked (after help, a photo, a refused command)."""
        last = state.get("last_prompt")
        if not last:
            return []
        return [reply_from_json(last)]

    def leave_warning(self, ctx: Context, state: State) -> str:
        """What the user would lose by leaving; shown before a command interrupts the flow."""
        return ctx.t("You are in the middle of a conversation.")


class FlowTable:
    """Flows by name: the dialogue state row stores the name, the table finds the code.

    Built by the composition root from `bot.conversations.flows.default_flows()` and handed to
    every turn in its `Context`: nothing registers itself at import.
    """

    def __init__(self, flows: Iterable[Flow]) -> None:
        self._flows: dict[str, Flow] = {}
        for flow in flows:
            if flow.name in self._flows:
                raise ValueError(f"two flows named {flow.name!r}")
            self._flows[flow.name] = flow

    def get(self, name: str) -> Flow | None:
        return self._flows.get(name)

    def names(self) -> list[str]:
        return sorted(self._flows)


def ask(
    state: State,
    text: str,
    options: list[Option] | None = None,
    *,
    numbered: bool = True,
) -> Reply:
    """Ask a question and remember its options so that the answer can be matched against them.

    `numbered=False` tells channels without buttons not to offer "reply 1, 2, 3": used when the
    expected answer is itself a number, so that "2" is read as the number two.
    """
    opts = options or []
    state["options"] = [[o.id, o.label] for o in opts]
    state["numbered"] = numbered
    reply = Reply(text=text, options=opts, numbered=numbered)
    state["last_prompt"] = reply_to_json(reply)
    return reply


def chosen(state: State, msg: Incoming) -> str | None:
    """The id of the offered option the user picked: by button, label, or number (1-based)."""
    offered: list[list[str]] = state.get("options") or []
    ids = [o[0] for o in offered]
    if msg.kind is Kind.OPTION and msg.option_id in ids:
        return msg.option_id
    if msg.kind is not Kind.TEXT:
        return None
    typed = fold(msg.text)
    if not typed:
        return None
    for opt_id, label in offered:
        if typed == fold(label):
            return opt_id
    if state.get("numbered", True) and typed.isdigit():
        n = int(typed)
        if 1 <= n <= len(ids):
            return ids[n - 1]
    return None


def reply_to_json(reply: Reply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "options": [[o.id, o.label] for o in reply.options],
        "numbered": reply.numbered,
    }


def reply_from_json(data: dict[str, Any]) -> Reply:
    return Reply(
        text=str(data.get("text", "")),
        options=[Option(str(i), str(label)) for i, label in data.get("options", [])],
        numbered=bool(data.get("numbered", True)),
    )


def word_of(msg: Incoming) -> str:
    """The folded text of a message ('' for non-text)."""
    return fold(msg.text) if msg.kind is Kind.TEXT else ""
