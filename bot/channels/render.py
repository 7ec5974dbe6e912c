"""Rendering shared by the channels: long texts cut into messages, options as numbered lists.

Telegram shows options as buttons and needs only `split_text`; Zalo has no buttons, so options
become lines of the message and a hint says what to type. Nothing here talks to a platform.
"""

from __future__ import annotations

from bot.domain.commands import command_text
from bot.domain.i18n import Translator
from bot.domain.messages import Reply

TELEGRAM_MAX_CHARS = 4096
COMMAND_PREFIX = "cmd:"  # an option that runs a command ("cmd:baocao" is /baocao)
ZALO_MAX_CHARS = 2000


def split_text(text: str, limit: int) -> list[str]:
    """Cut `text` into parts of at most `limit` characters, on line boundaries where possible.

    A single line longer than `limit` is cut at its last space before the limit (or hard, if it
    has none). Blank lines between parts are dropped; an empty text gives one empty part.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current.strip():
            parts.append(current)
        current = ""
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            if cut <= 0:
                cut = limit
            parts.append(line[:cut])
            line = line[cut:].lstrip(" ")
        current = line
    if current.strip() or not parts:
        parts.append(current)
    return [p.strip("\n") for p in parts]


def options_as_text(reply: Reply, t: Translator) -> str:
    """The reply's text with its options written out, for channels without buttons.

    Numbered (the default): "1. Tiếng Việt / 2. English" and "Trả lời 1 hoặc 2." — the engine
    reads a typed number or label as the choice. When the expected answer is itself a number
    (`numbered=False`), the options are listed as words to type instead, so that "2" stays the
    number two. Menu entries ("cmd:…" options) are listed as the commands to type.
    """
    if not reply.options:
        return reply.text
    labels = [o.label for o in reply.options]
    commands = [
        command_text(t, o.id[len(COMMAND_PREFIX) :]) for o in reply.options if o.id.startswith(COMMAND_PREFIX)
    ]
    if len(commands) == len(labels):
        # The main menu: shown outside any dialogue, where no question is open that a typed
        # number could answer, so each entry is shown as the command that does the same.
        lines = [f"{command} — {label}" for command, label in zip(commands, labels, strict=True)]
        hint = t("Type one of the commands above, for example {command}.", command=commands[0])
    elif reply.numbered:
        lines = [f"{i}. {label}" for i, label in enumerate(labels, 1)]
        if len(labels) == 1:
            hint = t("Reply {number}.", number="1")
        else:
            numbers = ", ".join(str(i) for i in range(1, len(labels)))
            hint = t("Reply {numbers} or {last}.", numbers=numbers, last=str(len(labels)))
    else:
        lines = [f"• {label}" for label in labels]
        hint = t("Or type one of the choices above.")
    body = reply.text.rstrip("\n")
    return "\n".join([body, "", *lines, "", f"({hint})"]) if body else "\n".join([*lines, "", f"({hint})"])
