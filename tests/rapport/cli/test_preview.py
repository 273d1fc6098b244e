"""`rapport preview`: a template rendered for one customer, or a failure naming what to pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.services.settings import get_settings
from storage.db import make_engine
from tests.factories import NOW, add_customer, add_events
from tests.paths import ROOT

runner = CliRunner()
AS_OF = ["--as-of", NOW.isoformat()]


@pytest.fixture(autouse=True)
def customer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'preview.db'}"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(ROOT / "templates" / "messages"))
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(url)
    add_customer(engine, "C1", name="Ana Lima", locale="en")
    add_events(engine, "C1", {"type": "purchase", "occurred_at": NOW, "amount": 900.0})
    engine.dispose()
    yield "C1"
    get_settings.cache_clear()


def test_an_event_template_without_event_names_the_missing_option() -> None:
    result = runner.invoke(app, ["preview", "cross_sell", "--customer", "C1", *AS_OF])
    assert result.exit_code == 1
    assert "uses the triggering event (event.product)" in result.output, result.output
    assert """give it with --event '{"product": "..."}'""" in result.output
    assert "'event' is undefined" not in result.output


def test_an_event_template_with_its_event_renders() -> None:
    event = '{"product": "grinder"}'
    result = runner.invoke(
        app, ["preview", "cross_sell", "--customer", "C1", "--event", event, *AS_OF]
    )
    assert result.exit_code == 0, result.output
    assert "Thanks for buying the grinder" in result.output


def test_a_template_without_event_needs_no_event_option() -> None:
    result = runner.invoke(app, ["preview", "birthday_greeting", "--customer", "C1", *AS_OF])
    assert result.exit_code == 0, result.output
    assert "Ana Lima" in result.output


def test_a_feedback_template_shows_the_reply_by_deadline() -> None:
    event = '{"type": "feedback", "level": "general", "category": "inquiry"}'
    result = runner.invoke(
        app, ["preview", "feedback_received", "--customer", "C1", "--event", event, *AS_OF]
    )
    assert result.exit_code == 0, result.output
    assert "'reply_by' is undefined" not in result.output
