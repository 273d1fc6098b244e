"""The commands that sign or check unsubscribe links refuse a secret anyone knows.

`api`, `dispatch`, `run` and `serve` stop at once, with one line saying why, when
RAPPORT_SECRET_KEY is the README's default or empty; `rapport demo` runs with a key of
its own (tests/rapport/demo). A loopback RAPPORT_PUBLIC_URL is a warning once email
goes to a real SMTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.services.settings import Settings, get_settings
from tests.paths import ROOT

runner = CliRunner()
DOCUMENTED_DEFAULT = Settings.model_fields["secret_key"].default
FORGEABLE = (
    "so anyone can sign unsubscribe links; set a random secret of your own, e.g. "
    "export RAPPORT_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
)


@pytest.fixture(autouse=True)
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'secrets.db'}")
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(ROOT / "templates" / "messages"))
    monkeypatch.setenv("RAPPORT_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("RAPPORT_SMTP_HOST", raising=False)
    monkeypatch.delenv("RAPPORT_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that got past the check would serve forever: make that a failure."""
    import uvicorn

    import flows.schedules

    def started(*_: Any, **__: Any) -> Any:
        raise AssertionError("the command started with a secret anyone knows")

    monkeypatch.setattr(uvicorn, "run", started)
    monkeypatch.setattr(flows.schedules, "embedded_scheduler", started)


def use_secret(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("RAPPORT_SECRET_KEY", secret)
    get_settings.cache_clear()


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize("command", [["api"], ["dispatch"], ["run"], ["serve", "--embedded"]])
@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (DOCUMENTED_DEFAULT, "RAPPORT_SECRET_KEY is the documented default"),
        ("", "RAPPORT_SECRET_KEY is empty"),
        ("  \t", "RAPPORT_SECRET_KEY is empty"),
    ],
)
def test_commands_signing_links_refuse_a_known_or_empty_secret(
    monkeypatch: pytest.MonkeyPatch, command: list[str], secret: str, reason: str
) -> None:
    use_secret(monkeypatch, secret)
    result = runner.invoke(app, command)
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert result.exit_code == 1, result.output
    assert result.stderr == f"rapport: {reason}, {FORGEABLE}\n"


def test_a_dry_run_signs_nothing_and_needs_no_secret() -> None:
    result = runner.invoke(app, ["run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dispatch: skipped (dry run)" in result.output


def test_a_loopback_public_url_is_a_warning_when_real_mail_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_secret(monkeypatch, "a-secret-of-our-own")
    quiet = runner.invoke(app, ["dispatch"])  # email to the outbox folder: no warning
    assert quiet.exit_code == 0 and quiet.stderr == ""
    monkeypatch.setenv("RAPPORT_SMTP_HOST", "smtp.example.com")  # nothing is due: no connection
    get_settings.cache_clear()
    warned = runner.invoke(app, ["dispatch"])
    assert warned.exit_code == 0, warned.output
    assert warned.stderr.startswith(
        "rapport: warning: RAPPORT_PUBLIC_URL is http://127.0.0.1:8000, on this machine:"
    )
