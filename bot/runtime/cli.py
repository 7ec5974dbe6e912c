"""The `khuyenhoc` command: run the bot, set up the database, import units, create invites."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from bot.domain.app import App
from bot.domain.clock import SystemClock
from bot.domain.settings import Settings
from bot.runtime.bootstrap import Bot, bootstrap
from storage.migrate import upgrade
from storage.models import Contact
from storage.uow import UnitOfWork

app = typer.Typer(
    help="Khuyến học Bot — guided reporting for the learning-society movement.", no_args_is_help=True
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
units_app = typer.Typer(help="Administrative units and villages.", no_args_is_help=True)
invite_app = typer.Typer(help="Invite codes for officers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(units_app, name="units")
app.add_typer(invite_app, name="invite")
telegram_app = typer.Typer(help="Telegram: webhook and bot checks (docs/channels.md).", no_args_is_help=True)
zalo_app = typer.Typer(help="Zalo: webhook and bot checks (docs/channels.md).", no_args_is_help=True)
app.add_typer(telegram_app, name="telegram")
app.add_typer(zalo_app, name="zalo")
content_app = typer.Typer(help="The content library (content/articles).", no_args_is_help=True)
app.add_typer(content_app, name="content")
contact_app = typer.Typer(
    help="A person's data: answer a request to see or delete it (docs/privacy.md).", no_args_is_help=True
)
app.add_typer(contact_app, name="contact")


def _settings(**overrides: object) -> Settings:
    base = Settings()
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database, handing the migrations the settings they need (web chat ids are
    stored hashed under WEBCHAT_ID_SECRET when it is set)."""
    secret = settings.webchat_id_secret
    upgrade(settings.database_url, revision, webchat_id_secret=secret.get_secret_value() if secret else None)


def _serve(process: Bot, *, scheduler: bool = False) -> None:
    import uvicorn

    from bot.runtime.http import install_log_redaction

    bot = process.app

    logging.basicConfig(
        level=bot.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction()
    # APScheduler logs every run of every job at INFO; bot.runtime.scheduler logs the runs that did something.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    api = process.http_app()
    if scheduler:  # reports: scheduled jobs on the instance elected by the lease (bot/runtime/scheduler.py)
        from bot.runtime.scheduler import attach_to

        attach_to(api, bot, process.jobs)
    uvicorn.run(
        api,
        host=bot.settings.host,
        port=bot.settings.port,
        log_level=bot.settings.log_level.lower(),
        forwarded_allow_ips=bot.settings.forwarded_allow_ips,
    )


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
) -> None:
    """Run the bot: web chat, webhooks and health on one HTTP port.

    Telegram and Zalo start with it when their tokens are set: through webhooks when PUBLIC_URL
    is set, by polling otherwise (bot.channels.manager, started by the HTTP app's lifespan).
    """
    settings = _settings(host=host, port=port)
    _upgrade(settings)
    _serve(bootstrap(settings), scheduler=True)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    serve: Annotated[bool, typer.Option(help="Serve the web chat after seeding.")] = True,
) -> None:
    """Set up a demo on SQLite (units, sample villages, invite codes) and serve the web chat."""
    settings = _settings(port=port)
    _upgrade(settings)
    process = bootstrap(settings)
    village_code, commune_code, where = asyncio.run(_seed_demo(process.app))
    link = asyncio.run(_console_link(process.app, DEMO_CHANNEL, DEMO_COMMUNE_OFFICER))
    typer.echo(f"Demo ready: {where}")
    typer.echo(f"  Invite code, village officer : {village_code}")
    typer.echo(f"  Invite code, commune officer : {commune_code}")
    typer.echo(f"Open http://{settings.host}:{settings.port}/ , press “Bắt đầu”, choose “Tôi có mã mời”.")
    typer.echo(
        f"Web console of the demo commune officer (works once, for {settings.console_link_minutes} minutes; "
        f"`khuyenhoc console-link {DEMO_COMMUNE_OFFICER} --channel {DEMO_CHANNEL}` prints a new one):"
    )
    typer.echo(f"  {link}")
    if serve:
        _serve(process, scheduler=True)  # as `run` does: reminders, tips, digests, the outbox


# The demo's commune officer: a contact with no chat app, who logs in to the web console.
DEMO_CHANNEL = "demo"
DEMO_COMMUNE_OFFICER = "commune-officer"


@app.command("console-link")
def console_link(
    external_id: Annotated[str, typer.Argument(help="The contact's id on the channel.")],
    channel: Annotated[str, typer.Option(help="webchat, telegram, zalo or demo.")] = "telegram",
) -> None:
    """Print a one-time web console link for a commune or province officer (what /web sends)."""
    from bot.domain.permissions import NotAllowed

    settings = Settings()
    _upgrade(settings)
    try:
        link = asyncio.run(_console_link(bootstrap(settings).app, channel, external_id))
    except (LookupError, NotAllowed) as exc:
        typer.echo(f"No link: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(link)


async def _console_link(bot: App, channel: str, external_id: str) -> str:
    from datetime import timedelta

    from bot.conversations.flows.console_link import base_url
    from bot.domain.permissions import load_grants
    from bot.services.actor import Actor
    from bot.services.console_sessions import link_url, login_link

    try:
        async with bot.uow() as uow:
            contact = await uow.contacts.by_identity(channel, external_id)
            if contact is None:
                raise LookupError(f"no contact {external_id!r} on {channel}")
            actor = Actor.of(contact, await load_grants(uow, contact.id))
            ttl = timedelta(minutes=bot.settings.console_link_minutes)
            token = await login_link(uow, actor, bot.clock.now(), ttl)
            await uow.commit()
    finally:
        await bot.db.dispose()
    return link_url(base_url(bot.settings), token)


async def _seed_demo(bot: App) -> tuple[str, str, str]:
    from bot.domain.clock import VN_TZ
    from bot.domain.schedules import load_schedules
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code
    from bot.services.library import sync_library
    from bot.services.reviews import seed_demo_reviews
    from bot.services.units import seed_demo
    from storage.models import COMMUNE_OFFICER, VILLAGE, VILLAGE_OFFICER

    now = bot.clock.now()
    async with bot.uow() as uow:
        seed = await seed_demo(uow, bot.content_dir, now)
        days = bot.settings.invite_expiry_days
        demo_village = next((v for v in seed.villages if v.kind == VILLAGE), seed.villages[0])
        village = await create_invite(uow, CONSOLE, demo_village, VILLAGE_OFFICER, now, days)
        commune = await create_invite(uow, CONSOLE, seed.commune, COMMUNE_OFFICER, now, days)
        where = f"{demo_village.name}, {seed.commune.name}, {seed.province.name}"
        # One approved village report and one returned with a reason, so that /duyet shows review.
        form = bot.forms["village_report"]
        period, _ = load_schedules(bot.content_dir).open_period(form.key, now.astimezone(VN_TZ).date())
        # The returned one is the demo village: its officer opens /baocao and reads the reason.
        approved = next(v for v in seed.villages if v.id != demo_village.id)
        await seed_demo_reviews(uow, form, [approved, demo_village], period, now)
        await sync_library(uow, bot.content_dir, now)  # articles for /tin and /guitin
        officer = await uow.contacts.by_identity(DEMO_CHANNEL, DEMO_COMMUNE_OFFICER)
        if officer is None:  # the web console's demo user
            officer = await uow.contacts.create(DEMO_CHANNEL, DEMO_COMMUNE_OFFICER, now)
            officer.display_name = "Nguyễn Thị Lan (demo)"
            officer.consent_at = now
            officer.home_unit_id = seed.commune.id
        await uow.contacts.grant(officer.id, COMMUNE_OFFICER, seed.commune.id, now)
        await uow.commit()
    await bot.db.dispose()
    return format_code(village.code), format_code(commune.code), where


@content_app.command("sync")
def content_sync() -> None:
    """Load content/articles into the database: new and changed items; removed ones retired."""
    from bot.messaging.content import ContentError
    from bot.services.library import sync_library

    async def go(bot: App) -> str:
        try:
            async with bot.uow() as uow:
                result = await sync_library(uow, bot.content_dir, bot.clock.now())
                await uow.commit()
        finally:
            await bot.db.dispose()
        return str(result)

    settings = Settings()
    _upgrade(settings)
    try:
        typer.echo(asyncio.run(go(bootstrap(settings).app)))
    except ContentError as exc:
        typer.echo(f"Nothing synced: {exc}", err=True)
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the database migrations."""
    settings = Settings()
    _upgrade(settings, revision)
    typer.echo("Database is up to date.")


@db_app.command("backup")
def db_backup() -> None:
    """Back the database up to BACKUP_DIR (a file named by date; those older than BACKUP_KEEP_DAYS go).

    SQLite: a consistent copy through the online backup API, safe while the bot runs.
    PostgreSQL: pg_dump (custom format) when installed; otherwise the command to use.
    """
    from bot.runtime.backup import back_up
    from storage.backup import BackupError

    process = bootstrap(Settings())
    try:
        written, gone = back_up(process.app)
    except BackupError as exc:
        typer.echo(f"No backup made: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Backup written: {written} ({written.stat().st_size:,} bytes)")
    for path in gone:
        typer.echo(f"Deleted (older than {process.app.settings.backup_keep_days} days): {path}")


@db_app.command("restore")
def db_restore(
    backup_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A file written by `khuyenhoc db backup`.")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the database's content with a backup's. Stop the bot first.

    SQLite: what is there now is backed up first (its file name is printed). PostgreSQL:
    pg_restore --clean, in one transaction.
    """
    from storage.backup import BackupError, restore

    settings = Settings()
    if not yes:
        typer.confirm(f"Replace everything in the database with {backup_file}?", abort=True)
    try:
        before = restore(settings.database_url, backup_file, Path(settings.backup_dir), SystemClock().now())
    except BackupError as exc:
        typer.echo(f"Not restored: {exc}", err=True)
        raise typer.Exit(1) from None
    if before is not None:
        typer.echo(f"What was there before is kept in {before}")
    upgrade(settings.database_url)  # a backup from an older version: bring its schema up to date
    typer.echo(f"Restored from {backup_file}.")


@units_app.command("import")
def units_import() -> None:
    """Load the 34 provinces and 3,321 communes (package vietnam-provinces)."""
    from bot.services.units import import_admin_units

    async def go(bot: App) -> str:
        async with bot.uow() as uow:
            result = await import_admin_units(uow, bot.clock.now())
            await uow.commit()
        await bot.db.dispose()
        counts = f"{result.inserted} inserted, {result.updated} updated, {result.unchanged} unchanged"
        return f"{counts} (data {result.data_version})"

    settings = Settings()
    _upgrade(settings)
    typer.echo(asyncio.run(go(bootstrap(settings).app)))


@units_app.command("import-villages")
def units_import_villages(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV: commune_code,village_name,kind")
    ],
) -> None:
    """Load villages and residential groups from a CSV file (idempotent)."""
    from bot.services.units import import_villages_csv

    async def go(bot: App) -> list[str]:
        async with bot.uow() as uow:
            result = await import_villages_csv(uow, path, bot.clock.now())
            await uow.commit()
        await bot.db.dispose()
        return [
            f"{result.inserted} inserted, {result.updated} updated, {result.unchanged} unchanged",
            *result.errors,
        ]

    settings = Settings()
    _upgrade(settings)
    for line in asyncio.run(go(bootstrap(settings).app)):
        typer.echo(line)


@invite_app.command("create")
def invite_create(
    unit: Annotated[str, typer.Option("--unit", help="Unit id, or national code of a province/commune.")],
    role: Annotated[
        str, typer.Option("--role", help="village_officer, commune_officer, province_staff or admin.")
    ],
    uses: Annotated[int, typer.Option(help="How many people may use the code.")] = 1,
    days: Annotated[int | None, typer.Option(help="Days until the code expires.")] = None,
) -> None:
    """Create an invite code for an officer of a unit (as the operator: audited "by console")."""
    from bot.services.actor import CONSOLE
    from bot.services.invites import create_invite, format_code
    from storage.models import OFFICER_ROLES

    if role not in OFFICER_ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(OFFICER_ROLES)}")

    async def go(bot: App) -> str:
        async with bot.uow() as uow:
            found = await uow.units.by_code(unit)
            if found is None and unit.isdigit():
                found = await uow.units.get(int(unit))
            if found is None:
                raise typer.BadParameter(f"no unit {unit!r}")
            invite = await create_invite(
                uow,
                CONSOLE,
                found,
                role,
                bot.clock.now(),
                days or bot.settings.invite_expiry_days,
                max_uses=uses,
            )
            await uow.commit()
        await bot.db.dispose()
        return f"{format_code(invite.code)}  ({role}, {found.name}, expires {invite.expires_at:%Y-%m-%d})"

    settings = Settings()
    _upgrade(settings)
    typer.echo(asyncio.run(go(bootstrap(settings).app)))


def _channel_admin(channel: str, action: str, public_url: str | None) -> None:
    """Run one webhook or info call for `channel` and print what it says."""
    settings = _settings(public_url=public_url)
    token = settings.telegram_token if channel == "telegram" else settings.zalo_token
    if token is None:
        raise typer.BadParameter(f"{channel.upper()}_TOKEN is not set (in the environment or .env)")
    if action == "set-webhook" and not settings.public_url:
        raise typer.BadParameter("set PUBLIC_URL (or --public-url): the HTTPS address the platform can reach")
    if channel == "telegram":
        from bot.channels.telegram.channel import run_admin
    else:
        from bot.channels.zalo.channel import run_admin

    async def go(bot: App) -> list[str]:
        try:
            return await run_admin(bot, action)
        finally:
            await bot.db.dispose()

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for line in asyncio.run(go(bootstrap(settings).app)):
        typer.echo(line)


PublicUrl = Annotated[str | None, typer.Option("--public-url", help="Overrides PUBLIC_URL.")]


@telegram_app.command("set-webhook")
def telegram_set_webhook(public_url: PublicUrl = None) -> None:
    """Register {PUBLIC_URL}/telegram/webhook (with its secret) and the command menu (vi, en)."""
    _channel_admin("telegram", "set-webhook", public_url)


@telegram_app.command("delete-webhook")
def telegram_delete_webhook() -> None:
    """Remove the webhook, so that `khuyenhoc run` without PUBLIC_URL can poll."""
    _channel_admin("telegram", "delete-webhook", None)


@telegram_app.command("info")
def telegram_info() -> None:
    """Check the token and show the registered webhook and its last error."""
    _channel_admin("telegram", "info", None)


@zalo_app.command("set-webhook")
def zalo_set_webhook(public_url: PublicUrl = None) -> None:
    """Register {PUBLIC_URL}/zalo/webhook with its secret token."""
    _channel_admin("zalo", "set-webhook", public_url)


@zalo_app.command("delete-webhook")
def zalo_delete_webhook() -> None:
    """Remove the webhook, so that `khuyenhoc run` without PUBLIC_URL can poll."""
    _channel_admin("zalo", "delete-webhook", None)


@zalo_app.command("info")
def zalo_info() -> None:
    """Check the token and show the registered webhook."""
    _channel_admin("zalo", "info", None)


@app.command()
def report(
    unit: Annotated[
        str,
        typer.Option("--unit", help="Unit id, or national code of a province or commune; 'all': the nation."),
    ],
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="Period: 2026-H1, 2026 (or 2026-W07, 2026-03, 2026-2027). "
            "Default: the open period whose deadline comes next, as /baocaotonghop offers it.",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="xlsx, csv or png (png: one chart per indicator).")
    ] = "xlsx",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write; default: a name from the unit and period.")
    ] = None,
    locale: Annotated[str, typer.Option(help="Language of the labels: vi or en.")] = "vi",
) -> None:
    """Write a compiled report: the .xlsx, chart or CSV officers receive (no role check: an admin's tool)."""
    from bot.domain.clock import VN_TZ
    from bot.domain.i18n import translator
    from bot.domain.periods import Period
    from bot.domain.schedules import load_schedules
    from bot.reports.aggregate import VILLAGE_FORM
    from bot.reports.compiled import FORMATS, compile_unit, file_stem, render, summary_text
    from bot.reports.profile import unit_profile
    from storage.models import Unit
    from storage.repositories import UnitRepository

    if fmt not in FORMATS:
        raise typer.BadParameter(f"format must be one of {', '.join(FORMATS)}")
    try:
        wanted = Period.parse(period) if period else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def go(bot: App) -> tuple[list[tuple[str, bytes]], str, str]:
        chosen = wanted
        if chosen is None:  # the one default-period rule (bot/domain/schedules.py)
            today = bot.clock.now().astimezone(VN_TZ).date()
            chosen, _ = load_schedules(bot.content_dir).open_period(VILLAGE_FORM, today)
        try:
            async with bot.read_only() as reads:
                session = reads.session
                found: Unit | None = None
                if unit.lower() != "all":
                    units = UnitRepository(session)
                    found = await units.by_code(unit)
                    if found is None and unit.isdigit():
                        found = await units.get(int(unit))
                    if found is None:
                        raise typer.BadParameter(f"no unit {unit!r}")
                compiled = await compile_unit(
                    reads,
                    found,
                    chosen,
                    content_dir=bot.content_dir,
                    forms=bot.forms,
                    now=bot.clock.now(),
                )
                profile = await unit_profile(reads, None if found is None else found.id)
        finally:
            await bot.db.dispose()
        t = translator(locale)
        files = [(f.filename, f.data) for f in render(compiled, t, [fmt], profile)]
        return files, file_stem(compiled), summary_text(compiled, t, files_attached=False)

    settings = Settings()
    _upgrade(settings)
    files, stem, summary = asyncio.run(go(bootstrap(settings).app))
    typer.echo(summary)
    for filename, data in files:
        # png gives a chart per indicator: with --out report.png, report-gia-dinh-hoc-tap.png and so on.
        target = Path(filename)
        if out is not None:
            ending = filename[len(stem) :].rsplit(".", 1)[0].strip("-")
            target = out if len(files) == 1 else out.with_name(f"{out.stem}-{ending}{out.suffix}")
        target.write_bytes(data)
        typer.echo(f"Written: {target} ({len(data):,} bytes)")


# ----------------------------------------------------------------------------- a person's data

Channel = Annotated[str, typer.Option("--channel", help="telegram, zalo or webchat.")]
ChatId = Annotated[str, typer.Option("--id", help="The person's id on that channel (Telegram chat id…).")]


async def _contact_of(uow: UnitOfWork, channel: str, external_id: str) -> Contact:
    found = await uow.contacts.by_identity(channel, external_id)
    if found is None:
        raise typer.BadParameter(f"nobody has the {channel} id {external_id!r}")
    return found


@contact_app.command("show")
def contact_show(
    channel: Channel,
    external_id: ChatId,
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON file here.")] = None,
) -> None:
    """Everything kept about a person, as /dulieu gives them (a JSON file). Audited "by console"."""
    from bot.services.actor import CONSOLE
    from bot.services.personal_data import personal_data

    async def go(bot: App) -> bytes:
        try:
            async with bot.uow() as uow:
                contact = await _contact_of(uow, channel, external_id)
                data = await personal_data(uow, CONSOLE, contact, bot.clock.now())
                await uow.commit()
                return data.as_json()
        finally:
            await bot.db.dispose()

    settings = Settings()
    upgrade(settings.database_url)
    data = asyncio.run(go(bootstrap(settings).app))
    if out is None:
        typer.echo(data.decode("utf-8"))
    else:
        out.write_bytes(data)
        typer.echo(f"Written: {out} ({len(data):,} bytes)")


@contact_app.command("erase")
def contact_erase(
    channel: Channel,
    external_id: ChatId,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Withdraw a person's consent and delete their data, as /xoadulieu does (reports stay,
    attributed to their unit and role). Audited "by console"."""
    from bot.services.actor import CONSOLE
    from bot.services.personal_data import erase_personal_data

    if not yes:
        raise typer.BadParameter("this deletes the person's data for good: add --yes to confirm")

    async def go(bot: App) -> dict[str, int]:
        try:
            async with bot.uow() as uow:
                contact = await _contact_of(uow, channel, external_id)
                erased = await erase_personal_data(uow, CONSOLE, contact, bot.clock.now())
                await uow.commit()
                return erased.counts
        finally:
            await bot.db.dispose()

    settings = Settings()
    upgrade(settings.database_url)
    counts = asyncio.run(go(bootstrap(settings).app))
    typer.echo("Erased: " + ", ".join(f"{table} {n}" for table, n in counts.items()))


def main() -> None:
    app()
