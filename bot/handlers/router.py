"""Routes one incoming message: to the open dialogue, to a command, or to the menu.

Commands in the middle of a dialogue are not obeyed blindly: the command table says what each
does there (/huy cancels, /trogiup helps and re-asks, the others ask first whether to leave the
unfinished report).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.conversations.engine import (
    Context,
    FlowState,
    FlowTable,
    Leave,
    StateLost,
    Step,
    ask,
    chosen,
    offered,
)
from bot.conversations.flows.outreach_flows import is_stop_word
from bot.domain.app import App
from bot.domain.commands import command_word
from bot.domain.messages import Handled, Incoming, Kind, Option, Reply
from bot.domain.parsing import parse_yes_no
from bot.handlers.command_table import MidDialogue, find, help_text, menu_reply
from bot.handlers.commands import Command, parse_command, run_command, start_flow
from bot.services.incoming import Turn, handle_incoming
from bot.services.later import run_later
from storage.models import DialogueState

log = logging.getLogger(__name__)

# A message longer than this is not read at all: it is no answer to any question we ask.
MAX_MESSAGE_CHARS = 4000


@dataclass
class Outcome:
    """The replies to send and the dialogue to store (as JSON) after one message."""

    replies: list[Reply]
    flow: str | None
    state: dict[str, Any]


@dataclass
class _Turn:
    """The turn being worked out: the replies so far and the open dialogue, typed."""

    replies: list[Reply] = field(default_factory=list)
    flow: str | None = None
    state: FlowState | None = None

    def end(self) -> None:
        self.flow, self.state = None, None

    def outcome(self) -> Outcome:
        if self.flow is None or self.state is None:
            return Outcome(self.replies, None, {})
        return Outcome(self.replies, self.flow, self.state.dump())


class Dialogue:
    """The handlers' side of every message: the flow table and the routing below.

    `handle` is the app's message handler (bot.runtime.bootstrap wires it in): the incoming-message
    service loads and saves inside one unit of work and calls `step` for the turn itself.
    """

    def __init__(self, flows: FlowTable) -> None:
        self.flows = flows

    async def handle(self, app: App, msg: Incoming) -> Handled:
        """The service steps the dialogue through `step`; then, outside its transaction, the
        work its replies left for later (a compiled report) is done."""
        started = time.perf_counter()
        handled = await handle_incoming(app, msg, self.step)
        handled.replies = await run_later(app, handled.replies, msg.channel)
        app.metrics.steps.labels(msg.channel).inc()
        app.metrics.step_seconds.observe(time.perf_counter() - started)
        return handled

    async def step(self, turn: Turn) -> Outcome:
        """One turn of the dialogue, inside the service's unit of work."""
        ctx = Context(
            uow=turn.uow,
            settings=turn.app.settings,
            forms=turn.app.forms,
            contact=turn.contact,
            grants=turn.grants,
            t=turn.t,
            now=turn.now,
            channel=turn.msg.channel,
            flows=self.flows,
            menu=menu_reply,
            external_id=turn.msg.external_id,
            client_address=turn.msg.client_address,
        )
        return await dispatch(ctx, turn.row, turn.msg)


async def dispatch(ctx: Context, row: DialogueState | None, msg: Incoming) -> Outcome:
    out = _Turn()
    await _route(ctx, out, row, msg)
    return out.outcome()


async def _route(ctx: Context, out: _Turn, row: DialogueState | None, msg: Incoming) -> None:
    t = ctx.t
    stale = False
    if row is not None and row.flow:
        expiry = timedelta(hours=ctx.settings.dialogue_expiry_hours)
        if row.updated_at + expiry < ctx.now:
            out.replies.append(
                Reply(t("Your unfinished conversation from earlier has expired; nothing from it was saved."))
            )
        else:
            stale = await _load(ctx, out, row)

    if msg.kind is Kind.TEXT and len(msg.text) > MAX_MESSAGE_CHARS:
        out.replies.append(
            Reply(
                t(
                    "Your message is too long ({n} characters). Please send a short answer.",
                    n=t.number(len(msg.text)),
                )
            )
        )
        if not stale:
            await _reprompt_or_menu(ctx, out)
        return

    cmd = _command_of(msg, out.state)
    if stale and cmd is None:
        return  # the recovered question is asked; this message answered a question that is gone
    if stale:
        out.replies.clear()  # a command is obeyed (or asked about) as in any open dialogue
    if cmd is None and not out.flow and is_stop_word(msg):  # plain "dừng" / "stop" stops outreach
        cmd = Command("dung")
    if out.flow:
        await _in_dialogue(ctx, out, msg, cmd)
    elif cmd is not None:
        await _apply(ctx, out, await run_command(ctx, cmd))
    elif ctx.contact.consent_at is None:
        await _apply(ctx, out, await run_command(ctx, Command("start")))
    elif msg.kind not in (Kind.TEXT, Kind.OPTION):
        out.replies.append(menu_reply(ctx, t("I can only read text messages.")))
    else:
        out.replies.append(menu_reply(ctx))


async def _load(ctx: Context, out: _Turn, row: DialogueState) -> bool:
    """The stored dialogue, typed. True when it had to be recovered: this version of the bot
    has no such phase or cannot read the state, so the flow asks its question again (or starts
    over) and says why, instead of failing on every message until the dialogue expires."""
    assert row.flow is not None
    flow = ctx.flows.get(row.flow)
    if flow is None:  # a flow that no longer exists in this version of the bot
        return False
    try:
        out.flow, out.state = row.flow, flow.load(row.state)
        return False
    except StateLost as err:
        log.warning("dialogue %s of contact %s recovered: %s", row.flow, ctx.contact.id, err)
    out.flow = row.flow
    await _apply(ctx, out, await flow.recover(ctx, row.state))
    return True


def _command_of(msg: Incoming, state: FlowState | None) -> Command | None:
    """A typed /command, or a menu button ('cmd:baocao') that the open question did not offer."""
    if msg.kind is Kind.TEXT:
        return parse_command(msg.text)
    if (
        msg.kind is Kind.OPTION
        and msg.option_id
        and msg.option_id.startswith("cmd:")
        and (state is None or msg.option_id not in {o[0] for o in offered(state)})
    ):
        return parse_command("/" + msg.option_id[4:])
    return None


async def _in_dialogue(ctx: Context, out: _Turn, msg: Incoming, cmd: Command | None) -> None:
    t = ctx.t
    assert out.flow is not None and out.state is not None
    flow = ctx.flows.get(out.flow)
    assert flow is not None
    state = out.state
    if state.leave is not None:
        await _on_leave_answer(ctx, out, msg, cmd)
        return
    if cmd is not None:
        spec = find(cmd.name) if cmd.known else None
        mid = spec.in_dialogue if spec is not None else MidDialogue.ASK
        if mid is MidDialogue.CANCEL:
            out.end()
            out.replies.append(Reply(t("Cancelled. Nothing was saved.")))
            out.replies.append(menu_reply(ctx, t("What would you like to do next?")))
        elif mid is MidDialogue.HELP:
            out.replies.append(Reply(help_text(ctx)))
            out.replies += await flow.reprompt(ctx, state)
        else:
            state.leave = Leave(cmd=cmd.name, arg=cmd.arg, known=cmd.known, saved=state.last_prompt)
            warning = (
                flow.leave_warning(ctx, state)
                + "\n"
                + t("Leave it for /{name}?", name=command_word(t.locale, cmd.name))
            )
            out.replies.append(
                ask(state, warning, [Option("leave", t("Leave")), Option("stay", t("Continue"))])
            )
        return
    if msg.kind not in (Kind.TEXT, Kind.OPTION):
        out.replies.append(Reply(t("I can only read text messages. Please type your answer.")))
        out.replies += await flow.reprompt(ctx, state)
        return
    try:
        step = await flow.resume(ctx, state, msg)
    except StateLost as err:  # a handler found the state unusable (a question the form no longer has…)
        log.warning("dialogue %s of contact %s recovered: %s", out.flow, ctx.contact.id, err)
        step = await flow.recover(ctx, state.dump())
    await _apply(ctx, out, step)


async def _on_leave_answer(ctx: Context, out: _Turn, msg: Incoming, cmd: Command | None) -> None:
    state = out.state
    assert state is not None and state.leave is not None
    pick = chosen(state, msg)
    if pick is None and msg.kind is Kind.TEXT and cmd is None:
        yn = parse_yes_no(msg.text)
        pick = None if yn is None else ("leave" if yn else "stay")
    leave = state.leave
    state.leave, state.last_prompt = None, leave.saved
    if pick == "leave":
        out.end()
        await _apply(ctx, out, await run_command(ctx, Command(leave.cmd, leave.arg, leave.known)))
        return
    flow = ctx.flows.get(out.flow or "")
    assert flow is not None
    if pick == "stay":
        out.replies += await flow.reprompt(ctx, state)
        return
    # Anything else is read as an answer to the question that was open before.
    await _in_dialogue(ctx, out, msg, cmd)


async def _apply(ctx: Context, out: _Turn, step: Step) -> None:
    out.replies += step.replies
    if step.state is None:
        out.end()
    else:
        out.flow, out.state = step.flow or out.flow, step.state
        if out.flow is None:
            raise RuntimeError("a step returned state without naming its flow")
    if step.then is None:
        return
    name, args = step.then
    if name == "menu":
        out.replies.append(menu_reply(ctx, ctx.t("What would you like to do next?")))
        return
    await _apply(ctx, out, await start_flow(ctx, name, args))


async def _reprompt_or_menu(ctx: Context, out: _Turn) -> None:
    flow = ctx.flows.get(out.flow) if out.flow else None
    if flow is not None and out.state is not None:
        out.replies += await flow.reprompt(ctx, out.state)
    else:
        out.replies.append(menu_reply(ctx))
