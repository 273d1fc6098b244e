"""`--sweep`: the threshold it finds, the specs it refuses, and per-value figures equal to
separate backtests of the rules file edited by hand to each value."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from engine.conditions import comparisons
from engine.loader import load_rules
from engine.model import RuleSet
from engine.trace import describe
from rapport.backtest.eligibility import eligibility
from rapport.backtest.results import Run, summarize
from rapport.backtest.runner import run_backtest
from rapport.backtest.sweep import Sweep, SweepError
from rapport.backtest.sweep_results import CHURN_FIGURES, sweep_document
from rapport.backtest.timeline import Window
from tests.paths import ROOT
from tests.sample_database import sample_database

RULES = ROOT / "rules"
END = datetime(2026, 6, 30, tzinfo=UTC)
WINDOW = Window(
    date(2026, 1, 5),
    date(2026, 2, 15),
    time(8),
    "Asia/Shanghai",
    warmup=timedelta(days=7),
    horizon=timedelta(days=60),
)


def ruleset() -> RuleSet:
    found = load_rules(RULES).ruleset
    assert found is not None
    return found


def test_the_threshold_and_eligible_population_of_each_churn_signal() -> None:
    rules = ruleset()

    def eligible(rule_id: str) -> list[str]:
        condition = eligibility(rules.rule(rule_id))
        assert condition is not None
        return [describe(c) for c in comparisons(condition)]

    assert eligible("churn_purchase_overdue") == [
        "lifecycle_stage ≠ 'dormant'",
        "purchase_overdue_ratio has a value",
    ]
    assert eligible("churn_frequency_drop") == [
        "lifecycle_stage ≠ 'dormant'",
        "purchases_previous ≥ 2",
    ]
    assert eligible("churn_high_value_activity_drop") == [
        "tier = 'high'",
        "lifecycle_stage ≠ 'dormant'",
    ]
    assert eligible("churn_complaint") == []  # an event rule: every current customer
    target = Sweep.parse("churn_frequency_drop.purchases_recent=0.3,0.5").target(rules)
    assert target.condition == "purchases_recent < 0.34 × purchases_previous"
    assert target.current == 0.34 and target.isolated
    assert target.eligible == "lifecycle_stage ≠ 'dormant', purchases_previous ≥ 2"
    login = Sweep.parse("churn_login_drop.logins_prev_30d=3,4").target(rules)
    assert not login.isolated  # it sends a message: replayed with every rule


def test_values_as_a_list_or_a_range() -> None:
    assert Sweep.parse("r.f=3, 1.5,2,2").values == (1.5, 2.0, 3.0)
    assert Sweep.parse("r.f=1.5..3:0.5").values == (1.5, 2.0, 2.5, 3.0)
    assert Sweep.parse("r.f=0.1..0.3:0.1").values == (0.1, 0.2, 0.3)
    assert Sweep.parse("r.f=1..3").values == (1.0, 2.0, 3.0)
    spelled = Sweep.parse("churn_nps_detractor.event.score.lte=5,6")
    assert (spelled.fact, spelled.op) == ("event.score", "lte")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("churn_purchase_overdue=2,3", "write RULE.FACT=V1,V2"),
        ("churn_purchase_overdue.purchase_overdue_ratio=two", "the values are numbers"),
        ("churn_purchase_overdue.purchase_overdue_ratio=3..1", "the values are numbers"),
        ("churn_purchase_overdue.purchase_overdue_ratio=0..100:1", "at most 25"),
        ("churn_purchase_overdue.purchase_overdue_ratio=1..2:0.000001", "values; at most 25"),
        ("churn_purchase_overdu.purchase_overdue_ratio=2", "did you mean 'churn_purchase_overdue'"),
        (
            "churn_purchase_overdue.purchases_recent=2",
            "churn_purchase_overdue has no condition on 'purchases_recent'. Its conditions: "
            "lifecycle_stage ≠ 'dormant' (",
        ),
        (
            "churn_purchase_overdue.lifecycle_stage=2",
            "is not a threshold (lt, lte, gt or gte)",
        ),
        (
            "churn_purchase_overdue.purchases_recent=2",
            "thresholds it can sweep: churn_purchase_overdue.purchase_overdue_ratio",
        ),
        ("churn_frequency_drop.purchases_previous=2.5", "purchases_previous is a whole number"),
    ],
)
def test_a_bad_spec_says_what_to_write(spec: str, says: str) -> None:
    with pytest.raises(SweepError) as raised:
        Sweep.parse(spec).target(ruleset())
    assert says in str(raised.value)


def test_a_fact_with_two_thresholds_asks_for_the_operator(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        """
rules:
  - id: middle_spenders
    description: Spend between two bounds.
    trigger: schedule
    when:
      - spend_12m: {gte: 1000, lt: 5000}
    actions:
      - tag: {tag: middle}
    reentry: once
""",
        encoding="utf-8",
    )
    rules = load_rules(tmp_path).ruleset
    assert rules is not None
    with pytest.raises(SweepError) as raised:
        Sweep.parse("middle_spenders.spend_12m=2000").target(rules)
    assert "name one, middle_spenders.spend_12m.gte, middle_spenders.spend_12m.lt" in str(
        raised.value
    )
    chosen = Sweep.parse("middle_spenders.spend_12m.lt=4000,6000").target(rules)
    assert describe(chosen.comparison) == "spend_12m < 5000.0"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = sample_database(tmp_path_factory.mktemp("sweep"), 150, END)
    yield engine
    engine.dispose()


def edited(tmp_path: Path, rule_id: str, written: str, value: str) -> Path:
    """A copy of rules/ with `written` (a condition, `%s` its number) changed to `value`
    in `rule_id`'s block of churn.yaml, as a person would edit it."""
    copy = tmp_path / f"rules-{value}"
    shutil.copytree(RULES, copy)
    churn = copy / "churn.yaml"
    text = churn.read_text(encoding="utf-8")
    start = text.index(f"- id: {rule_id}\n")
    current = text.index("{", text.index(written.split("%s")[0].split("{")[0], start))
    end = text.index("\n", current)
    churn.write_text(text[:current] + written.split(": ", 1)[1] % value + text[end:])
    return copy


def single(engine: Engine, directory: Path) -> dict[str, Any]:
    rules = load_rules(directory).ruleset
    assert rules is not None
    replayed = run_backtest(engine, [(directory, rules)], WINDOW)
    return summarize(Run(directory, rules, replayed.tallies[0]), WINDOW, replayed.history_end)


@pytest.mark.parametrize(
    ("spec", "written", "values"),
    [  # a rule replayed alone (it only tags), and one that sends a message
        (
            "churn_purchase_overdue.purchase_overdue_ratio",
            "purchase_overdue_ratio: {gte: %s}",
            ("1.5", "3"),
        ),
        (
            "churn_login_drop.logins_30d",
            "logins_30d: {lt: {fact: logins_prev_30d, times: %s}}",
            ("0.25", "0.75"),
        ),
    ],
)
def test_each_value_gives_what_the_rules_edited_by_hand_give(
    sample: Engine, tmp_path: Path, spec: str, written: str, values: tuple[str, ...]
) -> None:
    rules = ruleset()
    sweep = Sweep.parse(f"{spec}={','.join(values)}")
    target = sweep.target(rules)
    replayed = run_backtest(sample, [(RULES, rules)], WINDOW, sweep=sweep, workers=2, chunk=40)
    summaries = [
        summarize(Run(RULES, variant.ruleset, tally), WINDOW, replayed.history_end)
        for variant, tally in zip(sweep.variants(rules), replayed.tallies, strict=True)
    ]
    document = sweep_document(sweep, target, RULES, rules.revision, summaries)
    rule_id, weeks = target.rule.id, document["weeks"]
    for value, row in zip(values, document["results"], strict=True):
        by_hand = single(sample, edited(tmp_path, rule_id, written, value))
        figures = by_hand["churn"][rule_id]
        assert {name: row[name] for name in CHURN_FIGURES} == {
            name: figures[name] for name in CHURN_FIGURES
        }
        assert row["firings"] == by_hand["firings"].get(rule_id, {}).get("total", 0)
        sent = by_hand["messages"]["per_rule"].get(rule_id, {}).get("sent", 0)
        assert row["messages_per_week"] == sent / weeks
        if not target.isolated:
            assert row["all_rules_messages_per_week"] == by_hand["messages"]["sent"] / weeks
    flags = [row["flagged"] for row in document["results"]]
    assert flags[0] != flags[1] and min(flags) > 0  # the threshold made a difference
