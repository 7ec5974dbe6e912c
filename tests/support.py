"""Test support: a small unit tree, officers, and a `Chat` that talks to the real service layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.domain.app import App
from bot.domain.clock import VN_TZ, FixedClock
from bot.domain.messages import Incoming, Kind, Reply
from bot.domain.settings import Settings
from bot.runtime.bootstrap import Bot, bootstrap
from bot.services.actor import CONSOLE
from bot.services.units import add_village
from storage.models import COMMUNE, PROVINCE, VILLAGE, Unit

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "content"
START = datetime(2026, 11, 22, 9, 0, tzinfo=VN_TZ)


def make_bot(database_url: str, clock: FixedClock | None = None, **settings: object) -> Bot:
    """The real process (composition root) on a migrated database, with a fixed clock."""
    settings.setdefault("content_dir", str(CONTENT))
    conf = Settings(database_url=database_url, _env_file=None, **settings)  # type: ignore[arg-type]
    return bootstrap(conf, clock or FixedClock(START))


def make_app(database_url: str, clock: FixedClock | None = None, **settings: object) -> App:
    """The app of `make_bot`: what every layer is handed."""
    return make_bot(database_url, clock, **settings).app


@dataclass
class Tree:
    province: Unit
    commune: Unit
    village: Unit  # Thôn Nà Rụa
    group: Unit  # Tổ dân phố 1
    other_commune: Unit
    other_village: Unit  # Xóm Pác Bó, in the other commune


async def seed_tree(app: App) -> Tree:
    """A small tree (a real province and two communes, three villages): fast to create."""
    now = app.clock.now()
    from bot.domain.parsing import fold

    def unit(kind: str, name: str, code: str | None, parent: Unit | None) -> Unit:
        return Unit(
            kind=kind,
            name=name,
            name_folded=fold(name),
            code=code,
            parent_id=parent.id if parent else None,
            created_at=now,
        )

    async with app.uow() as uow:
        province = await uow.units.add(unit(PROVINCE, "Cao Bằng", "04", None))
        commune = await uow.units.add(unit(COMMUNE, "Phường Thục Phán", "01273", province))
        other = await uow.units.add(unit(COMMUNE, "Xã Trường Hà", "01279", province))
        village = await add_village(uow, CONSOLE, commune, "Thôn Nà Rụa", VILLAGE, now)
        group = await add_village(uow, CONSOLE, commune, "Tổ dân phố 1", "residential_group", now)
        other_village = await add_village(uow, CONSOLE, other, "Xóm Pác Bó", VILLAGE, now)
        await uow.commit()
    return Tree(province, commune, village, group, other, other_village)


async def make_contact(
    app: App, external_id: str, role: str | None, unit: Unit | None, locale: str = "vi", channel: str = "test"
) -> None:
    """A registered contact (consent given) holding `role` on `unit`."""
    now = app.clock.now()
    async with app.uow() as uow:
        contact = await uow.contacts.create(channel, external_id, now)
        contact.consent_at = now
        contact.locale = locale
        if role and unit:
            await uow.contacts.grant(contact.id, role, unit.id, now)
            contact.home_unit_id = unit.id
        await uow.commit()


async def webchat_id(app: App, client_id: str) -> str:
    """A web chat client id as the database keeps it: its keyed hash (bot.channels.webchat)."""
    from bot.channels.webchat.channel import ClientIds

    return await ClientIds(app).stored(client_id)


class Chat:
    """One person talking to the bot through the service layer, as a channel would."""

    def __init__(self, app: App, external_id: str, channel: str = "test") -> None:
        self.app = app
        self.external_id = external_id
        self.channel = channel
        self.replies: list[Reply] = []
        self._n = 0

    async def send(self, msg: Incoming) -> list[Reply]:
        self.replies = (await self.app.handle(msg)).replies
        return self.replies

    async def say(self, text: str) -> list[Reply]:
        self._n += 1
        return await self.send(
            Incoming(
                self.channel,
                self.external_id,
                Kind.TEXT,
                text=text,
                update_id=f"{self.external_id}-{self._n}",
            )
        )

    async def press(self, option_id: str) -> list[Reply]:
        self._n += 1
        return await self.send(
            Incoming(
                self.channel,
                self.external_id,
                Kind.OPTION,
                option_id=option_id,
                update_id=f"{self.external_id}-{self._n}",
            )
        )

    async def send_kind(self, kind: Kind) -> list[Reply]:
        return await self.send(Incoming(self.channel, self.external_id, kind))

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def option_ids(self) -> list[str]:
        return [o.id for r in self.replies for o in r.options]

    @property
    def option_labels(self) -> list[str]:
        return [o.label for r in self.replies for o in r.options]


# Answers to the 25 questions of the year report of content/forms/village_report.yaml (period
# "2026") that pass every rule, typed the ways officers type them (the benchmarks file this
# report again and again). The fund spent covers the scholarships and awards it paid.
VILLAGE_REPORT_ANSWERS = [
    "120",
    "500",
    "80",
    "60",
    "10",
    "6",
    "5",
    "3",
    "đã đăng ký",
    "100",
    "10",
    "300",
    "50",
    "200",
    "40",
    "5tr",
    "3tr5",
    "1tr5",
    "10",
    "2tr5",
    "5",
    "1tr",
    "4",
    "120",
    "bỏ qua",
]
