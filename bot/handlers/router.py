"""Routes one incoming message: to the open dialogue, to a command, or to the menu.

Commands in the middle of a dialogue are not obeyed blindly: /huy cancels, /trogiup helps and
re-asks, anything else asks first whether to leave the unfinished report.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.conversations.common import help_text, menu_reply
from bot.conversations.engine import Context, State, Step, ask, chosen
from bot.conversations.flows.outreach_flows import is_stop_word
from bot.conversations.registry import get_flow
from bot.domain.app import App
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import parse_yes_no
from bot.handlers.commands import Command, parse_command, run_command
from bot.services.incoming import Handled, Turn, handle_incoming
from storage.models import DialogueState

# A message longer than this is not read at all: it is no answer to any question we ask.
MAX_MESSAGE_CHARS = 4000


class Outcome:
    """The replies to send and the dialogue to store after one message."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.flow: str | None = None
        self.state: State = {}


async def handle_message(app: App, msg: Incoming) -> Handled:
    """What every channel calls for every incoming message: the service, stepping through `step`."""
    return await handle_incoming(app, msg, step)


async def step(turn: Turn) -> Outcome:
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
    )
    return await dispatch(ctx, turn.row, turn.msg)


async def dispatch(ctx: Context, row: DialogueState | None, msg: Incoming) -> Outcome:
    out = Outcome()
    t = ctx.t
    if row is not None and row.flow:
        out.flow, out.state = row.flow, dict(row.state or {})
        expiry = timedelta(hours=ctx.settings.dialogue_expiry_hours)
        if row.updated_at + expiry < ctx.now:
            out.replies.append(
                Reply(t("Your unfinished conversation from earlier has expired; nothing from it was saved."))
            )
            out.flow, out.state = None, {}

    if msg.kind is Kind.TEXT and len(msg.text) > MAX_MESSAGE_CHARS:
        out.replies.append(
            Reply(
                t(
                    "Your message is too long ({n} characters). Please send a short answer.",
                    n=t.number(len(msg.text)),
                )
            )
        )
        await _reprompt_or_menu(ctx, out)
        return out

    cmd = _command_of(msg, out.state if out.flow else {})
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
    return out


def _command_of(msg: Incoming, state: State) -> Command | None:
    """A typed /command, or a menu button ('cmd:baocao') that the open question did not offer."""
    if msg.kind is Kind.TEXT:
        return parse_command(msg.text)
    if msg.kind is Kind.OPTION and msg.option_id and msg.option_id.startswith("cmd:"):
        offered = {o[0] for o in state.get("options", [])}
        if msg.option_id not in offered:
            return parse_command("/" + msg.option_id[4:])
    return None


async def _in_dialogue(ctx: Context, out: Outcome, msg: Incoming, cmd: Command | None) -> None:
    t = ctx.t
    assert out.flow is not None
    flow = get_flow(out.flow)
    if flow is None:  # a flow that no longer exists in this version of the bot
        out.flow, out.state = None, {}
        out.replies.append(menu_reply(ctx))
        return
    state = out.state
    if "leave" in state:
        await _on_leave_answer(ctx, out, msg, cmd)
        return
    if cmd is not None:
        if cmd.name == "huy":
            out.flow, out.state = None, {}
            out.replies.append(Reply(t("Cancelled. Nothing was saved.")))
            out.replies.append(menu_reply(ctx, t("What would you like to do next?")))
        elif cmd.name == "trogiup":
            out.replies.append(Reply(help_text(ctx)))
            out.replies += await flow.reprompt(ctx, state)
        else:
            state["leave"] = {
                "cmd": cmd.name,
                "arg": cmd.arg,
                "known": cmd.known,
                "saved": {k: state.get(k) for k in ("options", "numbered", "last_prompt")},
            }
            warning = flow.leave_warning(ctx, state) + "\n" + t("Leave it for /{name}?", name=cmd.name)
            out.replies.append(
                ask(state, warning, [Option("leave", t("Leave")), Option("stay", t("Continue"))])
            )
        return
    if msg.kind not in (Kind.TEXT, Kind.OPTION):
        out.replies.append(Reply(t("I can only read text messages. Please type your answer.")))
        out.replies += await flow.reprompt(ctx, state)
        return
    await _apply(ctx, out, await flow.resume(ctx, state, msg))


async def _on_leave_answer(ctx: Context, out: Outcome, msg: Incoming, cmd: Command | None) -> None:
    state = out.state
    pick = chosen(state, msg)
    if pick is None and msg.kind is Kind.TEXT and cmd is None:
        yn = parse_yes_no(msg.text)
        pick = None if yn is None else ("leave" if yn else "stay")
    leave: dict[str, Any] = state.pop("leave")
    state.update(leave["saved"])
    if pick == "leave":
        out.flow, out.state = None, {}
        await _apply(ctx, out, await run_command(ctx, Command(leave["cmd"], leave["arg"], leave["known"])))
        return
    flow = get_flow(out.flow or "")
    assert flow is not None
    if pick == "stay":
        out.replies += await flow.reprompt(ctx, state)
        return
    # Anything else is read as an answer to the question that was open before.
    await _in_dialogue(ctx, out, msg, cmd)


async def _apply(ctx: Context, out: Outcome, step: Step) -> None:
    out.replies += step.replies
    if step.state is None:
        out.flow, out.state = None, {}
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
    flow = get_flow(name)
    assert flow is not None, name
    nxt = await flow.start(ctx, args)
    nxt.flow = name
    await _apply(ctx, out, nxt)


async def _reprompt_or_menu(ctx: Context, out: Outcome) -> None:
    flow = get_flow(out.flow) if out.flow else None
    if flow is not None:
        out.replies += await flow.reprompt(ctx, out.state)
    else:
        out.replies.append(menu_reply(ctx))
