"""Whole conversations as transcripts (tests/dialogues/*.yaml), run against the real service
layer and engine on a migrated SQLite file with a fixed clock.

A transcript says who is talking (`as`), optional earlier submissions (`prior`), then turns:
what the user sends and what the bot's replies must (`expect`) and must not (`absent`)
contain. `restart: true` builds a new app on the same database file (a process restart);
`advance: 80h` moves the clock. `check` asserts what ended up in the database.

Several people may take part: `people: {vo: village_officer@village}` registers more of them, a
turn `who: vo` speaks as one of them from then on (`who: u1` back to the first), and a turn
`inbox: true` reads what the outbox queued for the current speaker since their last inbox, as if
it were the bot's answer (a request a staff member sent them, with its buttons).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.messages import Kind
from storage.models import Submission
from tests.support import START, Chat, Tree, make_app, make_contact, seed_tree
from tests.test_reports_helpers import outbox_to

TRANSCRIPTS = sorted((Path(__file__).parent / "dialogues").glob("*.yaml"))


def _duration(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)([mhd])", text)
    assert m, f"bad duration {text!r}"
    n = int(m.group(1))
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}[m.group(2)]


def _unit(tree: Tree, name: str) -> Any:
    return getattr(tree, name)


async def _seed_prior(app: App, tree: Tree, prior: list[dict[str, Any]]) -> None:
    async with app.uow() as uow:
        for i, p in enumerate(prior):
            unit = _unit(tree, p["unit"])
            record = f"{unit.id}:{p['period']}" if p["form"] == "village_report" else f"prior-{i}"
            await uow.submissions.add_version(
                Submission(
                    form_key=p["form"],
                    record_key=record,
                    unit_id=unit.id,
                    period=p["period"],
                    values=p["values"],
                    submitted_at=app.clock.now() - timedelta(days=150 - i),
                    version=0,
                )
            )
        await uow.commit()


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
async def test_transcript(path: Path, sqlite_url: str) -> None:
    from storage.migrate import upgrade_async

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    await upgrade_async(sqlite_url)
    clock = FixedClock(START)
    app = make_app(sqlite_url, clock)
    tree = await seed_tree(app)
    who = spec.get("as", "new")
    if who != "new":
        role, unit = who.split("@") if "@" in who else (who, "village")
        await make_contact(app, "u1", role, _unit(tree, unit), spec.get("locale", "vi"))
    await _seed_prior(app, tree, spec.get("prior", []))
    for name, person in spec.get("people", {}).items():
        role, unit = person.split("@")
        await make_contact(app, name, role, _unit(tree, unit), spec.get("locale", "vi"))
    codes = await _make_invites(app, tree, spec.get("invites", {}))
    chats = {name: Chat(app, name) for name in ["u1", *spec.get("people", {})]}
    seen: dict[str, int] = {}
    chat = chats["u1"]
    try:
        for n, turn in enumerate(spec["turns"], 1):
            if "advance" in turn:
                clock.advance(_duration(turn["advance"]))
            if turn.get("restart"):
                await app.db.dispose()
                app = make_app(sqlite_url, clock)
                for each in chats.values():
                    each.app = app
            if "who" in turn:
                chat = chats[turn["who"]]
            if turn.get("inbox"):
                queued = await outbox_to(app, chat.external_id)
                chat.replies = payload_replies_of(queued[seen.get(chat.external_id, 0) :])
                seen[chat.external_id] = len(queued)
            elif "say" in turn:
                await chat.say(str(turn["say"]).format(**codes))
            elif "press" in turn:
                await chat.press(str(turn["press"]))
            elif "send" in turn:
                await chat.send_kind(Kind(turn["send"]))
            else:
                continue
            said = (
                turn.get("say")
                or turn.get("press")
                or turn.get("send")
                or ("inbox" if turn.get("inbox") else "")
            )
            where = f"{path.name}, turn {n} ({chat.external_id}: {said!r})"
            for want in turn.get("expect", []):
                assert want in chat.text, f"{where}: expected {want!r} in:\n{chat.text}"
            for unwanted in turn.get("absent", []):
                assert unwanted not in chat.text, f"{where}: did not expect {unwanted!r} in:\n{chat.text}"
            for option in turn.get("options", []):
                assert option in chat.option_labels, (
                    f"{where}: expected option {option!r} in {chat.option_labels}"
                )
        await _check(app, tree, spec.get("check", {}))
    finally:
        await app.db.dispose()


def payload_replies_of(payloads: list[dict[str, Any]]) -> list[Any]:
    """Outbox payloads as the replies a channel would show (text and buttons)."""
    from bot.domain.messages import Option, Reply

    return [
        Reply(str(p.get("text", "")), [Option(o["id"], o["label"]) for o in p.get("options") or []])
        for p in payloads
    ]


async def _make_invites(app: App, tree: Tree, wanted: dict[str, str]) -> dict[str, str]:
    """`invites: {code1: village_officer@village}` → the codes, for `{code1}` in what users say."""
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code

    codes: dict[str, str] = {}
    async with app.uow() as uow:
        for name, spec in wanted.items():
            role, unit, *expired = spec.split("@")
            days = 1 if expired else 14
            made = app.clock.now() - timedelta(days=2 if expired else 0)
            invite = await create_invite(uow, CONSOLE, _unit(tree, unit), role, made, days)
            codes[name] = format_code(invite.code)
        await uow.commit()
    return codes


async def _check(app: App, tree: Tree, check: dict[str, Any]) -> None:
    async with app.uow() as uow:
        if "submissions" in check:
            assert await uow.submissions.count() == check["submissions"], "submission count"
        for latest in check.get("latest", []):
            unit = _unit(tree, latest["unit"])
            row = await uow.submissions.latest(latest["form"], f"{unit.id}:{latest['period']}")
            assert row is not None, f"no {latest['form']} for {latest['unit']} {latest['period']}"
            if "version" in latest:
                assert row.version == latest["version"]
            for key, value in latest.get("values", {}).items():
                assert row.values.get(key) == value, f"{key}: {row.values.get(key)!r} != {value!r}"
