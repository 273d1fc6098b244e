"""`rapport demo` end to end through the Prefect flows, twice on the same database.

The flows record to Prefect's test harness (a temporary API), not to the user's
Prefect database. A small customer base keeps the run short; what matters is that
every flow runs, email reaches the loopback sink, a second run adds nothing, and no
customer's name, email or phone number is printed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.services.settings import get_settings
from storage.db import make_engine
from storage.tables import FIRINGS, MESSAGES

FLOWS = (
    "ingest-events",
    "evaluate-rules",
    "dispatch-outbox (now)",
    "watch-sla (tomorrow morning)",
    "dispatch-outbox (tomorrow morning)",
    "daily-report (today so far)",
)


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("RAPPORT_REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def emails_sent(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).where(
                MESSAGES.c.channel == "email", MESSAGES.c.status == "sent"
            )
            return int(connection.scalar(query) or 0)
    finally:
        engine.dispose()


def firings(url: str) -> dict[int, tuple[str, str, bool]]:
    """Every stored firing: its rule, customer and whether a hold stopped all it planned."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(FIRINGS.c.id, FIRINGS.c.rule_id, FIRINGS.c.customer_id, FIRINGS.c.suppressed)
            )
            return {row.id: (row.rule_id, row.customer_id, row.suppressed) for row in rows}
    finally:
        engine.dispose()


def personal_data(customers: Path) -> set[str]:
    with customers.open(encoding="utf-8") as rows:
        return {
            row[column]
            for row in csv.DictReader(rows)
            for column in ("name", "email", "phone")
            if row[column]
        }


@pytest.mark.usefixtures("prefect_harness")
def test_demo_runs_the_flows_and_a_second_run_adds_nothing(
    tmp_path: Path, database_url: str
) -> None:
    runner = CliRunner()
    command = ["demo", "--customers", "40", "--directory", str(tmp_path / "demo")]

    first = runner.invoke(app, command)
    assert first.exit_code == 0, first.output
    for flow in FLOWS:
        assert f"{flow}:" in first.output
    received = re.search(r"the SMTP sink received (\d+) emails", first.output)
    assert received is not None and int(received.group(1)) == emails_sent(database_url)
    assert "Remediation ledger" in first.output and "rapport serve --embedded" in first.output
    # The README's secret is refused outside the demo: the demo signs with its own key
    # (its emails were sent, above) and says how to make one for what comes next.
    assert "export RAPPORT_SECRET_KEY=" in first.output
    private = personal_data(tmp_path / "demo" / "customers.csv")
    assert private and not [value for value in private if value in first.output]
    assert len(re.findall(r"^  \d{4}-\d{2}-\d{2}: firings \d+", first.output, re.M)) == 6
    (page,) = (tmp_path / "reports").glob("relationship-report-*.html")
    html = page.read_text(encoding="utf-8")
    assert "Messages sent per step, per rule" in html
    assert not [value for value in private if value in html]

    held = {
        (rule, customer)
        for rule, customer, suppressed in firings(database_url).values()
        if suppressed
    }
    before = set(firings(database_url))
    second = runner.invoke(app, command)
    assert second.exit_code == 0, second.output
    assert "inserted: 0;" in second.output
    assert "the SMTP sink received 0 emails" in second.output
    # The one thing a second run may add: a firing the frequency cap (or an open
    # complaint) stopped does not count for re-entry, so its rule is tried again.
    again = [(r, c) for id_, (r, c, _) in firings(database_url).items() if id_ not in before]
    assert set(again) <= held
    today = re.search(r"evaluate-rules: .*; firings: (\d+);", second.output)
    assert today is not None and int(today.group(1)) <= len(again)
