"""Runtime configuration, read once from `RAPPORT_*` environment variables.

Every setting has a default that works on one machine with no setup (SQLite under
`var/`, rules and templates from the working tree), so `make demo` needs nothing.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings documented in the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="RAPPORT_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/rapport.db",
        description="SQLAlchemy URL of Rapport's database (SQLite file or PostgreSQL).",
    )
    rules_dir: Path = Field(default=Path("rules"), description="Folder of the YAML rules.")
    templates_dir: Path = Field(
        default=Path("templates/messages"), description="Folder of the message templates."
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="IANA timezone for customers without one and for schedules.",
    )
    currency: str = Field(default="CNY", description="Currency of amounts in imports.")
    import_future_hours: int = Field(
        default=24, ge=0, description="Events dated further after their import are rejected."
    )

    def future_horizon(self) -> timedelta:
        """How far after its import an event may have happened."""
        return timedelta(hours=self.import_future_hours)

    company_name: str = Field(default="Rapport", description="Company name in messages.")
    company_phone: str = Field(default="400-000-0000", description="Service phone in messages.")
    company_website: str = Field(default="https://example.com", description="Website in messages.")

    smtp_host: str | None = Field(
        default=None, description="SMTP server for email; unset: email goes to the outbox folder."
    )
    smtp_port: int = Field(default=25, description="SMTP port (587 STARTTLS, 465 TLS).")
    smtp_user: str | None = Field(default=None, description="SMTP user name, if any.")
    smtp_password: str | None = Field(default=None, description="SMTP password, if any.")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none, starttls or tls."
    )
    smtp_from: str = Field(default="Rapport <noreply@example.com>", description="Email sender.")
    webhook_sms_url: str | None = Field(default=None, description="Webhook for SMS.")
    webhook_wechat_url: str | None = Field(default=None, description="Webhook for WeChat.")
    webhook_app_url: str | None = Field(default=None, description="Webhook for app push.")
    webhook_secret: str = Field(default="", description="HMAC key signing webhook requests.")
    outbox_dir: Path = Field(
        default=Path("var/outbox"), description="Where unconfigured channels write messages."
    )
    reports_dir: Path = Field(
        default=Path("var/reports"), description="Where the daily report writes its HTML page."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base of links in messages (unsubscribe)."
    )
    secret_key: str = Field(
        default="rapport-demo-secret-change-me",
        description="Signs unsubscribe links; set your own in production.",
    )

    api_keys: str = Field(
        default="",
        description='API keys as JSON: [{"name", "role", "sha256"}] (see `rapport api-key`).',
    )
    api_max_body_bytes: int = Field(
        default=2_000_000, description="Largest request body the API accepts (bytes)."
    )

    def company(self) -> dict[str, str]:
        """The `company` variables of message templates."""
        return {
            "name": self.company_name,
            "service_phone": self.company_phone,
            "website": self.company_website,
        }

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)  # a typo fails at start-up, not at the first send
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` instead)."""
    return Settings()
