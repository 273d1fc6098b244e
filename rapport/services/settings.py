"""Runtime configuration, read once from `RAPPORT_*` environment variables.

Every setting has a default that works on one machine with no setup (SQLite under
`var/`, rules and templates from the working tree), so `make demo` needs nothing.
The one exception is the secret that signs unsubscribe links: its documented default
is public, so whatever signs or checks links (`Settings.signing_key`) refuses it, and
an empty one; `rapport demo` runs with a key of its own.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DOCUMENTED_SECRET_KEY = "rapport-demo-secret-change-me"  # in the README: anyone knows it
# Plain addresses only: nothing in them needs escaping inside a mailto: URI.
# The languages of staff-facing output (rapport/services/staff_language.py).
STAFF_LOCALES = ("zh-CN", "en")
_MAILBOX = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


class InsecureSecret(ValueError):
    """RAPPORT_SECRET_KEY is one anyone can know: links signed with it can be forged."""


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
    staff_locale: Literal["zh-CN", "en"] = Field(
        default="zh-CN",
        description="Language of the report, artifacts and command messages: zh-CN or en.",
    )
    evaluation_shards: int = Field(
        default=0,
        ge=0,
        description="Shards of an evaluate-rules run (0: one per 50,000 customers, at most 8).",
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
        default=DOCUMENTED_SECRET_KEY,
        description="Signs unsubscribe links; api, dispatch, run and serve refuse this "
        "default and an empty one.",
    )
    unsubscribe_mailto: str | None = Field(
        default=None,
        description="Mailbox for mailto: unsubscribes, offered in List-Unsubscribe after the link.",
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

    def signing_key(self) -> str:
        """The secret that signs and checks unsubscribe links. Raises `InsecureSecret`
        (one line, with the fix) for the documented default or an empty secret."""
        if not self.secret_key.strip():
            problem = "RAPPORT_SECRET_KEY is empty"
        elif self.secret_key == DOCUMENTED_SECRET_KEY:
            problem = "RAPPORT_SECRET_KEY is the documented default"
        else:
            return self.secret_key
        raise InsecureSecret(
            f"{problem}, so anyone can sign unsubscribe links; set a random secret of your "
            "own, e.g. export RAPPORT_SECRET_KEY=$(python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _plain_mailbox(cls, value: str | None) -> str | None:
        if not value:
            return None  # set but empty: no mailto
        if not _MAILBOX.fullmatch(value):
            raise ValueError(f"{value!r} is not a plain address such as unsubscribe@example.com")
        return value

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
