"""Whole conversations as transcripts (tests/dialogues/*.yaml), run against the real service
layer and engine on a migrated SQLite file with a fixed clock.

A transcript says who is talking (`as`), optional earlier submissions (`prior`), then turns:
what the user sends and what the bot's replies must (`expect`) and must not (`absent`)
contain. `restart: true` builds a new app on the same database file (a process restart);
`advance: 80h` moves the clock. `check` asserts what ended up in the database.

Several people: `people` names more of them (`name: {as: role@unit or new, channel: …, locale: …}`;
the name is their id on that channel), and a turn `by: name` is theirs (default: the one of `as`).
`capture: {name: regex}` keeps what the replies matched, for `{name}` in later turns (a link code
shown to one person and typed by another). `inbox: name` reads what was queued in the outbox for
them since their last look (a notice sent later) as that turn's replies; `tap: <label>` presses
the option with that label among the last replies of the person.
`job: name` runs that scheduled job (bot/runtime/scheduler.py default_jobs) at the clock's time,
before the turn's action (`inbox` then shows what it queued).
`at: 2026-12-02T09:00` dates the conversation (Vietnam time; default: tests.support.START);
`postgresql: true` runs the transcript on PostgreSQL as well. `xlsx: [text…]` opens the .xlsx
among the turn's attachments: each text must be the whole value of one of its cells.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import load_workbook

from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.messages import Kind
from bot.messaging.outbox import load_replies
from bot.runtime.scheduler import default_jobs
from storage.models import Submission
from tests.support import START, Chat, Tree, make_app, make_contact, seed_tree

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
            per_period = app.forms[p["form"]].record == "per_period"
            record = f"{unit.id}:{p['period']}" if per_period else f"prior-{i}"
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
    await _run(path, sqlite_url)


ON_POSTGRESQL = [p for p in TRANSCRIPTS if yaml.safe_load(p.read_text(encoding="utf-8")).get("postgresql")]


@pytest.mark.postgres
@pytest.mark.parametrize("path", ON_POSTGRESQL, ids=[p.stem for p in ON_POSTGRESQL])
async def test_transcript_on_postgresql(path: Path, postgres_url: str) -> None:
    await _run(path, postgres_url)


async def _run(path: Path, url: str) -> None:
    from storage.migrate import upgrade_async

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    await upgrade_async(url)
    at = spec.get("at")
    clock = FixedClock(START if at is None else datetime.fromisoformat(str(at)).replace(tzinfo=VN_TZ))
    app = make_app(url, clock)
    tree = await seed_tree(app)
    who = spec.get("as", "new")
    if who != "new":
        role, unit = who.split("@") if "@" in who else (who, "village")
        await make_contact(app, "u1", role, _unit(tree, unit), spec.get("locale", "vi"))
    await _seed_prior(app, tree, spec.get("prior", []))
    codes = await _make_invites(app, tree, spec.get("invites", {}))
    chats = {"u1": Chat(app, "u1"), **await _people(app, tree, spec.get("people") or {})}
    seen: dict[str, int] = {}
    try:
        for n, turn in enumerate(spec["turns"], 1):
            if "advance" in turn:
                clock.advance(_duration(turn["advance"]))
            if turn.get("restart"):
                await app.db.dispose()
                app = make_app(url, clock)
                for each in chats.values():
                    each.app = app
            if "job" in turn:
                await default_jobs()[turn["job"]].func(app)
            chat = chats[turn.get("by") or turn.get("inbox") or "u1"]
            if "say" in turn:
                await chat.say(str(turn["say"]).format(**codes))
            elif "press" in turn:
                await chat.press(str(turn["press"]))
            elif "tap" in turn:
                labels = {o.label: o.id for r in chat.replies for o in r.options}
                assert turn["tap"] in labels, (
                    f"{path.name}, turn {n}: no option {turn['tap']!r} in {list(labels)}"
                )
                await chat.press(labels[turn["tap"]])
            elif "send" in turn:
                await chat.send_kind(Kind(turn["send"]))
            elif "inbox" in turn:
                async with app.uow() as uow:  # as the sender reads them: stored files included
                    rows, seen[chat.external_id] = await uow.outbox.pending_for(
                        chat.channel, chat.external_id, app.clock.now(), seen.get(chat.external_id, 0)
                    )
                    chat.replies = [
                        r for row in rows for r in await load_replies(uow.files, row.payload, app.content_dir)
                    ]
            else:
                continue
            what = next(turn[k] for k in ("say", "press", "tap", "send", "inbox") if k in turn)
            where = f"{path.name}, turn {n} ({turn.get('by', '')} {what!r})"
            for want in turn.get("expect", []):
                assert want in chat.text, f"{where}: expected {want!r} in:\n{chat.text}"
            for unwanted in turn.get("absent", []):
                assert unwanted not in chat.text, f"{where}: did not expect {unwanted!r} in:\n{chat.text}"
            for option in turn.get("options", []):
                assert option in chat.option_labels, (
                    f"{where}: expected option {option!r} in {chat.option_labels}"
                )
            if "xlsx" in turn:
                cells = _xlsx_cells(chat)
                for want in turn["xlsx"]:
                    assert want in cells, f"{where}: no cell {want!r} in the .xlsx: {sorted(cells)}"
            for name, pattern in turn.get("capture", {}).items():
                found = re.search(pattern, chat.text)
                assert found, f"{where}: nothing matches {pattern!r} in:\n{chat.text}"
                codes[name] = found.group(0)
        await _check(app, tree, spec.get("check", {}))
        await _check_people(app, tree, chats, spec.get("check", {}))
    finally:
        await app.db.dispose()


def _xlsx_cells(chat: Chat) -> set[str]:
    """The texts of every cell of the .xlsx attached to the last replies."""
    files = [a for r in chat.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    assert files, "no .xlsx attached"
    book = load_workbook(io.BytesIO(files[0].data))
    return {
        str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None
    }


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
        for action, n in (check.get("audit") or {}).items():
            assert len(await uow.audit.actions(action)) == n, f"audit rows {action}"
        for latest in check.get("latest", []):
            unit = _unit(tree, latest["unit"])
            row = await uow.submissions.latest(latest["form"], f"{unit.id}:{latest['period']}")
            assert row is not None, f"no {latest['form']} for {latest['unit']} {latest['period']}"
            if "version" in latest:
                assert row.version == latest["version"]
            for key, value in latest.get("values", {}).items():
                assert row.values.get(key) == value, f"{key}: {row.values.get(key)!r} != {value!r}"


async def _people(app: App, tree: Tree, people: dict[str, dict[str, str]]) -> dict[str, Chat]:
    chats: dict[str, Chat] = {}
    for name, person in people.items():
        channel = person.get("channel", "test")
        who = person.get("as", "new")
        if who != "new":
            role, unit = who.split("@")
            await make_contact(app, name, role, _unit(tree, unit), person.get("locale", "vi"), channel)
        chats[name] = Chat(app, name, channel=channel)
    return chats


async def _check_people(app: App, tree: Tree, chats: dict[str, Chat], check: dict[str, Any]) -> None:
    """`roles: {name: [role@unit…]}`, `same_account` / `separate_accounts: [[a, b]…]`, and
    `forgotten: [name…]` (nothing left that leads to the person: no chat, no contact)."""
    async with app.uow() as uow:

        async def contact_id(name: str) -> int | None:
            c = chats[name]
            found = await uow.contacts.by_identity(c.channel, c.external_id)
            return None if found is None else found.id

        for name, wanted in check.get("roles", {}).items():
            cid = await contact_id(name)
            assert cid is not None, f"{name} has no contact"
            held = sorted(f"{role}@{unit.id}" for role, unit in await uow.contacts.roles_with_units(cid))
            expected = sorted(f"{r}@{_unit(tree, u).id}" for r, u in (w.split("@") for w in wanted))
            assert held == expected, f"roles of {name}: {held} != {expected}"
        for a, b in check.get("same_account", []):
            assert await contact_id(a) == await contact_id(b), f"{a} and {b} should be one account"
        for a, b in check.get("separate_accounts", []):
            assert await contact_id(a) != await contact_id(b), f"{a} and {b} should be two accounts"
        for name in check.get("forgotten", []):
            assert await contact_id(name) is None, f"{name} still has a chat"
