"""`rapport backtest`: the terminal summary, `--json`, `--compare`, and one-line failures;
and worker processes give what one process gives."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from engine.loader import load_rules
from rapport.backtest.runner import run_backtest
from rapport.backtest.timeline import Window
from rapport.cli.app import app
from rapport.services.settings import get_settings
from tests.paths import ROOT
from tests.sample_database import sample_database

ROOT = ROOT
END = datetime(2026, 6, 30, tzinfo=UTC)
runner = CliRunner()
PERIOD = ["--from", "2026-01-05", "--to", "2026-02-15", "--workers", "1", "--warmup", "7d"]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = sample_database(tmp_path_factory.mktemp("backtest-cli"), 120, END)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def settings(database: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", database.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(ROOT / "templates" / "messages"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_summary_and_json_with_the_churn_figures(tmp_path: Path) -> None:
    target = tmp_path / "backtest.json"
    result = runner.invoke(app, ["backtest", *PERIOD, "--json", str(target)])
    assert result.exit_code == 0, result.output
    for title in (
        "Firings per rule",
        "Messages per customer per week",
        "Staff tasks per owner",
        "Feedback items",
        "Churn signals",
    ):
        assert title in result.output
    document = json.loads(target.read_text())
    assert document["window"]["steps"] == 42 and len(document["weeks"]) == 6
    churn_rules = {
        rule.id for rule in load_rules(ROOT / "rules").ruleset.rules if "churn_signal" in rule.tags
    }  # type: ignore[union-attr]
    assert set(document["churn"]) == churn_rules
    for figures in document["churn"].values():
        assert {"flagged", "precision", "recall", "unflagged_share"} <= set(figures)
    assert sum(f["total"] for f in document["firings"].values()) > 0
    week = document["messages"]["per_customer_week"][0]
    assert week["customers"] == sum(week["histogram"].values())


def test_compare_shows_the_difference_per_rule_and_group(tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(ROOT / "rules", candidate)
    policy = candidate / "policy.yaml"
    policy.write_text(policy.read_text().replace("marketing: 2\n", "marketing: 1\n"))
    result = runner.invoke(app, ["backtest", *PERIOD, "--compare", str(candidate), "--json", "-"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"base", "candidate", "difference"}
    sent = document["difference"]["totals"]["messages_sent"]
    assert sent["change"] < 0  # a tighter cap sends less
    assert {"tier", "lifecycle_stage", "segment"} == set(document["difference"]["groups"])
    shown = runner.invoke(app, ["backtest", *PERIOD, "--compare", str(candidate)])
    assert (
        "Per customer group" in shown.output
        and "→" in shown.output
        and "Churn signals, A → B" in shown.output
    )


def test_bad_options_and_invalid_rules_fail_in_one_line(tmp_path: Path) -> None:
    backwards = runner.invoke(app, ["backtest", "--from", "2026-02-01", "--to", "2026-01-01"])
    assert backwards.exit_code == 1 and "is before --from" in backwards.output
    bad_step = runner.invoke(app, ["backtest", *PERIOD, "--step", "daily"])
    assert bad_step.exit_code == 1 and "not a duration" in bad_step.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "rules.yaml").write_text("rules:\n  - id: x\n")
    invalid = runner.invoke(app, ["backtest", *PERIOD, "--rules", str(broken)])
    assert invalid.exit_code == 1 and "nothing was replayed" in invalid.output


def test_worker_processes_give_what_one_process_gives(database: Engine) -> None:
    ruleset = load_rules(ROOT / "rules").ruleset
    assert ruleset is not None
    window = Window(
        date(2026, 2, 1), date(2026, 3, 1), time(8), "Asia/Shanghai", warmup=timedelta(0)
    )
    results = [
        run_backtest(
            database, [(ROOT / "rules", ruleset)], window, workers=workers, chunk=40, journal=True
        )
        for workers in (1, 2)
    ]
    one, two = (r.tallies[0] for r in results)
    assert one.journal is not None and two.journal is not None
    assert one.journal.sorted_firings() == two.journal.sorted_firings()
    assert (one.firings, one.messages, one.per_customer, one.churn) == (
        two.firings,
        two.messages,
        two.per_customer,
        two.churn,
    )


def test_sweep_prints_a_row_per_value_and_writes_json_and_a_page_with_charts(
    tmp_path: Path,
) -> None:
    page, target = tmp_path / "sweep.html", tmp_path / "sweep.json"
    spec = "churn_purchase_overdue.purchase_overdue_ratio=1.5..3:0.5"
    options = ["--sweep", spec, "--json", str(target), "--html", str(page)]
    result = runner.invoke(app, ["backtest", *PERIOD, *options])
    assert result.exit_code == 0, result.output
    assert "purchase_overdue_ratio swept" in result.output and "fair lift" in result.output
    assert "3 *" in result.output  # the value in the rules now
    document = json.loads(target.read_text())
    assert [row["value"] for row in document["results"]] == [1.5, 2.0, 2.5, 3.0]
    assert document["sweep"]["replayed"] == "the rule alone"
    flags = [row["flagged"] for row in document["results"]]
    assert flags[0] > flags[-1]  # a much higher threshold flags fewer
    html = page.read_text()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert "Precision and recall by purchase_overdue_ratio" in html
    assert "Work per week by purchase_overdue_ratio" in html
    assert 'data-series="precision"' in html and 'data-series="tasks per week"' in html


def test_a_bad_sweep_fails_in_one_line_before_replaying() -> None:
    unknown = runner.invoke(
        app, ["backtest", *PERIOD, "--sweep", "churn_purchase_overdue.days_since_last_purchase=9"]
    )
    assert unknown.exit_code == 1
    assert "has no condition on 'days_since_last_purchase'" in unknown.output
    assert "rules/churn.yaml:" in unknown.output  # where each condition is written
    alone = runner.invoke(app, ["backtest", *PERIOD, "--html", "page.html"])
    assert alone.exit_code == 1 and "add --sweep" in alone.output
    both = runner.invoke(
        app,
        [
            "backtest",
            *PERIOD,
            "--sweep",
            "churn_frequency_drop.purchases_recent=0.4",
            "--compare",
            "rules",
        ],
    )
    assert both.exit_code == 1 and "leave out --compare" in both.output
