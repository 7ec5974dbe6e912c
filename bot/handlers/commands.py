"""The command table: Vietnamese commands with English aliases, and what each one does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.conversations.common import describe_unit, help_text, menu_reply, role_label
from bot.conversations.engine import Context, Step
from bot.conversations.flows.outreach_flows import news_reply, resume_reply, stop_reply
from bot.domain.messages import Reply
from bot.domain.permissions import Action, holds

# command word → canonical name
ALIASES = {
    "start": "start",
    "baocao": "baocao",
    "report": "baocao",
    "hoatdong": "hoatdong",
    "activity": "hoatdong",
    "huy": "huy",
    "cancel": "huy",
    "trogiup": "trogiup",
    "help": "trogiup",
    "ngonngu": "ngonngu",
    "language": "ngonngu",
    "toi": "toi",
    "me": "toi",
    "thon": "thon",
    "villages": "thon",
    "menu": "menu",
    "lienket": "lienket",
    "link": "lienket",
    # Outreach. /batdau ("begin") restarts messages; before registering it still leads to /start.
    "tin": "tin",
    "news": "tin",
    "chude": "chude",
    "topics": "chude",
    "dung": "dung",
    "stop": "dung",
    "batdau": "resume",
    "resume": "resume",
    "guitin": "guitin",
    "broadcast": "guitin",
    "tinhtrang": "tinhtrang",
    "status": "tinhtrang",
    # Compiled reports (bot/conversations/flows/summary.py).
    "baocaotonghop": "baocaotonghop",
    "summary": "baocaotonghop",
}
# Commands that need no registration first.
# /dung too: whoever asks to stop is obeyed, registered or not.
OPEN_COMMANDS = frozenset({"start", "trogiup", "ngonngu", "huy", "menu", "lienket", "dung"})
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
    if word in ALIASES:
        return Command(ALIASES[word], arg)
    return Command(word, arg, known=False)


async def run_command(ctx: Context, cmd: Command) -> Step:
    """Start what the command asks for. The caller stores the returned state."""
    t = ctx.t
    if not cmd.known:
        return Step([menu_reply(ctx, t("I do not know the command /{name}.", name=cmd.name))])
    if ctx.contact.consent_at is None and cmd.name not in OPEN_COMMANDS:
        cmd = Command("start")
    if cmd.name == "start":
        return await _start_flow(ctx, "onboarding", {"code": cmd.arg} if cmd.arg else {})
    if cmd.name == "baocao":
        return await _start_flow(ctx, "form", {"form": "village_report"})
    if cmd.name == "hoatdong":
        return await _start_flow(ctx, "form", {"form": "activity_report"})
    if cmd.name == "ngonngu":
        return await _start_flow(ctx, "language", {})
    if cmd.name == "thon":
        return await _start_flow(ctx, "villages", {})
    if cmd.name == "trogiup":
        return Step([Reply(help_text(ctx))])
    if cmd.name == "huy":
        return Step([menu_reply(ctx, t("There is nothing to cancel."))])
    if cmd.name == "toi":
        return Step([await whoami(ctx)])
    if cmd.name == "tin":
        return Step([await news_reply(ctx)])
    if cmd.name == "chude":
        return await _start_flow(ctx, "topics", {"toggle": cmd.arg} if cmd.arg else {})
    if cmd.name == "dung":
        return Step([await stop_reply(ctx)])
    if cmd.name == "resume":
        return Step([await resume_reply(ctx)])
    if cmd.name == "guitin":
        return await _start_flow(ctx, "broadcast", {})
    if cmd.name == "tinhtrang":
        return await _start_flow(ctx, "status", {"arg": cmd.arg})
    if cmd.name == "baocaotonghop":
        return await _start_flow(ctx, "summary", {})
    if cmd.name == "lienket":
        return await _start_flow(ctx, "linking", {"code": cmd.arg} if cmd.arg else {})
    return Step([menu_reply(ctx)])


async def _start_flow(ctx: Context, name: str, args: dict[str, object]) -> Step:
    flow = ctx.flows.get(name)
    assert flow is not None, name
    step = await flow.start(ctx, dict(args))
    step.flow = name
    return step


async def whoami(ctx: Context) -> Reply:
    t = ctx.t
    lines: list[str] = []
    for g in ctx.grants:
        lines.append(f"• {role_label(t, g.role)}: {await describe_unit(ctx, g.unit)}")
    if not lines:
        lines.append(t("You are not registered yet. Send /start."))
    else:
        lines.insert(0, t("Your roles and areas:"))
        if holds(ctx.grants, Action.REPORT):
            lines.append(t("You can send reports for these areas."))
    lines.append(t("Language: {language}", language="Tiếng Việt" if t.locale == "vi" else "English"))
    return Reply("\n".join(lines))
