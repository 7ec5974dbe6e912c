"""Commands as users type them, and running one: what each does is in the command table."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.conversations.engine import Context, Step
from bot.handlers.command_table import StartFlow, find, menu_reply

_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # canonical, or the unknown word as typed
    arg: str = ""
    known: bool = True


def parse_command(text: str) -> Command | None:
    """'/baocao', '/report@KhuyenHocBot', '/start ABCD-EFGH' → a Command; other text → None."""
    m = _COMMAND.match(text.strip())
    if not m:
        return None
    word = m.group(1).lower()
    arg = (m.group(2) or "").strip()[:64]
    spec = find(word)
    if spec is None:
        return Command(word, arg, known=False)
    return Command(spec.name, arg)


async def run_command(ctx: Context, cmd: Command) -> Step:
    """Start what the command asks for. The caller stores the returned state."""
    # By any of its words: a dialogue stored before a rename may still name a command by its alias.
    spec = find(cmd.name) if cmd.known else None
    if spec is None:
        return Step([menu_reply(ctx, ctx.t("I do not know the command /{name}.", name=cmd.name))])
    arg = cmd.arg
    if ctx.contact.consent_at is None and not spec.open:
        spec, arg = find("start"), ""
        assert spec is not None
    if isinstance(spec.starts, StartFlow):
        return await start_flow(ctx, spec.starts.name, spec.starts.arguments(arg))
    return Step(await spec.starts(ctx, arg))


async def start_flow(ctx: Context, name: str, args: dict[str, object]) -> Step:
    flow = ctx.flows.get(name)
    assert flow is not None, name
    step = await flow.start(ctx, dict(args))
    step.flow = name
    return step
