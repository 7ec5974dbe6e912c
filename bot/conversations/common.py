"""Pieces several dialogues share: role names, unit descriptions, the main menu."""

from __future__ import annotations

from bot.conversations.engine import Context
from bot.domain.i18n import N_, Translator
from bot.domain.messages import Option, Reply
from bot.domain.permissions import Action, holds
from storage.models import (
    ADMIN,
    COMMUNE_OFFICER,
    MEMBER,
    PROVINCE_STAFF,
    VILLAGE_OFFICER,
    Unit,
)

ROLE_LABELS = {
    MEMBER: N_("Member"),
    VILLAGE_OFFICER: N_("Village officer"),
    COMMUNE_OFFICER: N_("Commune study-promotion officer"),
    PROVINCE_STAFF: N_("Province study-promotion staff"),
    ADMIN: N_("Administrator"),
}


def role_label(t: Translator, role: str) -> str:
    return t(ROLE_LABELS.get(role, role))


async def describe_unit(ctx: Context, unit: Unit) -> str:
    """'Thôn Nà Rụa, Phường Thục Phán, Cao Bằng': the unit and its ancestors, nearest first."""
    chain = [unit, *reversed(await ctx.uow.units.ancestors(unit))]
    return ", ".join(u.name for u in chain)


def is_officer(ctx: Context) -> bool:
    return holds(ctx.grants, Action.REPORT)


def menu_reply(ctx: Context, intro: str | None = None) -> Reply:
    """What the user can do now, as buttons. Shown for free text outside a dialogue."""
    t = ctx.t
    options: list[Option] = []
    if is_officer(ctx):
        options += [
            Option("cmd:baocao", t("Village report")),
            Option("cmd:hoatdong", t("Activity report")),
        ]
    if holds(ctx.grants, Action.MANAGE_VILLAGES):
        options += [Option("cmd:thon", t("Villages and invite codes"))]
    if holds(ctx.grants, Action.COMPILE_REPORT):
        options += [Option("cmd:baocaotonghop", t("Compiled report"))]
    if holds(ctx.grants, Action.BROADCAST):
        options += [
            Option("cmd:guitin", t("Send a broadcast")),
            Option("cmd:tinhtrang", t("Broadcast status")),
        ]
    if ctx.contact.consent_at is None:
        options.append(Option("cmd:start", t("Get started")))
    else:
        options.append(Option("cmd:tin", t("News")))
    options += [Option("cmd:toi", t("My role and area")), Option("cmd:trogiup", t("Help"))]
    text = intro or t("What would you like to do?")
    return Reply(text=text, options=options)


def help_text(ctx: Context) -> str:
    t = ctx.t
    lines = [t("Commands:"), t("/start — register or start again"), t("/toi — my role and area")]
    if is_officer(ctx):
        lines += [
            t("/baocao — village report (half-year or year)"),
            t("/hoatdong — report a class, session or event"),
        ]
    if holds(ctx.grants, Action.MANAGE_VILLAGES):
        lines.append(t("/thon — add or rename villages, create invite codes"))
    if holds(ctx.grants, Action.COMPILE_REPORT):
        lines.append(
            t("/baocaotonghop — compiled report of your commune or province: summary, Excel file, chart")
        )
    if holds(ctx.grants, Action.BROADCAST):
        lines += [
            t("/guitin — send an article or a message to people of your area"),
            t("/tinhtrang — delivery counts of your broadcasts; cancel one"),
        ]
    lines += [
        t("/tin — the newest article for you"),
        t("/chude — choose the topics of your weekly article"),
        t("/dung — stop all messages (or type “dừng”); /batdau — receive them again"),
    ]
    lines += [
        t("/lienket — use this account on Zalo, Telegram or the web chat too"),
        t("/ngonngu — change language"),
        t("/huy — cancel what you are doing"),
        t("/trogiup — this help"),
        "",
        t(
            "During a report you can type: “quay lại” (back), “bỏ qua” (skip), “giữ nguyên” (keep), “hủy” (cancel)."
        ),
    ]
    return "\n".join(lines)
