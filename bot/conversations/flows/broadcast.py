"""/guitin (/broadcast): a commune officer or province staff member sends a library article or
their own text to people of their area.

Area → whole area or some communes/villages → members, officers or both → topics → article or
text (with an optional photo link) → preview with the number of recipients → send now or at a
chosen time. The audience is checked again by bot.services.broadcasts when it is queued.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import Field

from bot.conversations.engine import (
    CANCEL_WORDS,
    Context,
    Flow,
    FlowState,
    Step,
    ask,
    chosen,
    phase_table,
    word_of,
)
from bot.conversations.flows.outreach_flows import topic_names, topics_of, when_text
from bot.conversations.widgets.unit_picker import LIST_LIMIT, UnitPicker, unit_options
from bot.domain.clock import VN_TZ
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import ParseError, fold, parse_date
from bot.domain.permissions import NotAllowed
from bot.domain.text import TITLE_TEXT, shorten
from bot.services.actor import Actor
from bot.services.broadcasts import (
    MAX_TEXT,
    MEMBERS,
    OFFICERS,
    Audience,
    Message,
    article_translations,
    articles,
    broadcast_areas,
    compose,
    count_recipients,
    queue_broadcast,
)
from storage.models import COMMUNE, PROVINCE, VILLAGE_KINDS, Unit
from storage.models_outreach import CAMPAIGN

MAX_DAYS_AHEAD = 90
_TIME = re.compile(r"(?:^|\s)(\d{1,2})\s*(?:[:h]\s*(\d{2})?|giờ|gio)\s*(?:phút|phut)?$")
_AT = re.compile(r"\s*(?:lúc|luc|at)\s*$")
_URL = re.compile(r"^https?://\S+$")


def parse_when(text: str, today: date) -> datetime | None:
    """'25/11 19:00', '25/11/2026 19h', '19:30' (today) → an aware time in Vietnam; None if unreadable."""
    s = text.strip().lower()
    m = _TIME.search(s)
    if m is None:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    rest = _AT.sub("", s[: m.start()]).strip(" ,-")
    try:
        day = parse_date(rest, today) if rest else today
    except ParseError:
        return None
    return datetime.combine(day, time(hour, minute), tzinfo=VN_TZ)


Phase = Literal[
    "area",
    "scope",
    "parts",
    "groups",
    "topics",
    "what",
    "item",
    "text",
    "photo",
    "preview",
    "when",
    "confirm_later",
]


class BroadcastState(FlowState):
    phase: Phase = "area"
    area_id: int | None = None
    unit_ids: list[int] = Field(default_factory=list)  # the whole area, or the communes/villages chosen in it
    groups: list[str] = Field(default_factory=list)  # MEMBERS and/or OFFICERS
    topics: list[str] = Field(default_factory=list)
    item_key: str | None = None  # a library article, or
    text: str | None = None  # the officer's own message, with
    image_url: str | None = None  # an optional photo link
    count: int = 0  # recipients at the preview
    send_at: datetime | None = None


class BroadcastComposer(Flow[BroadcastState]):
    name = "broadcast"
    state_type = BroadcastState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        t = ctx.t
        areas = broadcast_areas(ctx.grants)
        if not areas:
            return Step(
                [
                    Reply(
                        t(
                            "Only commune officers and province staff can send broadcasts. Send /me to see your role."
                        )
                    )
                ]
            )
        state = BroadcastState()
        if len(areas) == 1:
            return self._ask_scope(ctx, state, areas[0])
        state.phase = "area"
        return Step(
            [ask(state, t("Which area do you want to write to?"), unit_options(areas, len(areas)))], state
        )

    async def resume(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        if word_of(msg) in CANCEL_WORDS or chosen(state, msg) == "cancel":
            return Step([Reply(ctx.t("Cancelled. Nothing was sent."))], None, ("menu", {"quiet": True}))
        return await super().resume(ctx, state, msg)

    def _again(self, ctx: Context, state: BroadcastState, problem: str | None = None) -> Step:
        text = problem or ctx.t("Please answer with one of the choices.")
        last = state.last_prompt
        return Step([Reply(text), last.reply()] if last is not None else [Reply(text)], state)

    async def _area(self, ctx: Context, state: BroadcastState) -> Unit:
        unit = await ctx.uow.units.get(int(state.area_id or 0))
        assert unit is not None
        return unit

    # ---- where ----------------------------------------------------------------------------

    async def _on_area(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """One of the officer's areas, then who in it."""
        pick = chosen(state, msg)
        areas = {f"unit:{u.id}": u for u in broadcast_areas(ctx.grants)}
        if pick not in areas:
            return self._again(ctx, state)
        return self._ask_scope(ctx, state, areas[pick])

    def _ask_scope(self, ctx: Context, state: BroadcastState, area: Unit) -> Step:
        t = ctx.t
        state.phase, state.area_id, state.unit_ids, state.topics = "scope", area.id, [], []
        parts = t("Some communes") if area.kind == PROVINCE else t("Some villages")
        options = [
            Option("whole", t("All of {area}", area=area.name)),
            Option("parts", parts),
            Option("cancel", t("Cancel")),
        ]
        return Step(
            [ask(state, t("New broadcast. Who in {area} should receive it?", area=area.name), options)], state
        )

    def _part_kinds(self, area: Unit) -> tuple[str, ...]:
        return (COMMUNE,) if area.kind == PROVINCE else VILLAGE_KINDS

    async def _on_scope(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """The whole area (then who), or some of its communes or villages."""
        pick = chosen(state, msg)
        if pick == "whole":
            state.unit_ids = [int(state.area_id or 0)]
            return self._ask_groups(ctx, state)
        if pick == "parts":
            state.phase = "parts"
            return await self._ask_parts(ctx, state)
        return self._again(ctx, state)

    async def _ask_parts(self, ctx: Context, state: BroadcastState, note: str | None = None) -> Step:
        t = ctx.t
        area = await self._area(ctx, state)
        children = await ctx.uow.units.children(area.id, self._part_kinds(area), on=ctx.today)
        selected = state.unit_ids
        names = {u.id: u.name for u in children}
        for uid in selected:
            if uid not in names:
                unit = await ctx.uow.units.get(uid)
                names[uid] = unit.name if unit else str(uid)
        shown = [u for u in children if u.id in selected] + [u for u in children if u.id not in selected]
        options = [
            Option(o.id, ("✓ " if u.id in selected else "") + o.label)
            for u, o in zip(shown, unit_options(shown), strict=False)
        ]
        options += [Option("done", t("Continue")), Option("cancel", t("Cancel"))]
        lines = [note] if note else []
        lines.append(t("Press the places to add or remove them, then Continue."))
        if len(children) > LIST_LIMIT:
            lines.append(t("Or type part of a name."))
        lines.append(
            t("Chosen: {names}", names=", ".join(names[u] for u in selected) if selected else t("none yet"))
        )
        return Step([ask(state, "\n".join(lines), options)], state)

    async def _on_parts(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """A place pressed or typed is added or removed; Continue goes on to who."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "done":
            if not state.unit_ids:
                return await self._ask_parts(ctx, state, t("Choose at least one place."))
            return self._ask_groups(ctx, state)
        area = await self._area(ctx, state)
        picked = await UnitPicker(self._part_kinds(area), area.id).pick(ctx, state, msg)
        if picked.unit is None:
            if picked.matches or picked.query:
                typed = shorten(msg.text, TITLE_TEXT)
                return await self._ask_parts(ctx, state, t("No single place matches “{query}”.", query=typed))
            return await self._ask_parts(ctx, state, t("Please answer with one of the choices."))
        unit = picked.unit
        selected = state.unit_ids
        state.unit_ids = (
            [u for u in selected if u != unit.id] if unit.id in selected else [*selected, unit.id]
        )
        return await self._ask_parts(ctx, state)

    # ---- who --------------------------------------------------------------------------------

    def _ask_groups(self, ctx: Context, state: BroadcastState) -> Step:
        t = ctx.t
        state.phase = "groups"
        options = [
            Option(MEMBERS, t("Members")),
            Option(OFFICERS, t("Officers")),
            Option("both", t("Members and officers")),
            Option("cancel", t("Cancel")),
        ]
        return Step([ask(state, t("Send it to members, officers, or both?"), options)], state)

    async def _on_groups(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """Members, officers or both, then topics."""
        pick = chosen(state, msg)
        if pick not in (MEMBERS, OFFICERS, "both"):
            return self._again(ctx, state)
        state.groups = [MEMBERS, OFFICERS] if pick == "both" else [pick]
        state.phase = "topics"
        return Step([self._topics_prompt(ctx, state)], state)

    def _topics_prompt(self, ctx: Context, state: BroadcastState) -> Reply:
        t = ctx.t
        chosen_topics = state.topics
        options = [
            Option(f"t:{topic.key}", ("✓ " if topic.key in chosen_topics else "") + topic.label(t.locale))
            for topic in topics_of(ctx)
        ]
        options += [Option("done", t("Continue")), Option("cancel", t("Cancel"))]
        text = t(
            "Only people interested in some topics? Press topics to choose them, or Continue for everyone. "
            "Chosen: {topics}.",
            topics=topic_names(ctx, chosen_topics),
        )
        return ask(state, text, options)

    async def _on_topics(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """A topic pressed is added or removed; Continue asks what to send."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick and pick.startswith("t:"):
            state.topics = sorted(set(state.topics) ^ {pick[2:]})
            return Step([self._topics_prompt(ctx, state)], state)
        if pick != "done":
            return self._again(ctx, state)
        state.phase = "what"
        options = [
            Option("item", t("An article from the library")),
            Option("text", t("Write a message")),
            Option("cancel", t("Cancel")),
        ]
        return Step([ask(state, t("What do you want to send?"), options)], state)

    # ---- what -------------------------------------------------------------------------------

    async def _on_what(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """An article from the library, or a message of one's own."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "text":
            state.phase = "text"
            return Step(
                [ask(state, t("Type your message (at most {n} characters).", n=t.number(MAX_TEXT)))], state
            )
        if pick == "item":
            return await self._ask_item(ctx, state, None)
        return self._again(ctx, state)

    async def _ask_item(self, ctx: Context, state: BroadcastState, query: str | None) -> Step:
        t = ctx.t
        state.phase = "item"
        items = [
            i
            for i in await articles(ctx.uow, t.locale)
            if i.valid_until is None or i.valid_until >= ctx.today
        ]
        items.sort(key=lambda i: i.kind == CAMPAIGN)  # stable: newest first, the Week's daily items last
        if query:
            items = [i for i in items if query in fold(i.title) or query in fold(i.item_key)]
        if not items:
            return Step(
                [Reply(t("No article matches. Type another word.")), ask(state, t("Which article?"))], state
            )
        options = [Option(f"i:{i.item_key}", shorten(i.title, TITLE_TEXT)) for i in items[:LIST_LIMIT]]
        options.append(Option("cancel", t("Cancel")))
        text = t("Which article? The newest are listed; type a word of the title to find another.")
        return Step([ask(state, text, options)], state)

    async def _on_item(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """An article pressed (then the preview), or a word to search the titles for."""
        pick = chosen(state, msg)
        if pick and pick.startswith("i:"):
            state.item_key, state.text = pick[2:], None
            return await self._preview(ctx, state)
        if msg.kind is Kind.TEXT and fold(msg.text):
            return await self._ask_item(ctx, state, fold(msg.text)[:60])
        return self._again(ctx, state)

    async def _on_text(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """The officer's message, then an optional photo link."""
        t = ctx.t
        text = msg.text.strip() if msg.kind is Kind.TEXT else ""
        if not text:
            return self._again(ctx, state, t("Please type the message as text."))
        if len(text) > MAX_TEXT:
            return self._again(
                ctx,
                state,
                t(
                    "That is {n} characters; the most is {max}. Please shorten it.",
                    n=t.number(len(text)),
                    max=t.number(MAX_TEXT),
                ),
            )
        state.text, state.item_key = text, None
        state.phase = "photo"
        text_q = t("Add a photo? Send a link to it (https://…), or press Skip.")
        return Step([ask(state, text_q, [Option("skip", t("Skip")), Option("cancel", t("Cancel"))])], state)

    async def _on_photo(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """A link to a photo, or Skip: then the preview."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "skip" or word_of(msg) in ("bo qua", "skip", "khong"):
            state.image_url = None
            return await self._preview(ctx, state)
        link = msg.text.strip() if msg.kind is Kind.TEXT else ""
        if not _URL.match(link) or len(link) > 500:
            return self._again(
                ctx, state, t("That is not a link. Send a link starting with https://, or press Skip.")
            )
        state.image_url = link
        return await self._preview(ctx, state)

    # ---- check and send ---------------------------------------------------------------------

    def _audience(self, state: BroadcastState) -> Audience:
        return Audience(tuple(state.unit_ids), tuple(state.groups), tuple(state.topics))

    def _message(self, state: BroadcastState) -> Message:
        return Message(state.item_key, state.text, state.image_url)

    async def _preview(self, ctx: Context, state: BroadcastState) -> Step:
        t = ctx.t
        try:
            n = await count_recipients(ctx.uow, Actor.of(ctx.contact, ctx.grants), self._audience(state))
        except NotAllowed:
            return Step([Reply(t("You can no longer send to this audience. Nothing was sent."))])
        area = await self._area(ctx, state)
        message = self._message(state)
        items = await article_translations(ctx.uow, message.item_key) if message.item_key else {}
        preview = compose(message, area, t.locale, items, groups=state.groups)["text"]
        state.phase = "preview"
        state.count = n
        where = await self._where(ctx, state)
        if n == 0:
            options = [Option("restart", t("Choose the audience again")), Option("cancel", t("Cancel"))]
            return Step(
                [
                    ask(
                        state,
                        t("Nobody matches this audience ({where}). Nothing will be sent.", where=where),
                        options,
                    )
                ],
                state,
            )
        summary = t("It will go to {n} people: {where}.", n=t.number(n), where=where)
        options = [
            Option("now", t("Send now")),
            Option("later", t("Send later")),
            Option("cancel", t("Cancel")),
        ]
        return Step(
            [Reply(t("Preview:") + "\n\n" + preview), ask(state, summary + "\n" + t("Send it?"), options)],
            state,
        )

    async def _where(self, ctx: Context, state: BroadcastState) -> str:
        t = ctx.t
        names = []
        for uid in state.unit_ids:
            unit = await ctx.uow.units.get(int(uid))
            names.append(unit.name if unit else str(uid))
        groups = {MEMBERS: t("members"), OFFICERS: t("officers")}
        who = t(" and ").join(groups[g] for g in state.groups)
        text = t("{who} of {places}", who=who, places=", ".join(names))
        if state.topics:
            text += t(", interested in {topics}", topics=topic_names(ctx, state.topics))
        return text

    async def _on_preview(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """Send now, send later (then when), or choose the audience again."""
        t = ctx.t
        pick = chosen(state, msg)
        if pick == "restart":
            return self._ask_scope(ctx, state, await self._area(ctx, state))
        if pick == "now":
            return await self._queue(ctx, state, None)
        if pick == "later":
            state.phase = "when"
            return Step(
                [
                    ask(
                        state,
                        t("When should it be sent? Type a date and time, e.g. 25/11 19:00."),
                        [Option("cancel", t("Cancel"))],
                        numbered=False,
                    )
                ],
                state,
            )
        return self._again(ctx, state)

    async def _on_when(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """A future date and time, then the confirmation."""
        t = ctx.t
        at = parse_when(msg.text, ctx.today) if msg.kind is Kind.TEXT else None
        if at is None:
            return self._again(ctx, state, t("I could not read that time. Type it like 25/11 19:00."))
        if at <= ctx.now:
            return self._again(ctx, state, t("That time has passed. Type a time in the future."))
        if at > ctx.now + timedelta(days=MAX_DAYS_AHEAD):
            return self._again(ctx, state, t("At most {n} days ahead, please.", n=MAX_DAYS_AHEAD))
        state.send_at = at
        state.phase = "confirm_later"
        text = t(
            "It will be sent on {when} to about {n} people. Confirm?",
            when=when_text(t, at),
            n=t.number(state.count),
        )
        return Step(
            [ask(state, text, [Option("confirm", t("Confirm")), Option("cancel", t("Cancel"))])], state
        )

    async def _on_confirm_later(self, ctx: Context, state: BroadcastState, msg: Incoming) -> Step:
        """Confirm: the broadcast is queued for its time."""
        if chosen(state, msg) != "confirm" or state.send_at is None:
            return self._again(ctx, state)
        return await self._queue(ctx, state, state.send_at)

    async def _queue(self, ctx: Context, state: BroadcastState, send_at: datetime | None) -> Step:
        t = ctx.t
        try:
            b = await queue_broadcast(
                ctx.uow,
                Actor.of(ctx.contact, ctx.grants),
                self._audience(state),
                self._message(state),
                now=ctx.now,
                send_at=send_at,
            )
        except NotAllowed:
            return Step([Reply(t("You can no longer send to this audience. Nothing was sent."))])
        except ValueError:
            return Step([Reply(t("This article is no longer available. Nothing was sent."))])
        if send_at is not None and b.send_at > ctx.now:
            done = t(
                "✅ Broadcast #{id} will be sent on {when} to {n} people.",
                id=b.id,
                when=when_text(t, b.send_at),
                n=t.number(b.recipients),
            )
        else:
            done = t("✅ Broadcast #{id} is being sent to {n} people.", id=b.id, n=t.number(b.recipients))
        done += "\n" + t("Follow it, or cancel it, with /status.")
        return Step([Reply(done)], None, ("menu", {"quiet": True}))

    phases = phase_table(
        {
            "area": _on_area,
            "scope": _on_scope,
            "parts": _on_parts,
            "groups": _on_groups,
            "topics": _on_topics,
            "what": _on_what,
            "item": _on_item,
            "text": _on_text,
            "photo": _on_photo,
            "preview": _on_preview,
            "when": _on_when,
            "confirm_later": _on_confirm_later,
        }
    )
