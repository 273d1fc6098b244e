"""`rapport customers history`: the same entries as the service, as a table in local
time and as JSON, with `--since` read like `--as-of`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from rapport.cli.app import app
from tests.rapport.services.test_history import a_complaint_handled_late


@pytest.fixture
def runner(cli_engine: Engine) -> CliRunner:
    a_complaint_handled_late(cli_engine)
    return CliRunner(env={"COLUMNS": "250"})


def test_history_as_a_table_and_as_json(runner: CliRunner) -> None:
    table = runner.invoke(app, ["customers", "history", "c1"])
    assert table.exit_code == 0, table.output
    assert "13 entries (Asia/Shanghai)" in table.output
    assert "2026-11-27 23:00" in table.output  # the complaint, in local time
    assert "sent on email (attempt 2)" in table.output
    assert "Wang" not in table.output and "call me" not in table.output

    since = runner.invoke(app, ["customers", "history", "c1", "--since", "2026-11-30", "--json"])
    entries = json.loads(since.output)
    assert [e["kind"] for e in entries] == ["event", "firing", "task", "task", "task"]
    assert entries[-1]["details"]["note"] == "Called W***, w***@e***.cn: sorted"

    words = runner.invoke(app, ["customers", "history", "c1", "--text"])
    assert "call me on" in words.output and "Wang Fang" not in words.output


def test_unknown_customer_and_bad_since_fail_in_one_line(runner: CliRunner) -> None:
    missing = runner.invoke(app, ["customers", "history", "nobody"])
    assert missing.exit_code == 1 and "no customer with id 'nobody'" in missing.output
    bad = runner.invoke(app, ["customers", "history", "c1", "--since", "soon"])
    assert bad.exit_code == 1 and "--since" in bad.output
