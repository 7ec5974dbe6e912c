"""Typed settings from the environment and an optional `.env` file.

Every setting is documented in the README's settings reference (a test checks this).
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///data/khuyenhoc.db",
        description="SQLAlchemy URL. SQLite by default; postgresql://user:pass@host/db for PostgreSQL.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP app listens on.")
    port: int = Field(default=8080, description="Port of the HTTP app (web chat, webhooks, health).")
    default_locale: str = Field(default="vi", description="Language for new contacts: vi or en.")
    dialogue_expiry_hours: float = Field(
        default=72.0,
        description="An unfinished report older than this is dropped, with a message, when the user writes again.",
    )
    invite_expiry_days: int = Field(default=14, description="How long a new invite code stays valid.")
    max_text_length: int = Field(
        default=2000, description="Longer free-text answers are refused with an explanation."
    )
    content_dir: str = Field(default="content", description="Folder holding forms, articles and sample units.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    webchat_enabled: bool = Field(default=True, description="Serve the local web chat page at /.")
    telegram_token: SecretStr | None = Field(default=None, description="Telegram bot token (from @BotFather).")
    zalo_token: SecretStr | None = Field(default=None, description="Zalo Bot Platform token.")
