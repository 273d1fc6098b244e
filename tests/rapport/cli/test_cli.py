"""The `rapport` command: exit codes, one-line failures, `--help` everywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from engine.facts import FACTS
from rapport.cli.app import app
from rapport.services.settings import get_settings
from tests.paths import ROOT

runner = CliRunner()


@pytest.fixture(autouse=True)
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_commands_before_db_upgrade_fail_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id\nC1\n")
    result = runner.invoke(app, ["import", "customers", str(path)])
    assert result.exit_code == 1
    assert "run `rapport db upgrade`" in result.output


def test_import_then_show(tmp_path: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0  # idempotent
    customers = tmp_path / "c.csv"
    customers.write_text("id,name,timezone\nC1,Ana Lima,Europe/Lisbon\n")
    events = tmp_path / "e.jsonl"
    events.write_text(
        '{"id": "e1", "customer_id": "C1", "type": "purchase", '
        '"occurred_at": "2026-05-01T10:00:00+01:00", "amount": 15000}\n'
        '{"id": "e2", "customer_id": "C1", "type": "purchase"}\n'
    )
    ok = runner.invoke(app, ["import", "customers", str(customers)])
    assert ok.exit_code == 0, ok.output
    assert "1 inserted" in ok.output
    partial = runner.invoke(app, ["import", "events", str(events)])
    assert partial.exit_code == 1
    assert f"{events}:2: occurred_at: Field required" in partial.output
    assert "1 inserted" in partial.output and "1 rejected" in partial.output
    shown = runner.invoke(app, ["customers", "show", "C1", "--as-of", "2026-06-01T00:00:00Z"])
    assert shown.exit_code == 0, shown.output
    assert "spend_12m" in shown.output and "15000.0" in shown.output and "mid" in shown.output
    before = runner.invoke(app, ["customers", "show", "C1", "--as-of", "2026-04-01"])
    assert "prospect" in before.output


def test_read_commands_speak_json(tmp_path: Path) -> None:
    """`--json` on import, customers show, explain and report: one JSON document on stdout."""
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    customers = tmp_path / "c.csv"
    customers.write_text("id,name,timezone\nC1,Ana Lima,Europe/Lisbon\n")
    events = tmp_path / "e.jsonl"
    events.write_text(
        '{"id": "e1", "customer_id": "C1", "type": "purchase", '
        '"occurred_at": "2026-05-01T10:00:00+01:00", "amount": 15000}\n'
    )
    imported = json.loads(
        runner.invoke(app, ["import", "customers", str(customers), "--json"]).stdout
    )
    assert imported == {
        "kind": "customers",
        "file": str(customers),
        "read": 1,
        "inserted": 1,
        "updated": 0,
        "duplicates": 0,
        "rejected": 0,
    }
    runner.invoke(app, ["import", "events", str(events)])
    again = runner.invoke(app, ["import", "events", str(events), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["duplicates"] == 1
    as_of = ["--as-of", "2026-06-01T00:00:00Z"]

    shown = json.loads(runner.invoke(app, ["customers", "show", "C1", *as_of, "--json"]).stdout)
    assert shown["as_of"] == "2026-06-01T00:00:00Z"
    assert shown["facts"]["spend_12m"] == 15000.0 and shown["facts"]["tier"] == "mid"
    explained = json.loads(runner.invoke(app, ["explain", "C1", *as_of, "--json"]).stdout)
    assert explained["customer_id"] == "C1" and len(explained["revision"]) == 64
    states = {rule["rule_id"]: rule["state"] for rule in explained["rules"]}
    assert states["feedback_major_to_management"] == "waits for an event"
    period = ["--from", "2026-05-01", "--to", "2026-05-28"]
    report = json.loads(runner.invoke(app, ["report", *period, "--json"]).stdout)
    assert (report["from"], report["to"]) == ("2026-05-01", "2026-05-28")
    assert report["overall"]["customers"] == 1 and report["overall"]["revenue"] == 15000.0
    assert set(report["overall"]["retention"]) == {"part", "whole", "value"}


def test_unknown_customer_and_bad_as_of_are_one_line_failures() -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    missing = runner.invoke(app, ["customers", "show", "nobody"])
    assert missing.exit_code == 1 and "no customer with id 'nobody'" in missing.output
    bad = runner.invoke(app, ["customers", "show", "C1", "--as-of", "yesterday"])
    assert bad.exit_code == 1 and "is not an ISO 8601 time" in bad.output


def test_bad_configuration_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_TIMEZONE", "Mars/Olympus")
    get_settings.cache_clear()
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1 and "configuration" in result.output


def _command_paths(command, prefix=()):  # type: ignore[no-untyped-def]
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*prefix, name))


def test_help_everywhere() -> None:
    paths = list(_command_paths(get_command(app)))
    assert ("import", "events") in paths and ("customers", "show") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage" in result.output


def test_customers_show_uses_the_tier_thresholds_of_the_rules_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`customers show` sees the customer as evaluate and explain do: with
    `high_tier_spend: 80000` in rules/tiers.yaml, 90,000 spent is high, not mid."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    tiers = rules / "tiers.yaml"
    tiers.write_text(
        tiers.read_text(encoding="utf-8").replace(
            "high_tier_spend: 100000", "high_tier_spend: 80000"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(rules))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(ROOT / "templates" / "messages"))
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    customers = tmp_path / "c.csv"
    customers.write_text("id,name\nC1,Ana Lima\n")
    events = tmp_path / "e.jsonl"
    events.write_text(
        '{"id": "e1", "customer_id": "C1", "type": "purchase", '
        '"occurred_at": "2026-05-01T10:00:00+08:00", "amount": 90000}\n'
    )
    assert runner.invoke(app, ["import", "customers", str(customers)]).exit_code == 0
    assert runner.invoke(app, ["import", "events", str(events)]).exit_code == 0
    as_of = ["--as-of", "2026-06-01"]
    shown = runner.invoke(app, ["customers", "show", "C1", *as_of])
    assert shown.exit_code == 0, shown.output
    cells = [[cell.strip() for cell in line.split("│")] for line in shown.output.splitlines()]
    (tier_row,) = [row for row in cells if "tier" in row]
    assert tier_row[tier_row.index("tier") + 1] == "high"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("rapport 0.") and "prefect 3." in result.output


def test_help_has_no_type_on_flags_and_whole_sentences() -> None:
    """Click's help: a flag shows no `<bool>`, and a command's summary is rewrapped, not
    broken where its docstring had a line break."""
    top = runner.invoke(app, ["--help"], terminal_width=200).output
    assert "<bool>" not in top
    (report_line,) = [line for line in top.splitlines() if line.strip().startswith("report ")]
    assert "NPS, satisfaction" in report_line
    listing = runner.invoke(app, ["tasks", "list", "--help"]).output
    assert "<bool>" not in listing and "--no-overdue" not in listing


def test_piped_tables_keep_whole_names(tmp_path: Path, database_url: str) -> None:
    """Piped into a file, a table is as wide as its cells: rich assumed 80 columns and
    cut fact names (`days_since_personal_cont…`)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS" and not k.startswith("RAPPORT_")}
    env["RAPPORT_DATABASE_URL"] = database_url
    rapport = str(Path(sys.executable).with_name("rapport"))
    customers = tmp_path / "c.csv"
    customers.write_text("id,name,timezone\nC1,Ana Lima,Europe/Lisbon\n")
    for command in (["db", "upgrade"], ["import", "customers", str(customers)]):
        subprocess.run([rapport, *command], env=env, check=True, capture_output=True)
    shown = subprocess.run(
        [rapport, "customers", "show", "C1"], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert "…" not in shown
    for fact in FACTS:
        assert f"│ {fact.name} " in shown
