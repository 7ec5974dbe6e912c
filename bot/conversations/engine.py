"""The dialogue engine's core types.

A dialogue (a `Flow`) is a small state machine: a table of phases and a typed state
(`FlowState`), kept as JSON in the `dialogue_states` row of the contact. `start` and `resume` return the replies and the new state;
the service layer loads, saves and commits, and the channel sends. Flows read the clock only
through the context.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.domain.clock import VN_TZ
from bot.domain.i18n import Translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import fold
from bot.domain.permissions import Grant, load_grants
from bot.domain.settings import Settings
from bot.domain.text import clean_deep
from storage.models import Contact
from storage.uow import UnitOfWork

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
    external_id: str = ""  # the person's id on `channel`: which of their chats wrote
    client_address: str | None = None  # Incoming.client_address

    @property
    def chat(self) -> tuple[str, str]:
        """The chat this message came from: (channel, external id)."""
        return self.channel, self.external_id

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


class Prompt(BaseModel):
    """A question as it was asked: its text, and the options an answer is matched against."""

    model_config = ConfigDict(extra="ignore")

    text: str = ""
    options: list[tuple[str, str]] = Field(default_factory=list)
    numbered: bool = True

    @classmethod
    def of(cls, reply: Reply) -> Prompt:
        return cls(text=reply.text, options=[(o.id, o.label) for o in reply.options], numbered=reply.numbered)

    def reply(self) -> Reply:
        return Reply(
            text=self.text, options=[Option(i, label) for i, label in self.options], numbered=self.numbered
        )


class Leave(BaseModel):
    """A command typed in the middle of a dialogue, waiting for "leave or continue?"."""

    model_config = ConfigDict(extra="ignore")

    cmd: str
    arg: str = ""
    known: bool = True
    saved: Prompt | None = None  # the question the command interrupted, asked again on "continue"

    @model_validator(mode="before")
    @classmethod
    def _older_rows(cls, data: Any) -> Any:
        """Rows written before typed state kept the interrupted question as saved.last_prompt."""
        if isinstance(data, dict) and isinstance(data.get("saved"), dict) and "last_prompt" in data["saved"]:
            return {**data, "saved": data["saved"]["last_prompt"]}
        return data


class FlowState(BaseModel):
    """What every dialogue keeps between messages; each flow extends it with its own fields.

    Stored as JSON in `dialogue_states.state` and validated when read back: keys a newer or
    older version wrote and this one does not know are ignored, missing ones take their
    defaults, and a phase this version has no handler for makes the row `StateLost`.
    Each flow narrows `phase` to a `Literal` of the phases in its table.
    """

    model_config = ConfigDict(extra="ignore")

    phase: str
    last_prompt: Prompt | None = None  # the open question (None: nothing asked yet)
    leave: Leave | None = None

    @model_validator(mode="before")
    @classmethod
    def _cleaned(cls, data: Any) -> Any:
        """A row saved before text was cleaned where it comes in (bot.domain.messages) may hold a
        lone surrogate or a NUL byte that fails every save: it is cleaned as it is read, so the
        dialogue goes on instead of failing until /huy."""
        return clean_deep(data) if isinstance(data, dict) else data

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


S = TypeVar("S", bound=FlowState)
# A phase's handler: (flow, ctx, state, msg) → the next step. Declared in each flow's `phases`.
Handler = Callable[[Any, "Context", Any, Incoming], Awaitable["Step"]]


def phase_table(handlers: Mapping[str, Handler]) -> Mapping[str, Handler]:
    """A flow's phases, read-only. Each handler's docstring documents its phase in one line."""
    for phase, handler in handlers.items():
        doc = (handler.__doc__ or "").strip()
        if not doc or "\n" in doc:
            raise TypeError(f"the handler of phase {phase!r} needs a one-line docstring")
    return MappingProxyType(dict(handlers))


class StateLost(Exception):
    """A stored dialogue this version cannot continue: its phase is gone or its shape changed."""


@dataclass
class Step:
    """The outcome of one turn. `state=None` ends the flow; `then` starts another one."""

    replies: list[Reply] = field(default_factory=list)
    state: FlowState | None = None
    then: tuple[str, dict[str, Any]] | None = None
    flow: str | None = None  # set by whoever starts a flow; a resumed flow keeps its name


class Flow(ABC, Generic[S]):
    """One dialogue, found by its `name` in the flow table.

    Like python-telegram-bot's `ConversationHandler(states={...})`, a flow declares its phases
    as a table, `phases`: phase name → handler, each handler with a one-line docstring. The
    state's `phase` says which handler reads the next message; `state_type` is the flow's
    typed state, a `FlowState` whose `phase` is a `Literal` of the table's keys.
    """

    name: ClassVar[str]
    state_type: ClassVar[type[FlowState]]
    phases: ClassVar[Mapping[str, Handler]]

    @abstractmethod
    async def start(self, ctx: Context, args: dict[str, Any]) -> Step: ...

    async def resume(self, ctx: Context, state: S, msg: Incoming) -> Step:
        """The answer to the open question, read by the handler of the state's phase."""
        return await self.phases[state.phase](self, ctx, state, msg)

    def load(self, raw: Mapping[str, Any] | None) -> S:
        """The stored state, typed; `StateLost` when this version cannot continue it."""
        try:
            state = self.state_type.model_validate(raw or {})
        except ValidationError as err:
            raise StateLost(str(err)) from err
        if state.phase not in self.phases:
            raise StateLost(f"no phase {state.phase!r} in {self.name}")
        return state  # type: ignore[return-value]

    async def recover(self, ctx: Context, raw: Mapping[str, Any] | None) -> Step:
        """After a deploy changed the phases or the state's shape: the current question again,
        if the state still tells which, or else the dialogue from its start. Either way the
        user is told, and the message that arrived is not read as an answer to a lost question.
        """
        t = ctx.t
        salvaged = self._salvage(raw)
        if salvaged is not None:
            step = await self.ask_again(ctx, salvaged)
            if step is not None:
                note = t("The bot was updated while you were answering, so here is the question again.")
                step.replies.insert(0, Reply(note))
                return step
        step = await self.restart(ctx, raw or {})
        note = t("The bot was updated while you were answering, so this starts again from the beginning.")
        step.replies.insert(0, Reply(note))
        return step

    def _salvage(self, raw: Mapping[str, Any] | None) -> S | None:
        """The state's data under a phase this version knows (the first), or None if even that fails."""
        if not self.phases:
            return None
        try:
            state = self.state_type.model_validate({**(raw or {}), "phase": next(iter(self.phases))})
        except ValidationError:
            return None
        return state  # type: ignore[return-value]

    async def ask_again(self, ctx: Context, state: S) -> Step | None:
        """The current question asked afresh from the state's data, not its phase (None: cannot)."""
        return None

    async def restart(self, ctx: Context, raw: Mapping[str, Any]) -> Step:
        """The dialogue from its start, with what the stored state says it was started with."""
        step = await self.start(ctx, {})
        step.flow = self.name
        return step

    async def reprompt(self, ctx: Context, state: S) -> list[Reply]:
        """The current question again, as it was asked (after help, a photo, a refused command)."""
        if state.last_prompt is None:
            return []
        return [state.last_prompt.reply()]

    def leave_warning(self, ctx: Context, state: S) -> str:
        """What the user would lose by leaving; shown before a command interrupts the flow."""
        return ctx.t("You are in the middle of a conversation.")


class FlowTable:
    """Flows by name: the dialogue state row stores the name, the table finds the code.

    Built by the composition root from `bot.conversations.flows.default_flows()` and handed to
    every turn in its `Context`: nothing registers itself at import.
    """

    def __init__(self, flows: Iterable[Flow[Any]]) -> None:
        self._flows: dict[str, Flow[Any]] = {}
        for flow in flows:
            if flow.name in self._flows:
                raise ValueError(f"two flows named {flow.name!r}")
            self._flows[flow.name] = flow

    def get(self, name: str) -> Flow[Any] | None:
        return self._flows.get(name)

    def names(self) -> list[str]:
        return sorted(self._flows)

    def __iter__(self) -> Iterator[Flow[Any]]:
        return iter(self._flows.values())


def ask(
    state: FlowState,
    text: str,
    options: list[Option] | None = None,
    *,
    numbered: bool = True,
) -> Reply:
    """Ask a question and remember it, so that the answer can be matched against its options.

    `numbered=False` tells channels without buttons not to offer "reply 1, 2, 3": used when the
    expected answer is itself a number, so that "2" is read as the number two.
    """
    reply = Reply(text=text, options=options or [], numbered=numbered)
    state.last_prompt = Prompt.of(reply)
    return reply


def offered(state: FlowState) -> list[tuple[str, str]]:
    """The options of the open question: (id, label)."""
    return state.last_prompt.options if state.last_prompt is not None else []


def chosen(state: FlowState, msg: Incoming) -> str | None:
    """The id of the offered option the user picked: by button, by number (1-based), or by
    typing its label — whole or its first words, with or without diacritics, in any case
    ("gửi", "gui" pick "Gửi báo cáo"; "giu nguyen" picks "Giữ nguyên: 2.100")."""
    options = offered(state)
    ids = [o[0] for o in options]
    if msg.kind is Kind.OPTION and msg.option_id in ids:
        return msg.option_id
    if msg.kind is not Kind.TEXT:
        return None
    typed = fold(msg.text)
    if not typed:
        return None
    whole = match_label(typed, options, starts=False)
    if whole is not None:
        return whole
    numbered = state.last_prompt.numbered if state.last_prompt is not None else True
    if numbered and typed.isdigit():
        n = int(typed)
        if 1 <= n <= len(ids):
            return ids[n - 1]
    return match_label(typed, options)


def label_words(text: str) -> tuple[str, ...]:
    """The words of a label or of what was typed, folded: marks ("✓", "📎"), punctuation and
    diacritics left out, so "✓ Giữ nguyên: 2.100" reads as ("giu", "nguyen", "2", "100")."""
    return tuple(_WORD.findall(fold(text)))


_WORD = re.compile(r"[^\W_]+")


def match_label(typed: str, options: Iterable[tuple[str, str]], *, starts: bool = True) -> str | None:
    """The option whose label was typed: the whole label, else (`starts`) the one label that
    begins with the typed words. A typed number is an answer, never the start of a label; a
    start shared by two labels picks neither."""
    words = label_words(typed)
    if not words:
        return None
    labelled = [(opt_id, label_words(label)) for opt_id, label in options]
    whole = [opt_id for opt_id, label in labelled if label == words]
    if whole or not starts:
        return whole[0] if whole else None
    if all(w.isdigit() for w in words):
        return None
    begun = {opt_id for opt_id, label in labelled if label[: len(words)] == words}
    return begun.pop() if len(begun) == 1 else None


def word_of(msg: Incoming) -> str:
    """The folded text of a message ('' for non-text)."""
    return fold(msg.text) if msg.kind is Kind.TEXT else ""
