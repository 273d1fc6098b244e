"""`rapport backtest --top K --at DAY`: the terminal tables, `--json`, and one-line
failures for values it cannot use (the history is `test_ranking`'s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from rapport.cli.app import app
from tests.rapport.backtest.test_backtest import rules
from tests.rapport.backtest.test_ranking import OVERDUE_SIGNAL, build_history

runner = CliRunner()


@pytest.fixture
def signal(cli_engine: Engine, tmp_path: Path) -> list[str]:
    """The hand-made history in the command's database; its rules as options."""
    build_history(cli_engine)
    directory, _ = rules(tmp_path, OVERDUE_SIGNAL)
    return ["--rules", str(directory), "--horizon", "30d", "--workers", "1"]


def test_the_ranking_in_the_terminal_and_as_json(signal: list[str], tmp_path: Path) -> None:
    target = tmp_path / "ranking.json"
    shown = runner.invoke(
        app, ["backtest", "--top", "2", "--at", "2026-03-01", *signal, "--json", str(target)]
    )
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "2 repeat buyers" not in shown.output and "3 repeat buyers ranked" in shown.output
    row_a = next(line for line in lines if "│ a " in line)
    assert "2025-12-11" in row_a and "8.00" in row_a and "left" in row_a
    assert any(
        "│ b " in line and "bought again 2026-03-11, 10 days later" in line for line in lines
    )
    top_row = next(line for line in lines if "top 2 most overdue" in line)
    assert top_row.split("│")[-2].strip() == "50.0%"
    base_row = next(line for line in lines if "base rate" in line)
    assert base_row.split("│")[-2].strip() == "75.0%"
    assert any(line.startswith("│ overdue_signal") for line in lines)
    document = json.loads(target.read_text())
    assert [c["customer_id"] for c in document["customers"]] == ["a", "b"]
    assert document["precision_at_k"]["share"] == 0.5

    piped = runner.invoke(
        app, ["backtest", "--top", "2", "--at", "2026-03-01 08:00", *signal, "--json", "-"]
    )
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout) == document


def test_a_day_too_recent_says_until_when_outcomes_are_known(signal: list[str]) -> None:
    shown = runner.invoke(app, ["backtest", "--top", "3", "--at", "2026-04-20", *signal])
    assert shown.exit_code == 0, shown.output
    assert "pending" in shown.output and "known for days up to 2026-04-01" in shown.output


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--top", "0", "--at", "2026-03-01"], "--top '0' is not a number of customers"),
        (["--top", "many", "--at", "2026-03-01"], "--top 'many' is not a number of customers"),
        (["--top", "5"], "--top needs --at DAY"),
        (["--top", "5", "--at", "09:00"], "--top needs --at DAY"),
        (["--top", "5", "--at", "2026-02-30"], "--at '2026-02-30' is not a day"),
        (["--top", "5", "--at", "2026-03-01 25:00"], "is not a day"),
        (["--top", "5", "--at", "2026-03-01", "--from", "2026-01-01"], "leave out --from"),
        (["--top", "5", "--at", "2026-03-01", "--horizon", "soon"], "--horizon: 'soon'"),
        ([], "--from and --to are needed"),
    ],
)
def test_values_it_cannot_use_fail_in_one_line(
    signal: list[str], options: list[str], says: str
) -> None:
    failed = runner.invoke(app, ["backtest", *signal, *options])
    assert failed.exit_code == 1
    assert len(failed.output.strip().splitlines()) == 1 and says in failed.output
