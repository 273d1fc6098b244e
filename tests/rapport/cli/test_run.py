"""`rapport run`: one cycle as the schedules run it — reactions, the SLA watch, the
scheduled rules, dispatch — and its dry run, which writes and sends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.services.settings import get_settings
from storage.db import make_engine
from storage.tables import FIRINGS, MESSAGES, TASKS
from tests.factories import add_customer, add_events
from tests.paths import ROOT

AS_OF = datetime(2026, 6, 30, 4, 0, tzinfo=UTC)  # noon in Shanghai
runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'run.db'}")
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(ROOT / "templates" / "messages"))
    monkeypatch.setenv("RAPPORT_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("RAPPORT_SMTP_HOST", raising=False)
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "run-test-secret")
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield tmp_path
    get_settings.cache_clear()


def counts() -> tuple[int, int, int]:
    engine = make_engine(get_settings().database_url)
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.scalar(select(func.count()).select_from(table))
            for table in (FIRINGS, TASKS, MESSAGES)
        )


def test_run_reacts_watches_evaluates_and_dispatches(world: Path) -> None:
    engine = make_engine(get_settings().database_url)
    add_customer(engine, "c1", email="c1@example.com", consent_email=True, locale="en")
    add_events(
        engine,
        "c1",
        {"type": "purchase", "occurred_at": AS_OF - timedelta(days=200), "amount": 500.0},
        {
            "id": "fb1",
            "type": "feedback",
            "occurred_at": AS_OF - timedelta(hours=2),
            "level": "major",
            "category": "complaint",
        },
    )
    as_of = ["--as-of", AS_OF.isoformat()]
    dry = runner.invoke(app, ["run", *as_of, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "1. event reactions: " in dry.output and "feedback_major_to_management ×1" in dry.output
    assert "dispatch: skipped (dry run)" in dry.output
    evaluated = runner.invoke(app, ["evaluate", *as_of, "--dry-run"])
    assert "event reactions pending: " in evaluated.output
    assert "feedback_major_to_management ×1" in evaluated.output
    assert counts() == (0, 0, 0)  # a dry run writes nothing

    done = runner.invoke(app, ["run", *as_of])
    assert done.exit_code == 0, done.output
    assert "feedback_major_to_management ×1" in done.output
    assert "4. dispatch: " in done.output and "sent" in done.output
    firings, tasks, messages = counts()
    assert firings > 0 and tasks >= 1 and messages >= 1
    again = runner.invoke(app, ["run", *as_of])  # keys and reactions: nothing twice
    assert again.exit_code == 0 and counts() == (firings, tasks, messages)
    assert "1. event reactions: 0 fired" in again.output
