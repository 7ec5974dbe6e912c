"""Typed settings from the environment and an optional `.env` file.

Every setting is documented in the README's settings reference (a test checks this).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # An empty variable (`TELEGRAM_TOKEN=` left in .env or passed by docker compose) counts as unset:
    # an empty token would start a channel that can only fail.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///data/khuyenhoc.db",
        description="SQLAlchemy URL. SQLite by default; postgresql://user:pass@host/db for PostgreSQL.",
    )
    sqlite_driver: Literal["inline", "aiosqlite"] = Field(
        default="inline",
        description="How SQLite is driven: inline on the event loop (fast; see storage/sqlite_inline.py) "
        "or aiosqlite's thread.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP app listens on.")
    port: int = Field(default=8080, description="Port of the HTTP app (web chat, webhooks, health).")
    default_locale: str = Field(default="vi", description="Language for new contacts: vi or en.")
    dialogue_expiry_hours: float = Field(
        default=72.0,
        description="An unfinished report older than this is dropped, with a message, "
        "when the user writes again.",
    )
    invite_expiry_days: int = Field(default=14, description="How long a new invite code stays valid.")
    max_text_length: int = Field(
        default=2000, description="Longer free-text answers are refused with an explanation."
    )
    content_dir: str = Field(
        default="content", description="Folder holding forms, articles and sample units."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    webchat_enabled: bool = Field(default=True, description="Serve the local web chat page at /.")
    webchat_id_secret: SecretStr | None = Field(
        default=None,
        description="Key of the keyed hash (HMAC-SHA256) under which web chat client ids are stored: the "
        "database never holds an id itself. Empty: a key is made at the first start and kept in the "
        "database (table server_secrets), the same for every instance. Set it to keep the key out of the "
        "database. Changing it signs every web chat user out.",
    )
    telegram_token: SecretStr | None = Field(
        default=None, description="Telegram bot token (from @BotFather)."
    )
    zalo_token: SecretStr | None = Field(default=None, description="Zalo Bot Platform token.")

    # Channels (docs/channels.md). With PUBLIC_URL set the platforms call our webhooks;
    # without it each channel that has a token polls.
    public_url: str | None = Field(
        default=None,
        description="Public HTTPS address of this app (e.g. https://bot.example.org). Set: Telegram and "
        "Zalo deliver to {PUBLIC_URL}/telegram/webhook and {PUBLIC_URL}/zalo/webhook. Empty: they poll.",
    )
    telegram_api_base_url: str = Field(
        default="https://api.telegram.org",
        description="Telegram Bot API server (change for a self-hosted Bot API server or tests).",
    )
    telegram_bot_username: str | None = Field(
        default=None,
        pattern=r"^@?[A-Za-z][A-Za-z0-9_]{3,31}$",
        description="The bot's Telegram username (e.g. KhuyenHocCaoBangBot, from @BotFather). Set: printed "
        "invite slips carry a QR code of https://t.me/<username>?start=<code>, which opens the bot and "
        "redeems the code. Empty: slips say to send /start and type the code.",
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret Telegram sends in the X-Telegram-Bot-Api-Secret-Token header "
        "(1-256 of A-Z a-z 0-9 _ -). Empty: derived from the token, the same on every instance.",
    )
    telegram_rate_per_second: float = Field(
        default=29.5,
        description="Most Telegram messages per second for the whole bot (0: no limit). Telegram allows "
        "about 30; 29.5 leaves room for timer jitter (BENCHMARKS.md).",
    )
    telegram_chat_rate_per_second: float = Field(
        default=1.0, description="Most Telegram messages per second to one chat, sustained (0: no limit)."
    )
    telegram_chat_burst: int = Field(
        default=3,
        ge=1,
        description="Telegram messages one chat may get at once before the per-chat rate applies.",
    )
    zalo_api_base_url: str = Field(
        default="https://bot-api.zaloplatforms.com",
        description="Zalo Bot Platform API server; requests go to {base}/bot{token}/{method}.",
    )
    zalo_bot_name: str | None = Field(
        default=None,
        max_length=80,
        description="The bot's name as people find it in Zalo (e.g. Bot Khuyến học Cao Bằng): printed on "
        "invite slips. Zalo bots take no start payload, so on Zalo the code is typed after /start.",
    )
    zalo_bot_link: str | None = Field(
        default=None,
        pattern=r"^https://\S+$",
        max_length=200,
        description="A link that opens the bot in Zalo (e.g. a https://zalo.me/… link from Zalo Bot "
        "Creator), if you have one: invite slips then carry a QR code of it.",
    )
    zalo_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret Zalo sends in the X-Bot-Api-Secret-Token header (8-256 characters). "
        "Empty: derived from the token, the same on every instance.",
    )
    zalo_rate_per_second: float = Field(
        default=5.0,
        description="Most Zalo messages per second for the whole bot (0: no limit). Zalo publishes no "
        "figure, so the default is conservative.",
    )
    zalo_chat_rate_per_second: float = Field(
        default=1.0, description="Most Zalo messages per second to one person, sustained (0: no limit)."
    )
    zalo_chat_burst: int = Field(
        default=3,
        ge=1,
        description="Zalo messages one person may get at once before the per-person rate applies.",
    )
    send_retries: int = Field(
        default=3, ge=0, description="Retries of a message after a network error, a 5xx or a 429."
    )
    send_retry_backoff_seconds: float = Field(
        default=1.0,
        ge=0,
        description="First wait before retrying after a network error or 5xx; doubles each time.",
    )
    send_max_retry_after_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A 429 asking to wait longer than this is not waited out: the message fails "
        "as rate-limited (the outbox retries it later).",
    )
    poll_timeout_seconds: int = Field(
        default=25, ge=1, description="Long-polling timeout for getUpdates (polling mode)."
    )
    link_code_expiry_minutes: int = Field(
        default=10, ge=1, description="How long a /lienket code stays valid."
    )

    # Outreach (bot/messaging/outreach.py, bot/messaging/outbox.py).
    weekly_tip_weekday: int = Field(
        default=6,
        ge=0,
        le=6,
        description="Day of the weekly tip to members: 0 Monday … 6 Sunday (Vietnam time).",
    )
    weekly_tip_hour: int = Field(
        default=19, ge=0, le=23, description="Hour of the weekly tip (Vietnam time)."
    )
    weekly_tip_window_hours: float = Field(
        default=12.0,
        gt=0,
        description="A weekly tip not queued within this many hours of its slot (the bot was down) "
        "waits for next week's slot rather than arriving at night.",
    )
    campaign_send_hour: int = Field(
        default=8,
        ge=0,
        le=23,
        description="Hour (Vietnam time) from which the Lifelong Learning Week job sends the day's "
        "reminders and items.",
    )
    outbox_concurrency: int = Field(
        default=4,
        ge=1,
        description="Outbox messages in flight per channel. The channel's own rate limit paces them; "
        "this bounds how many messages a crash can leave in doubt.",
    )
    outbox_batch_size: int = Field(
        default=50,
        ge=1,
        description="Outbox rows claimed at once on channels that deduplicate resends (web chat); "
        "other channels claim one row at a time.",
    )
    outbox_max_attempts: int = Field(
        default=5, ge=1, description="Attempts at an outbox message before it is marked failed."
    )
    outbox_retry_base_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Wait before the second attempt at a failed outbox message; doubles each time.",
    )
    outbox_in_doubt: Literal["skip", "resend"] = Field(
        default="skip",
        description="After a crash, what to do with messages to Telegram or Zalo that may or may not "
        "have been delivered: skip (mark failed: nobody gets one twice) or resend (nobody misses one).",
    )
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the outbox sender looks for due messages when idle."
    )
    outbox_job_seconds: float = Field(
        default=25.0,
        gt=0,
        description="How long one run of the scheduler's outbox job (every 30 s) sends before it "
        "returns; a long broadcast continues in the next run.",
    )
    outbox_claim_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A message claimed this long ago by another sender process is treated as in doubt.",
    )

    # Scheduler and reports (bot/runtime/scheduler.py, bot/messaging/reminders.py, bot/reports/).
    scheduler_enabled: bool = Field(
        default=True,
        description="Run the scheduled jobs (reminders, digests, compiled reports) in `khuyenhoc run`. "
        "With several instances on one database, one is elected by a lease row and runs them.",
    )
    scheduler_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long the elected instance's lease lasts unless renewed: when it stops, another "
        "instance takes over at most this long (plus one renewal interval) later.",
    )
    scheduler_renew_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often each instance renews (or tries to take) the scheduler lease. Keep it well "
        "below scheduler_lease_seconds.",
    )
    scheduler_grace_seconds: float = Field(
        default=21600.0,
        ge=0,
        description="A run missed while no instance was up is still made this many seconds after its "
        "time (reminders due at 08:00 still go out at 13:00); older runs are skipped.",
    )

    # Limits, retention and backups (issue 11: bot/runtime/body_limit.py, bot/channels/ratelimit.py,
    # bot/services/invites.py, bot/messaging/retention.py, storage/backup.py).
    webchat_max_body_bytes: int = Field(
        default=65536,
        ge=0,
        description="Largest request body the web chat API takes, in bytes (0: no limit); larger ones "
        "get 413 before the body is read.",
    )
    webhook_max_body_bytes: int = Field(
        default=1_000_000,
        ge=0,
        description="Largest request body the Telegram and Zalo webhooks (and any other route) take, "
        "in bytes (0: no limit); larger ones get 413 before the body is read.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies whose X-Forwarded-For names the client address (comma-separated, or * "
        "behind a proxy only it can reach): limits per client address see the real client.",
    )
    webchat_new_contacts_per_minute: float = Field(
        default=6.0,
        ge=0,
        description="New web chat ids (each one a contact) one client address may start per minute, "
        "sustained (0: no limit); more get 429.",
    )
    webchat_new_contacts_burst: int = Field(
        default=10,
        ge=1,
        description="New web chat ids one client address may start at once before the per-minute rate "
        "applies.",
    )
    invite_tries_per_contact: int = Field(
        default=5,
        ge=1,
        description="Wrong invite codes one person may type within invite_cooldown_minutes; then they wait.",
    )
    invite_tries_per_address: int = Field(
        default=20,
        ge=1,
        description="Wrong invite codes from one web chat client address within invite_cooldown_minutes; "
        "then that address waits.",
    )
    invite_tries_overall: int = Field(
        default=300,
        ge=1,
        description="Wrong invite codes from everyone together within invite_cooldown_minutes; then "
        "everyone waits (a bound on guessing from many addresses).",
    )
    invite_cooldown_minutes: int = Field(
        default=15,
        ge=1,
        description="The window in which wrong invite codes are counted, and so the longest wait once "
        "a limit is reached.",
    )
    unconsented_contact_retention_days: int = Field(
        default=7,
        ge=1,
        description="A contact who never gave consent (and holds no role) is deleted this many days "
        "after they last wrote.",
    )
    processed_update_retention_days: int = Field(
        default=7,
        ge=1,
        description="How long the ids of processed platform updates are kept to drop repeated "
        "deliveries (platforms retry for about a day).",
    )
    dialogue_retention_days: int = Field(
        default=30,
        ge=1,
        description="A dialogue row untouched this long (an abandoned report, a finished chat) is "
        "deleted; keep it above dialogue_expiry_hours.",
    )
    console_link_minutes: int = Field(
        default=10,
        ge=1,
        le=60,
        description="How long the one-time staff console link sent by /web stays valid (it works once).",
    )
    console_session_hours: int = Field(
        default=12,
        ge=1,
        description="How long a staff console session lasts in the browser before /web is needed again.",
    )
    kept_file_days: int = Field(
        default=30,
        ge=1,
        description="How long a compiled file (.xlsx, chart) stays downloadable from the web chat "
        "history; then its link answers 404 and the nightly retention job deletes it (and stored "
        "report files unused for as long).",
    )
    sent_message_retention_days: int = Field(
        default=180,
        ge=30,
        description="How long a message the bot sent (reminders, broadcasts, digests, replies sent "
        "later) is kept: the nightly retention job deletes it this many days after it was queued, once "
        "it is sent, failed or cancelled (never while it waits); broadcasts keep their counts. At least "
        "30, so that a web chat page opened rarely still receives what was sent.",
    )
    invite_try_retention_days: int = Field(
        default=30,
        ge=8,
        description="How long wrong invite codes are remembered (the limits, the weekly digest); the "
        "audit log keeps its own rows.",
    )
    backup_dir: str = Field(
        default="data/backups",
        description="Folder of `khuyenhoc db backup` files and the nightly backup.",
    )
    backup_keep_days: int = Field(
        default=7, ge=1, description="Backup files older than this many days are deleted after a backup."
    )
    backup_nightly: bool = Field(
        default=True,
        description="On SQLite, back the database up every night (time: `backup` in "
        "content/schedules.yaml). PostgreSQL is backed up with pg_dump (docs/deploy.md).",
    )
