"""Keep probing (issue 11, item 8): random input at every dialogue step, through the service layer.

A Hypothesis state machine (`RuleBasedStateMachine`) plays three people at once — a village
officer, a commune officer and a new user who has an invite code — and sends, in any order:
random text (any code point, lone surrogates and NUL included), emoji, control characters, huge
and malformed numbers and dates, 10,000-character messages, stickers and photos (every `Kind`),
option presses with the ids on offer, stale ids and made-up ids, every command of the command
table with random arguments, and plausible answers that carry a dialogue forward to its summary
and its confirmation (so that the random input lands on every phase, not only the first). Now
and then the clock jumps, so that dialogues expire and periods lock under it.

After every step it asserts that no reply is the catch-all error of bot/services/incoming.py
(its text in both languages, and the `step_errors` counter, which also counts work after the
step: bot/services/later.py), and that no half-saved submission exists: every stored
submission holds every required question its form asks for its period, with a value of the
field's type and range, and passes every hard rule of the form.

Profiles (Hypothesis settings, chosen by KHUYENHOC_FUZZ): "ci" (the default: derandomized, so
a run is reproducible; 40-60 s on SQLite, 15 s on PostgreSQL), "long" (random, many examples,
for a probing session: `KHUYENHOC_FUZZ=long pytest tests/test_fuzz_dialogue.py`, about 35 min).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.forms.history import (
    first_found,
    needed_periods,
    opening_sources,
    previous_values,
    same_kind_a_year_earlier,
)
from bot.domain.forms.model import Form
from bot.domain.forms.rules import check_rules, should_ask
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Kind, Reply
from bot.domain.periods import Period
from bot.handlers.command_table import COMMANDS
from bot.runtime import bootstrap as bootstrap_module
from bot.services.actor import CONSOLE
from bot.services.invites import create_invite, format_code
from storage.models import COMMUNE_OFFICER, VILLAGE_OFFICER, Submission
from tests.conftest import fresh_postgres_database
from tests.support import START, VILLAGE_REPORT_ANSWERS, Chat, make_app, make_contact, seed_tree

# ------------------------------------------------------------------------------------ profiles

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,  # nothing written into the repository (.hypothesis/)
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("fuzz-ci", max_examples=60, stateful_step_count=40, derandomize=True, **_COMMON)
settings.register_profile(
    "fuzz-ci-postgres", max_examples=20, stateful_step_count=30, derandomize=True, **_COMMON
)
settings.register_profile("fuzz-long", max_examples=1500, stateful_step_count=60, **_COMMON)
settings.register_profile("fuzz-long-postgres", max_examples=300, stateful_step_count=60, **_COMMON)

PROFILE = os.environ.get("KHUYENHOC_FUZZ", "ci")

# The catch-all answer of bot/services/incoming.py, as each language says it.
GENERIC_ERROR = (
    "Sorry, something went wrong on our side. Nothing you sent before was lost: please send your "
    "last answer again."
)
GENERIC_ERRORS = tuple({translator(locale)(GENERIC_ERROR) for locale in ("vi", "en")})

# --------------------------------------------------------------------------------- strategies

_ANY_CHARACTER = st.characters(codec=None, exclude_categories=())  # lone surrogates too
_CONTROL = st.characters(min_codepoint=0, max_codepoint=0x9F, categories=["Cc"])
_ODD = st.sampled_from(
    [
        "\x00",
        "\ud800",
        "\udfff",
        "\u202e",  # right-to-left override
        "\ufeff",
        "\u200b",
        "\u0301",  # a combining accent on nothing
        "\u2028",
        "\r\n",
        "\t",
        "İ",
        "ß",
        "ǅ",
        "\U0010ffff",
    ]
)
_EMOJI = st.sampled_from(["😀", "👍🏽", "👨‍👩‍👧", "🇻🇳", "❤️", "🧑🏻‍🏫", "\ufe0f", "\u200d", "🔒", "✅", "⚠️"])
_NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "9999",
            "0",
            "-0",
            "-1",
            "1e309",
            "1e6",
            "NaN",
            "inf",
            "0x10",
            "1_000",
            "١٢٣",  # Arabic-Indic digits
            "１２３",  # full-width digits
            "9" * 400,
            "1.000.000.000.000.000.000",
            "1,5",
            "5tr",
            "3tr5",
            "2 tỷ",
            "99999999999999999999tr",
            "10%",
            "½",
        ]
    ),
)
_DATES = st.sampled_from(
    [
        "31/02/2026",
        "29/02/2026",
        "00/00/0000",
        "22/11/2026",
        "1/1/1",
        "9999-12-31",
        "0001-01-01",
        "32/13/2026",
        "hôm nay",
        "22/11/99999",
    ]
)
_HUGE = st.builds(
    lambda piece, n: (piece * n)[:n],
    st.sampled_from(["9", "a", "ư", "😀", "\x00", "\ud800", " ", "/baocao "]),
    st.sampled_from([4095, 4096, 4097, 9_999, 10_000, 10_001, 50_000]),
)
_WORDS = st.sampled_from(
    [
        "bỏ qua",
        "có",
        "không",
        "huỷ",
        "hủy",
        "quay lại",
        "dừng",
        "menu",
        "xác nhận",
        "sửa",
        "yes",
        "no",
        "back",
        "skip",
        "Thôn Nà Rụa",
        '=HYPERLINK("http://x")',
        "$\\x$",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "{unit}",
        "%s %d {0}",
    ]
)
# Text that breaks a database driver or a renderer unless cleaned where it comes in.
HOSTILE = st.builds(
    "{}{}{}".format,
    st.sampled_from(["", "Cao", "1", "Nà Rụa ", "/baocao ", "=", "2026"]),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\udc80\ud800", "\x1b[31m", "\x7f", "\x85", "\u2028"]),
    st.sampled_from(["", "Bằng", "0", "x"]),
)
TEXT = st.one_of(
    HOSTILE,
    st.text(_ANY_CHARACTER, max_size=30),
    st.lists(st.one_of(_ANY_CHARACTER, _CONTROL, _ODD, _EMOJI), max_size=12).map("".join),
    _NUMBERS,
    _DATES,
    _WORDS,
    _EMOJI,
    _HUGE,
)
COMMAND_WORDS = sorted({word for spec in COMMANDS for word in spec.words} | {"start@KhuyenHocBot"})
# Answers that move a dialogue on: questions get figures, choices and dates that usually pass.
PLAUSIBLE = ["0", "1", "3", "10", "100", "120", "500", "bỏ qua", "có", "không", "22/11/2026", "5tr"]
PEOPLE = ("village officer", "commune officer", "new user")
Walk = list[tuple[Kind, str]]


def _say(*texts: str) -> Walk:
    return [(Kind.TEXT, text) for text in texts]


def _press(*ids: str) -> Walk:
    return [(Kind.OPTION, option_id) for option_id in ids]


# The year report of the village, every answer passing every rule, then its confirmation.
REPORT_2026 = [*_press("2026"), *_say(*VILLAGE_REPORT_ANSWERS), *_press("confirm")]
# An activity report after its date, every answer passing every rule, then its confirmation.
ACTIVITY = [
    *_press("skip", "c:thematic_session", "c:agriculture", "c:community_learning_centre"),
    *_say("1", "20", "10", "5", "1tr", "bỏ qua", "Họp dân"),
    *_press("confirm"),
]


# ------------------------------------------------------------------------------------ the machine


class DialogueFuzz(RuleBasedStateMachine):
    """Three people and one bot on a fresh database per example."""

    # Set by the test: a fresh migrated database URL, dropped or deleted on exit.
    database: Callable[[], AbstractAsyncContextManager[str]]

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.exits = AsyncExitStack()
        self.clock = FixedClock(START)
        self.chats: dict[str, Chat] = {}
        self.seen_options: list[str] = []  # every option id offered so far: stale ones to press
        self.checked = 0  # submissions already found whole
        self.steps = 0
        self.display_name: str | None = None
        try:
            self.runner.run(self._open())
        except BaseException:
            self.teardown()
            raise

    async def _open(self) -> None:
        url = await self.exits.enter_async_context(self.database())
        self.app = make_app(url, self.clock)
        self.exits.push_async_callback(self.app.db.dispose)
        tree = await seed_tree(self.app)
        await make_contact(self.app, "vo", VILLAGE_OFFICER, tree.village, "vi")
        await make_contact(self.app, "co", COMMUNE_OFFICER, tree.commune, "en")
        async with self.app.uow() as uow:
            invite = await create_invite(uow, CONSOLE, tree.group, VILLAGE_OFFICER, self.clock.now(), 30)
            await uow.commit()
        self.invite_code = format_code(invite.code)
        group = f"unit:{tree.group.id}"
        self.walks: dict[str, list[Walk]] = {
            "village officer": [
                # File the year report, then start a correction of it.
                [*_say("/baocao"), *REPORT_2026, *_say("/baocao"), *_press("2026")],
                # Report an activity: dates, choices, figures, free text.
                [*_say("/hoatdong", "22/11/2026"), *ACTIVITY, *_say("/dulieu", "/xoadulieu")],
            ],
            "commune officer": [
                # A residential group's report, then the commune's compiled report with it (its
                # files are made after the step: bot/services/later.py; the walk ends there, as
                # making them costs more than the rest of an example).
                [*_say("/baocao"), *_press(group), *REPORT_2026, *_say("/baocaotonghop"), *_press("2026")],
                # Add a village with a hostile name, open the reviews, compile a report with it.
                [
                    *_say("/thon"),
                    *_press("add"),
                    *_say('=HYPERLINK("x") $\\x$'),
                    *_press("village", "done"),
                    *_say("/duyet", "/baocaotonghop"),
                    *_press("leave", "2026"),
                ],
            ],
            "new user": [
                # Onboarding with an invite code, then the first report of the new officer's unit.
                [
                    *_say("/start"),
                    *_press("vi", "yes", "officer"),
                    *_say(self.invite_code, "/baocao"),
                    *REPORT_2026,
                ],
                # Onboarding as a member: province, commune and village searched by name.
                [
                    *_say("/start"),
                    *_press("en", "yes", "member"),
                    *_say("Cao Bằng", "Thục Phán", "Nà Rụa"),
                    *_press("cmd:chude reading"),
                ],
            ],
        }
        self.chats = {
            "village officer": Chat(self.app, "vo"),
            "commune officer": Chat(self.app, "co"),
            "new user": Chat(self.app, "new"),
        }

    def teardown(self) -> None:
        try:
            self.runner.run(self.exits.aclose())
        finally:
            self.runner.close()

    # ---- sending ---------------------------------------------------------------------------
    def _send(self, who: str, kind: Kind, text: str = "", option_id: str | None = None) -> list[Reply]:
        chat = self.chats[who]
        self.steps += 1
        msg = Incoming(
            chat.channel,
            chat.external_id,
            kind,
            text=text,
            option_id=option_id,
            update_id=f"u{self.steps}",
            display_name=self.display_name if who == "new user" else None,
        )
        replies = self.runner.run(chat.send(msg))
        for reply in replies:
            assert not any(e in reply.text for e in GENERIC_ERRORS), f"the catch-all error for {msg!r}"
        errors = self.app.metrics.registry.get_sample_value(
            "khuyenhoc_dialogue_errors_total", {"channel": chat.channel}
        )
        assert not errors, f"a step failed (see the log) for {msg!r}"
        for option in chat.option_ids:
            if option not in self.seen_options:
                self.seen_options.append(option)
        return replies

    # ---- rules -----------------------------------------------------------------------------
    # Each person starts an example somewhere along a walk that passes every rule (a prefix of
    # it, drawn at random): the random input then lands on every step, the deep ones included.
    def _walk(self, who: str, data: st.DataObject) -> None:
        walks = self.walks[who]
        walk = walks[data.draw(st.integers(0, len(walks) - 1), label="walk")]
        for kind, value in walk[: data.draw(st.integers(0, len(walk)), label="steps")]:
            if kind is Kind.OPTION:
                self._send(who, kind, option_id=value)
            else:
                self._send(who, kind, value)

    @initialize(data=st.data())
    def village_officer_walks(self, data: st.DataObject) -> None:
        self._walk("village officer", data)

    @initialize(data=st.data())
    def commune_officer_walks(self, data: st.DataObject) -> None:
        self._walk("commune officer", data)

    @initialize(data=st.data(), name=st.one_of(st.none(), TEXT))
    def new_user_walks(self, data: st.DataObject, name: str | None) -> None:
        """The new user's platform display name (kept when their contact is made) is random too."""
        self.display_name = name
        self._walk("new user", data)

    @rule(who=st.sampled_from(PEOPLE), text=TEXT)
    def say(self, who: str, text: str) -> None:
        self._send(who, Kind.TEXT, text)

    @rule(who=st.sampled_from(PEOPLE), text=HOSTILE)
    def say_something_hostile(self, who: str, text: str) -> None:
        """More often than `say`: a NUL, a lone surrogate, an escape sequence within a word."""
        self._send(who, Kind.TEXT, text)

    @rule(
        who=st.sampled_from(PEOPLE),
        word=st.sampled_from(COMMAND_WORDS),
        shout=st.booleans(),
        arg=st.one_of(st.just(""), TEXT.filter(lambda s: len(s) < 200)),
    )
    def command(self, who: str, word: str, shout: bool, arg: str) -> None:
        self._send(who, Kind.TEXT, f"/{word.upper() if shout else word} {arg}".strip())

    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def press(self, who: str, data: st.DataObject) -> None:
        """An option: one on offer, a stale one from any earlier reply, or one made up."""
        offered = self.chats[who].option_ids
        choices = [st.text(_ANY_CHARACTER, max_size=20), st.sampled_from(["", "9999", "unit:999999", "yes"])]
        if offered:
            choices.append(st.sampled_from(offered))
        if self.seen_options:
            choices.append(st.sampled_from(self.seen_options))
        self._send(who, Kind.OPTION, option_id=data.draw(st.one_of(choices), label="option id"))

    @rule(
        who=st.sampled_from(PEOPLE),
        kind=st.sampled_from([Kind.IMAGE, Kind.STICKER, Kind.OTHER, Kind.OPTION, Kind.TEXT]),
    )
    def send_without_content(self, who: str, kind: Kind) -> None:
        """A photo, a sticker, anything else; an option press with no id; an empty text."""
        self._send(who, kind)

    @rule(who=st.sampled_from(PEOPLE), data=st.data(), n=st.integers(min_value=1, max_value=20))
    def carry_on(self, who: str, data: st.DataObject, n: int) -> None:
        """Up to `n` plausible answers in a row: whatever reaches deep into a dialogue."""
        for _ in range(n):
            offered = self.chats[who].option_ids
            answers = [*PLAUSIBLE, self.invite_code] if who == "new user" else PLAUSIBLE
            if offered and data.draw(st.integers(0, 3), label="press") > 0:
                self._send(who, Kind.OPTION, option_id=data.draw(st.sampled_from(offered), label="press"))
            elif data.draw(st.booleans(), label="zero"):
                self._send(who, Kind.TEXT, "0")  # passes most rules: the dialogue moves on
            else:
                self._send(who, Kind.TEXT, data.draw(st.sampled_from(answers), label="answer"))

    @precondition(lambda self: self.clock.now() - START < timedelta(days=400))
    @rule(hours=st.sampled_from([1, 25, 24 * 8, 24 * 40]))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    # ---- invariants ------------------------------------------------------------------------
    @invariant()
    def no_half_saved_submission(self) -> None:
        self.runner.run(self._check_submissions())

    async def _check_submissions(self) -> None:
        async with self.app.db.sessions() as session:
            rows = (await session.execute(select(Submission).order_by(Submission.id))).scalars().all()
        for row in rows[self.checked :]:
            earlier = [r for r in rows if r.id < row.id]
            assert_whole(self.app, row, earlier)
        self.checked = len(rows)


def _latest_by_period(rows: list[Submission], form_key: str, unit_id: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:  # in id order: a later version overwrites an earlier one
        if row.form_key == form_key and row.unit_id == unit_id:
            out[row.period] = dict(row.values)
    return out


def _typed(form: Form, values: dict[str, Any]) -> dict[str, object]:
    """Values as the rules see them (dates as dates), like the form runner's `_typed`."""
    out: dict[str, object] = {}
    for key, value in values.items():
        if key in form.field_keys:
            f = form.field(key)
            out[key] = date.fromisoformat(value) if f.type == "date" and isinstance(value, str) else value
    return out


def assert_whole(app: App, row: Submission, earlier: list[Submission]) -> None:
    """`row` holds every required answer its form asks in its period, each of the right type and
    range, and breaks no hard rule, read against the reports stored before it."""
    form = app.forms[row.form_key]
    period = Period.parse(row.period)
    values = _typed(form, dict(row.values))
    where = f"submission {row.id} ({row.form_key} {row.period} v{row.version})"
    assert set(form.field_keys) <= set(row.values), (
        f"{where}: fields missing {set(form.field_keys) - set(row.values)}"
    )
    reports = _latest_by_period(earlier, row.form_key, row.unit_id) if form.record == "per_period" else {}
    wanted = {p.key for p in needed_periods(form, period)}
    reports = {key: v for key, v in reports.items() if key in wanted}
    prev = _typed(form, previous_values(form, period, reports))
    context = {"period_start": period.start, "period_end": period.end}
    asked = [f for f in form.fields if f.asked_in(period.kind) and should_ask(form, f, values, prev, context)]
    for f in asked:
        value = row.values.get(f.key)
        if value is None:
            assert f.optional, f"{where}: required {f.key} is empty"
            continue
        if f.type in ("integer", "money"):
            assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {f.key}={value!r}"
            assert f.min is None or value >= f.min, f"{where}: {f.key}={value} < {f.min}"
            assert f.max is None or value <= f.max, f"{where}: {f.key}={value} > {f.max}"
        elif f.type == "choice":
            assert value in {c.value for c in f.choices}, f"{where}: {f.key}={value!r}"
        elif f.type == "text":
            assert isinstance(value, str) and value.strip(), f"{where}: {f.key}={value!r}"
            assert f.max_length is None or len(value) <= f.max_length, f"{where}: {f.key} too long"
        elif f.type == "date":
            date.fromisoformat(value)
    violations = check_rules(
        form,
        values,
        prev,
        context,
        answered={f.key for f in asked},
        focus=None,
        locale="en",
        opening=_typed(form, dict(first_found(opening_sources(period, form.period_kinds), reports))),
        last_year=_typed(form, dict(reports.get(same_kind_a_year_earlier(period).key) or {})),
    )
    hard = [v.rule.id for v in violations if v.rule.severity == "hard"]
    assert not hard, f"{where} breaks hard rules {hard}"


# ------------------------------------------------------------------------------------ the tests


def _run(machine: type[DialogueFuzz], profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every example bootstraps a bot of its own, and each bootstrap parses content/forms (over
    # 70 KB of YAML, about 0.5 s: half the time of an example). The forms are immutable values
    # read from files that do not change during the run: parse them once.
    forms = bootstrap_module.load_forms
    monkeypatch.setattr(bootstrap_module, "load_forms", functools.cache(forms))
    run_state_machine_as_test(machine, settings=settings.get_profile(profile))


def test_random_input_at_every_step_on_sqlite(
    tmp_path: Path, _db_templates: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = iter(range(1_000_000))

    @asynccontextmanager
    async def database() -> AsyncIterator[str]:
        target = tmp_path / f"fuzz-{next(counter)}.db"
        url = await _db_templates.sqlite_copy(target)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)

    machine = type("SQLiteDialogueFuzz", (DialogueFuzz,), {"database": staticmethod(database)})
    _run(machine, f"fuzz-{PROFILE}", monkeypatch)


@pytest.mark.postgres
def test_random_input_at_every_step_on_postgresql(
    _db_templates: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = asyncio.run(_db_templates.postgres_template())

    def database() -> AbstractAsyncContextManager[str]:
        return fresh_postgres_database(template)

    machine = type("PostgresDialogueFuzz", (DialogueFuzz,), {"database": staticmethod(database)})
    _run(machine, f"fuzz-{PROFILE}-postgres", monkeypatch)
