"""The command table: every command declared once, and everything derived from it.

A row says what the command is called (Vietnamese, with its English alias), who it is offered to
(an `Action` of bot.domain.permissions; None: everyone), whether it works before registering and
in group chats, how it shows in the menu and in the platforms' command lists, its help line, and
what it starts: a flow, or an answer given at once. Routing (bot.handlers.commands), the main
menu, /trogiup, Telegram's command list, the group-chat filter of Telegram and Zalo, and the
README's table (`readme_table`, checked by tests/test_command_table.py) all read this table.

The flows a command starts check the permission again (through the services) and say why not,
so a command typed by someone it is not offered to gets that explanation rather than silence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from bot.conversations.engine import Context
from bot.conversations.flows.console_link import console_link_reply
from bot.conversations.flows.data_rights import my_data_reply
from bot.conversations.flows.linking import unlink_reply
from bot.conversations.flows.outreach_flows import news_reply, resume_reply, stop_reply
from bot.domain.commands import command_word
from bot.domain.i18n import N_, Translator
from bot.domain.messages import Option, Reply
from bot.domain.permissions import Action, holds, roles_for
from bot.handlers.answers import whoami

# An answer given at once: (context, the text after the command) → replies.
Answer = Callable[[Context, str], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class StartFlow:
    """Start the flow `name` with `args`; the text after the command goes in as `arg_key`."""

    name: str
    args: Mapping[str, object] = field(default_factory=dict)
    arg_key: str | None = None

    def arguments(self, arg: str) -> dict[str, object]:
        out = dict(self.args)
        if self.arg_key and arg:
            out[self.arg_key] = arg
        return out


class Shown(Enum):
    """When the main menu offers a command (on top of its action)."""

    ALWAYS = "always"
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"


class MidDialogue(Enum):
    """What the command does when typed while a dialogue is open."""

    ASK = "ask"  # ask first whether to leave the dialogue for it
    CANCEL = "cancel"  # end the dialogue; nothing of it is saved
    HELP = "help"  # show the help, then the open question again


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str  # the Vietnamese command word, without the slash: what the table is keyed by
    alias: str | None  # the English alias
    help: str | None  # msgid: the help line after "/name — "; None: not in /trogiup nor the README
    starts: StartFlow | Answer
    action: Action | None = None  # offered to whoever may take this action; None: everyone
    open: bool = False  # works before registering (otherwise it leads to /start)
    groups: bool = False  # answered in group chats, with a pointer to a private chat
    label: str | None = None  # msgid: the short name, for the menu and the platforms' lists
    menu: Shown | None = None  # when the main menu offers it as a button
    menu_label: str | None = None  # msgid: the button, when it differs from `label`
    listed: bool = False  # in the command lists of the platforms (Telegram's setMyCommands)
    in_dialogue: MidDialogue = MidDialogue.ASK

    def __post_init__(self) -> None:
        if (self.menu is not None or self.listed) and self.label is None:
            raise ValueError(f"/{self.name} is shown in a menu or list and needs a label")

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, self.alias) if self.alias else (self.name,)

    def word(self, t: Translator) -> str:
        """What `t`'s reader types: the English alias in English, the Vietnamese name otherwise."""
        return command_word(t.locale, self.name)

    def offered_to(self, ctx: Context) -> bool:
        return self.action is None or holds(ctx.grants, self.action)


# ----------------------------------------------------------------------------- answers


async def _help(ctx: Context, arg: str) -> list[Reply]:
    return [Reply(help_text(ctx))]


async def _nothing_to_cancel(ctx: Context, arg: str) -> list[Reply]:
    return [menu_reply(ctx, ctx.t("There is nothing to cancel."))]


async def _menu(ctx: Context, arg: str) -> list[Reply]:
    return [menu_reply(ctx)]


async def _whoami(ctx: Context, arg: str) -> list[Reply]:
    return [await whoami(ctx)]


async def _news(ctx: Context, arg: str) -> list[Reply]:
    return [await news_reply(ctx)]


async def _stop(ctx: Context, arg: str) -> list[Reply]:
    return [await stop_reply(ctx)]


async def _resume(ctx: Context, arg: str) -> list[Reply]:
    return [await resume_reply(ctx)]


async def _unlink(ctx: Context, arg: str) -> list[Reply]:
    return [await unlink_reply(ctx)]


async def _my_data(ctx: Context, arg: str) -> list[Reply]:
    return [await my_data_reply(ctx)]


async def _web(ctx: Context, arg: str) -> list[Reply]:
    return [await console_link_reply(ctx)]


# ----------------------------------------------------------------------------- the table

# In the order of the help, the menu and the platforms' lists.
COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "start",
        None,
        N_("register or start again"),
        StartFlow("onboarding", arg_key="code"),  # "/start ABCD-EFGH" from an invite link
        open=True,
        groups=True,
        label=N_("Register or start again"),
        menu=Shown.UNREGISTERED,
        menu_label=N_("Get started"),
        listed=True,
    ),
    CommandSpec(
        "baocao",
        "report",
        N_("village report (half-year or year)"),
        # "/baocao <unit id> <period>" from the button of a returned report opens its correction.
        StartFlow("form", {"form": "village_report"}, arg_key="target"),
        action=Action.REPORT,
        label=N_("Village report"),
        menu=Shown.ALWAYS,
        listed=True,
    ),
    CommandSpec(
        "hoatdong",
        "activity",
        N_("report a class, session or event"),
        StartFlow("form", {"form": "activity_report"}),
        action=Action.REPORT,
        label=N_("Activity report"),
        menu=Shown.ALWAYS,
        listed=True,
    ),
    CommandSpec(
        "baocaoxa",
        "communereport",
        N_("the commune's own report: learning units, branches, fund, training, awards"),
        StartFlow("form", {"form": "commune_report"}, arg_key="target"),  # a returned report's button
        action=Action.REPORT_COMMUNE,
        label=N_("Commune report"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "traloi",
        "answer",
        N_("answer a request from your commune or province"),
        StartFlow("form", {"answer": True}, arg_key="request"),  # "/traloi 12" from the request's button
        action=Action.REPORT,
        label=N_("Answer a request"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "thon",
        "villages",
        N_("add or rename villages, create invite codes"),
        StartFlow("villages"),
        action=Action.MANAGE_VILLAGES,
        label=N_("Villages and invite codes"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "baocaotonghop",
        "summary",
        N_("compiled report of your commune or province: summary, Excel file, chart"),
        StartFlow("summary"),
        action=Action.COMPILE_REPORT,
        label=N_("Compiled report"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "hoso",
        "profile",
        N_("who signs your compiled reports, and the symbol of their number"),
        StartFlow("profile"),
        action=Action.SET_PROFILE,
    ),
    CommandSpec(
        "duyet",
        "review",
        N_("review the reports of the units below yours: approve, return for correction, reopen"),
        StartFlow("review"),
        action=Action.REVIEW,
        label=N_("Review reports"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "guitin",
        "broadcast",
        N_("send an article or a message to people of your area"),
        StartFlow("broadcast"),
        action=Action.BROADCAST,
        label=N_("Send a broadcast"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "yeucau",
        "request",
        N_("ask the officers of your area for an ad hoc report, with a deadline"),
        StartFlow("request"),
        action=Action.REQUEST,
        label=N_("Ad hoc request"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "tinhtrang",
        "status",
        N_("delivery counts of your broadcasts (cancel one); who has answered your requests"),
        StartFlow("status", arg_key="arg"),  # "/tinhtrang huy 12", "/tinhtrang yc 12" from its buttons
        action=Action.BROADCAST,
        label=N_("Broadcast status"),
        menu=Shown.ALWAYS,
    ),
    CommandSpec(
        "web",
        None,
        N_("a link to open the web console in your browser: overview, reviews, invite slips, downloads"),
        _web,
        action=Action.CONSOLE,
    ),
    CommandSpec(
        "tin",
        "news",
        N_("the newest article for you"),
        _news,
        label=N_("News"),
        menu=Shown.REGISTERED,
    ),
    CommandSpec(
        "chude",
        "topics",
        N_("choose the topics of your weekly article"),
        StartFlow("topics", arg_key="toggle"),  # "/chude <topic>" from its buttons
    ),
    # Whoever asks to stop is obeyed, registered or not.
    CommandSpec("dung", "stop", N_("stop all messages (or type “stop”)"), _stop, open=True),
    CommandSpec("batdau", "resume", N_("receive messages again"), _resume),
    CommandSpec(
        "toi",
        "me",
        N_("my role and area"),
        _whoami,
        label=N_("My role and area"),
        menu=Shown.ALWAYS,
        listed=True,
    ),
    CommandSpec(
        "lienket",
        "link",
        N_("use this account on Zalo, Telegram or the web chat too"),
        StartFlow("linking", arg_key="code"),
        open=True,
        label=N_("Use the same account on Zalo and Telegram"),
        listed=True,
    ),
    CommandSpec(
        "huylienket",
        "unlink",
        N_("take this chat out of your account (your other apps keep it)"),
        _unlink,
    ),
    # Anyone may see and delete what the bot keeps about them, registered or not (Law 91/2025/QH15).
    CommandSpec(
        "dulieu",
        "mydata",
        N_("see what the bot keeps about you, with a file of it"),
        _my_data,
        open=True,
    ),
    CommandSpec(
        "xoadulieu",
        "deletemydata",
        N_("withdraw your consent and delete your data"),
        StartFlow("erase_data"),
        open=True,
    ),
    CommandSpec(
        "ngonngu",
        "language",
        N_("change language"),
        StartFlow("language"),
        open=True,
        label=N_("Change language"),
        listed=True,
    ),
    CommandSpec(
        "huy",
        "cancel",
        N_("cancel what you are doing"),
        _nothing_to_cancel,
        open=True,
        in_dialogue=MidDialogue.CANCEL,
        label=N_("Cancel what you are doing"),
        listed=True,
    ),
    CommandSpec(
        "trogiup",
        "help",
        N_("this help"),
        _help,
        open=True,
        in_dialogue=MidDialogue.HELP,
        groups=True,
        label=N_("Help"),
        menu=Shown.ALWAYS,
        listed=True,
    ),
    # The "all topics are fine" button of /chude leads back to the menu.
    CommandSpec("menu", None, None, _menu, open=True),
)

_BY_WORD: dict[str, CommandSpec] = {}
for _spec in COMMANDS:
    for _word in _spec.words:
        if _word in _BY_WORD:
            raise ValueError(f"/{_word} is declared twice")
        _BY_WORD[_word] = _spec


def find(word: str) -> CommandSpec | None:
    """The command a word names (its Vietnamese name or its English alias, any case)."""
    return _BY_WORD.get(word.lower())


def listed_commands() -> list[CommandSpec]:
    """The commands for the platforms' command lists, in order."""
    return [c for c in COMMANDS if c.listed]


def group_commands() -> frozenset[str]:
    """The commands answered in group chats (canonical names)."""
    return frozenset(c.name for c in COMMANDS if c.groups)


# ----------------------------------------------------------------------------- menu and help


def menu_reply(ctx: Context, intro: str | None = None) -> Reply:
    """What the user can do now, as buttons. Shown for free text outside a dialogue."""
    t = ctx.t
    registered = ctx.contact.consent_at is not None
    options: list[Option] = []
    for c in COMMANDS:
        if c.menu is None or not c.offered_to(ctx):
            continue
        if (c.menu is Shown.REGISTERED and not registered) or (c.menu is Shown.UNREGISTERED and registered):
            continue
        label = c.menu_label or c.label
        assert label is not None
        options.append(Option(f"cmd:{c.name}", t(label)))
    return Reply(text=intro or t("What would you like to do?"), options=options)


def help_text(ctx: Context) -> str:
    t = ctx.t
    lines = [t("Commands:")]
    lines += [f"/{c.word(t)} — {t(c.help)}" for c in COMMANDS if c.help and c.offered_to(ctx)]
    lines += [
        "",
        t(
            "During a report you can type “back” (to the previous question), “skip” (a question "
            "that may be skipped), “keep” (the earlier answer) and “cancel” (the whole report)."
        ),
    ]
    return "\n".join(lines)


def platform_commands(t: Translator) -> list[tuple[str, str]]:
    """(command, description) for a platform's command list, in `t`'s language: English lists
    the English aliases."""
    return [(c.word(t), t(c.label)) for c in listed_commands() if c.label]


# ----------------------------------------------------------------------------- the README


def _who(c: CommandSpec) -> str:
    if c.action is None:
        return "everyone" if c.open else "everyone registered"
    return ", ".join(f"`{role}`" for role in roles_for(c.action))


def readme_table() -> str:
    """The README's command table (markdown, in English): "who" names the roles as the CLI does."""
    rows = ["| command | English alias | who | what |", "|---|---|---|---|"]
    for c in COMMANDS:
        if c.help is None:
            continue
        alias = f"`/{c.alias}`" if c.alias else ""
        groups = " (also in group chats)" if c.groups else ""
        rows.append(f"| `/{c.name}` | {alias} | {_who(c)} | {c.help}{groups} |")
    return "\n".join(rows) + "\n"
