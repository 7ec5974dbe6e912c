"""Members' side of outreach: /chude (topics), /tin (newest article), /dung and the plain words
"dừng"/"stop" (stop everything), /batdau (start again), and /tinhtrang (for staff: the delivery
counts of their broadcasts, with cancel, and who has answered their requests; for everyone else:
what they receive)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import Field

from bot.conversations.engine import Context, Flow, FlowState, Step, ask, chosen, phase_table
from bot.conversations.flows.requests import cancel_answer, cancel_question, request_detail, requests_section
from bot.domain.clock import VN_TZ
from bot.domain.i18n import Translator
from bot.domain.messages import Incoming, Kind, Option, Reply
from bot.domain.parsing import fold, parse_yes_no
from bot.domain.permissions import Action, NotAllowed, holds
from bot.domain.text import TITLE_TEXT, shorten
from bot.messaging.content import Topic, item_text, load_topics
from bot.messaging.outreach import footer
from bot.services.actor import Actor
from bot.services.broadcasts import (
    Counts,
    cancel_broadcast,
    delivery_counts,
    managed_broadcast,
    may_broadcast,
    may_manage,
    visible_broadcasts,
)
from bot.services.subscriptions import choose_topics, newest_article, opt_in, opt_out
from storage.models_outreach import Broadcast

# Compared on the lower-cased text WITH diacritics: folded, "đúng" (right) would read as "dung".
STOP_WORDS = frozenset(
    {"dừng", "dung", "dừng lại", "dung lai", "ngừng", "ngừng nhận tin", "stop", "unsubscribe"}
)


def is_stop_word(msg: Incoming) -> bool:
    """The plain words that stop all outreach when no dialogue is open."""
    if msg.kind is not Kind.TEXT:
        return False
    text = unicodedata.normalize("NFC", msg.text).strip().strip(".!").lower()
    return text in STOP_WORDS


def topics_of(ctx: Context) -> list[Topic]:
    return load_topics(ctx.app_content_dir)


# Between topics in a list: a label may itself hold a comma ("Kỹ năng số, an toàn mạng").
TOPIC_SEPARATOR = "; "


def topic_names(ctx: Context, keys: list[str]) -> str:
    """The topics' labels in the order of topics.yaml, "; " between them ("all topics" for none)."""
    if not keys:
        return ctx.t("all topics")
    known = [t for t in topics_of(ctx) if t.key in keys]
    unknown = [k for k in keys if k not in {t.key for t in known}]
    return TOPIC_SEPARATOR.join([t.label(ctx.t.locale) for t in known] + unknown)


async def outreach_state(ctx: Context) -> str:
    """Whether the person receives the weekly article and news (and which topics), or stopped
    them: said by /tinhtrang to members and by /toi to everyone registered."""
    t = ctx.t
    sub = await ctx.uow.subscriptions.get(ctx.contact.id)
    if sub is not None and sub.stopped_at is not None:
        return t(
            "You stopped all messages on {date}. Send /resume to receive them again.",
            date=t.date(sub.stopped_at.astimezone(VN_TZ).date()),
        )
    return t(
        "You receive one article a week and the association's news. Topics: {topics}. "
        "Send /topics to change them, /stop to stop.",
        topics=topic_names(ctx, list(sub.topics) if sub else []),
    )


def topics_invitation(ctx: Context) -> Reply:
    """After a member registers: topics to pick, as commands, so that nothing has to be answered."""
    t = ctx.t
    options = [Option(f"cmd:chude {topic.key}", topic.label(t.locale)) for topic in topics_of(ctx)]
    options.append(Option("cmd:menu", t("All topics are fine")))
    text = t(
        "Each week we will send you one short article. Which topics interest you most? "
        "Pick one to choose your topics, or keep them all. Send /stop at any time to stop."
    )
    return Reply(text, options)


class TopicsState(FlowState):
    phase: Literal["toggle"] = "toggle"
    selected: list[str] = Field(default_factory=list)


class Topics(Flow[TopicsState]):
    """/chude: press topics to add or remove them, then save. No topic chosen means all."""

    name = "topics"
    state_type = TopicsState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        sub = await ctx.uow.subscriptions.get(ctx.contact.id)
        selected = list(sub.topics) if sub is not None else []
        known = {t.key for t in topics_of(ctx)}
        toggle = str(args.get("toggle") or "").strip()
        if toggle == "all":
            return await self._save(ctx, [])
        if toggle in known:
            selected = sorted(set(selected) ^ {toggle})
        state = TopicsState(selected=selected)
        return Step([self._ask(ctx, state)], state)

    def _ask(self, ctx: Context, state: TopicsState) -> Reply:
        t = ctx.t
        selected = state.selected
        options = [
            Option(f"t:{topic.key}", ("✓ " if topic.key in selected else "") + topic.label(t.locale))
            for topic in topics_of(ctx)
        ]
        options += [Option("all", t("All topics")), Option("done", t("Save"))]
        text = t(
            "Press a topic to add or remove it, then Save. Chosen now: {topics}.",
            topics=topic_names(ctx, selected),
        )
        return ask(state, text, options)

    async def _on_toggle(self, ctx: Context, state: TopicsState, msg: Incoming) -> Step:
        """A topic pressed is added or removed; Save or All topics saves."""
        pick = chosen(state, msg)
        if pick == "done":
            return await self._save(ctx, list(state.selected))
        if pick == "all":
            return await self._save(ctx, [])
        if pick and pick.startswith("t:"):
            state.selected = sorted(set(state.selected) ^ {pick[2:]})
            return Step([self._ask(ctx, state)], state)
        return Step(
            [Reply(ctx.t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
        )

    phases = phase_table({"toggle": _on_toggle})

    async def _save(self, ctx: Context, selected: list[str]) -> Step:
        t = ctx.t
        sub = await choose_topics(ctx.uow, Actor.of(ctx.contact, ctx.grants), selected, ctx.now)
        lines = [t("Saved. Your topics: {topics}.", topics=topic_names(ctx, sub.topics))]
        if sub.stopped_at is not None:
            lines.append(t("You have stopped all messages: send /resume to receive them again."))
        return Step([Reply("\n".join(lines))], None, ("menu", {"quiet": True}))


async def news_reply(ctx: Context) -> Reply:
    """/tin: the newest article for this person (language, roles, topics)."""
    t = ctx.t
    item = await newest_article(ctx.uow, Actor.of(ctx.contact, ctx.grants), ctx.today, ctx.now)
    if item is None:
        return Reply(t("There is no article for you yet."))
    return Reply(f"📰 {item_text(item)}\n\n{footer(t)}")


async def stop_reply(ctx: Context) -> Reply:
    """/dung, "dừng", "stop": nothing more is sent to this person, queued messages included."""
    await opt_out(ctx.uow, Actor.of(ctx.contact, ctx.grants), ctx.now)
    return Reply(
        ctx.t(
            "Stopped: you will receive no more articles, news or broadcasts. "
            "You can still use the bot. Send /resume to receive them again."
        )
    )


async def resume_reply(ctx: Context) -> Reply:
    """/batdau: outreach again."""
    t = ctx.t
    if await opt_in(ctx.uow, Actor.of(ctx.contact, ctx.grants), ctx.now):
        return Reply(
            t("Welcome back: you will receive articles and news again. Send /topics to choose topics.")
        )
    return Reply(t("You already receive articles and news. Send /topics to choose topics, /stop to stop."))


def when_text(t: Translator, at: Any) -> str:
    local = at.astimezone(VN_TZ)
    return f"{t.date(local.date())} {local:%H:%M}"


def describe_broadcast(ctx: Context, b: Broadcast, c: Counts) -> str:
    t = ctx.t
    if b.cancelled_at is not None:
        state = t("cancelled")
    elif b.send_at > ctx.now and c.queued:
        state = t("scheduled for {when}", when=when_text(t, b.send_at))
    elif c.queued:
        state = t("sending")
    else:
        state = t("finished")
    head = f"#{b.id} · {when_text(t, b.created_at)} · “{shorten(b.title, TITLE_TEXT)}” · {state}"
    counts = t(
        "recipients {total}: sent {sent}, waiting {queued}, failed {failed}, blocked {blocked}",
        total=t.number(b.recipients),
        sent=t.number(c.sent),
        queued=t.number(c.queued),
        failed=t.number(c.failed),
        blocked=t.number(c.blocked),
    )
    if c.cancelled:
        counts += t(", cancelled {n}", n=t.number(c.cancelled))
    return f"{head}\n   {counts}"


_CANCEL_ARG = re.compile(r"^(?:huy|cancel)\s*#?(\d+)$")
_REQUEST_ARG = re.compile(r"^(?:yc|yeu cau|request)\s*#?(\d+)$")
_CANCEL_REQUEST_ARG = re.compile(r"^(?:huy|cancel)\s*(?:yc|yeu cau|request)\s*#?(\d+)$")


def _yes_or_no(state: FlowState, msg: Incoming) -> str | None:
    """ "yes" or "no", pressed or typed; None for anything else."""
    pick = chosen(state, msg)
    if pick is None and msg.kind is Kind.TEXT:
        yn = parse_yes_no(msg.text)
        pick = None if yn is None else ("yes" if yn else "no")
    return pick


class StatusState(FlowState):
    phase: Literal["confirm_cancel", "confirm_request_cancel"] = "confirm_cancel"
    broadcast_id: int = 0
    request_id: int = 0


class Status(Flow[StatusState]):
    """/tinhtrang: staff see their broadcasts' counts; others see what they receive.

    The list is a plain answer, not a question: its buttons are commands ("/tinhtrang huy 12"
    cancels broadcast 12, which people can also type), so nothing waits for an answer except
    the confirmation of a cancel.
    """

    name = "status"
    state_type = StatusState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        if not may_broadcast(ctx.grants) and not holds(ctx.grants, Action.REQUEST):
            return Step([await self._member_status(ctx)])
        arg = fold(str(args.get("arg") or ""))
        if (asked := _REQUEST_ARG.match(arg)) is not None:
            return Step(await request_detail(ctx, int(asked.group(1))))
        if (cancelled := _CANCEL_REQUEST_ARG.match(arg)) is not None:
            question = await cancel_question(ctx, int(cancelled.group(1)))
            if isinstance(question, str):
                return Step([Reply(question)])
            state = StatusState(phase="confirm_request_cancel", request_id=int(cancelled.group(1)))
            return Step([ask(state, *question)], state)
        m = _CANCEL_ARG.match(arg)
        if m is None:
            return Step([await self._list(ctx, None)])
        b = await managed_broadcast(ctx.uow, Actor.of(ctx.contact, ctx.grants), int(m.group(1)))
        if b is None:
            return Step(
                [await self._list(ctx, ctx.t("There is no broadcast #{id} of yours.", id=m.group(1)))]
            )
        t = ctx.t
        state = StatusState(broadcast_id=b.id)
        text = t(
            "Cancel broadcast #{id} “{title}”? Messages not yet sent will not be sent; those already sent stay.",
            id=b.id,
            title=shorten(b.title, TITLE_TEXT),
        )
        return Step(
            [ask(state, text, [Option("yes", t("Cancel it")), Option("no", t("Keep sending"))])], state
        )

    async def _member_status(self, ctx: Context) -> Reply:
        return Reply(await outreach_state(ctx))

    async def _list(self, ctx: Context, note: str | None) -> Reply:
        t = ctx.t
        lines = [note] if note else []
        asked, request_options = await requests_section(ctx)
        if not may_broadcast(ctx.grants):
            return Reply("\n".join(lines + asked), [*request_options, Option("cmd:tinhtrang", t("Refresh"))])
        broadcasts = await visible_broadcasts(ctx.uow, Actor.of(ctx.contact, ctx.grants))
        if not broadcasts:
            lines.append(t("No broadcasts yet. Send one with /broadcast."))
            if not asked:
                return Reply("\n".join(lines))
            lines += ["", *asked]
            return Reply("\n".join(lines), [*request_options, Option("cmd:tinhtrang", t("Refresh"))])
        counts = await delivery_counts(ctx.uow, [b.id for b in broadcasts])
        lines.append(t("Your latest broadcasts:"))
        lines += [describe_broadcast(ctx, b, counts[b.id]) for b in broadcasts]
        cancellable = [
            b
            for b in broadcasts
            if b.cancelled_at is None and counts[b.id].queued and may_manage(ctx.grants, ctx.contact.id, b)
        ]
        options = [Option(f"cmd:tinhtrang huy {b.id}", t("Cancel #{id}", id=b.id)) for b in cancellable]
        if cancellable:
            lines.append(
                t(
                    "To cancel one, send /status cancel and its number, e.g. /status cancel {id}.",
                    id=cancellable[0].id,
                )
            )
        if asked:
            lines += ["", *asked]
        options += request_options
        options.append(Option("cmd:tinhtrang", t("Refresh")))
        return Reply("\n".join(lines), options)

    async def _on_confirm_cancel(self, ctx: Context, state: StatusState, msg: Incoming) -> Step:
        """Yes cancels the broadcast's unsent messages; no keeps them; both show the list."""
        t = ctx.t
        pick = _yes_or_no(state, msg)
        if pick == "no":
            return Step([await self._list(ctx, t("Nothing was cancelled."))])
        if pick != "yes":
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        try:
            n = await cancel_broadcast(
                ctx.uow, Actor.of(ctx.contact, ctx.grants), int(state.broadcast_id), ctx.now
            )
        except NotAllowed:
            return Step([await self._list(ctx, t("You can no longer cancel this broadcast."))])
        return Step([await self._list(ctx, t("Cancelled: {n} messages will not be sent.", n=t.number(n)))])

    async def _on_confirm_request_cancel(self, ctx: Context, state: StatusState, msg: Incoming) -> Step:
        """Yes cancels the request (the officers asked are told); no keeps it; both show it."""
        t = ctx.t
        pick = _yes_or_no(state, msg)
        if pick not in ("yes", "no"):
            return Step(
                [Reply(t("Please answer with one of the choices."))] + await self.reprompt(ctx, state), state
            )
        note = await cancel_answer(ctx, state.request_id) if pick == "yes" else t("Nothing was cancelled.")
        return Step([Reply(note), *await request_detail(ctx, state.request_id)])

    phases = phase_table(
        {"confirm_cancel": _on_confirm_cancel, "confirm_request_cancel": _on_confirm_request_cancel}
    )
