"""`rapport api`'s access log: every request is logged, an unsubscribe token never."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from actions.unsubscribe import unsubscribe_token, unsubscribe_url
from rapport.cli.app import app as cli
from rapport.services.settings import get_settings
from storage.db import make_engine
from tests.factories import add_customer
from tests.rapport.api.test_api import serving

SECRET = "access-log-secret"


def served_by_the_command(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """The application and uvicorn options `rapport api` starts uvicorn with."""
    started: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append((app, options)))
    result = CliRunner().invoke(cli, ["api"])
    assert result.exit_code == 0, result.output
    (served,) = started
    return served


def test_the_access_log_never_shows_an_unsubscribe_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_SECRET_KEY", SECRET)
    get_settings.cache_clear()
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    add_customer(make_engine(url), "c1", consent_email=True)
    app, options = served_by_the_command(monkeypatch)
    get_settings.cache_clear()

    options = {k: v for k, v in options.items() if k not in ("host", "port")}
    with serving(app, **options) as base:  # uvicorn configures its logging as the command says
        link = unsubscribe_url(base, SECRET, "c1", "email")
        assert httpx.get(link).status_code == 200
        one_click = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200
    logged = capsys.readouterr()
    lines = [line for line in (logged.out + logged.err).splitlines() if "/unsubscribe" in line]
    assert len(lines) == 2, logged  # the GET and the POST were both logged
    token = unsubscribe_token(SECRET, "c1", "email")
    assert not [line for line in lines if token in line]
