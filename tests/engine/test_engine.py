"""The compiled engine agrees with the explanation, is deterministic and isolated."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate import Evaluator
from engine.facts import FACTS, FactType
from engine.loader import load_rules
from engine.model import RuleSet
from engine.trace import explain_rule
from rapport.demo.sample import write_sample
from storage.db import make_engine
from storage.facts import iter_customer_facts
from storage.imports import import_customers, import_events
from storage.migrate import upgrade_database
from tests.paths import ROOT, RULESETS

RULESETS = RULESETS
AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


def operators_ruleset() -> RuleSet:
    ruleset = load_rules(RULESETS / "operators").ruleset
    assert ruleset is not None
    return ruleset


def _fact_value(fact: Any) -> st.SearchStrategy[Any]:
    if fact.choices:
        base: st.SearchStrategy[Any] = st.sampled_from(fact.choices)
    elif fact.type is FactType.INTEGER:
        base = st.integers(0, 120)
    elif fact.type is FactType.NUMBER:
        base = st.floats(0, 200_000, allow_nan=False).map(lambda x: round(x, 2))
    elif fact.type is FactType.BOOLEAN:
        base = st.booleans()
    else:
        base = st.sampled_from(["en", "zh-CN", "2026-01-01"])
    return st.one_of(st.none(), base) if fact.nullable else base


SNAPSHOTS = st.fixed_dictionaries({fact.name: _fact_value(fact) for fact in FACTS}).map(
    lambda facts: {**facts, "customer_id": "C1"}
)
EVALUATOR = Evaluator(operators_ruleset())


@settings(max_examples=400, deadline=None)
@given(SNAPSHOTS)
def test_engine_and_explanation_agree_on_every_snapshot(facts: dict[str, Any]) -> None:
    fired = {firing.rule_id for firing in EVALUATOR.evaluate(facts, AS_OF)}
    explained = {
        rule.id
        for rule in EVALUATOR.ruleset.rules
        if rule.event is None and explain_rule(rule, facts)[0]
    }
    assert fired == explained


@settings(max_examples=150, deadline=None)
@given(
    SNAPSHOTS,
    st.sampled_from(["general", "complex", "major", None]),
    st.sampled_from(["complaint", "inquiry", None]),
    st.integers(0, 10),
)
def test_event_rules_agree_with_the_explanation(
    facts: dict[str, Any], level: str | None, category: str | None, score: int
) -> None:
    for event in (
        {"id": "e1", "type": "feedback", "level": level, "category": category},
        {"id": "e2", "type": "survey", "score": score},
    ):
        fired = {f.rule_id for f in EVALUATOR.evaluate_event(facts, event, AS_OF)}
        values = {**facts, **{f"event_{k}": v for k, v in event.items()}}
        explained = {
            rule.id
            for rule in EVALUATOR.ruleset.rules
            if rule.event == event["type"] and explain_rule(rule, values)[0]
        }
        assert fired == explained


def test_firings_carry_the_values_that_matched_and_are_deterministic() -> None:
    facts = {fact.name: None for fact in FACTS} | {
        "customer_id": "C9",
        "tier": "high",
        "segment": "consumer",
        "purchases_recent": 1,
        "purchases_previous": 4,
    }
    first = EVALUATOR.evaluate(facts, AS_OF)
    assert [f.rule_id for f in first] == ["eq_and_ne", "fact_comparisons", "no_conditions"]
    assert first[0].values == {"tier": "high", "segment": "consumer"}
    assert first[1].values["purchases_previous"] == 4
    assert all(f.revision == EVALUATOR.ruleset.revision and f.as_of == AS_OF for f in first)
    assert EVALUATOR.evaluate(facts, AS_OF) == first


def test_scheduled_rules_ignore_events_and_event_rules_ignore_snapshots() -> None:
    facts = {"customer_id": "C1", "tier": "high", "segment": "consumer"}
    event = {"id": "e7", "type": "feedback", "level": "major", "category": "complaint"}
    on_event = EVALUATOR.evaluate_event(facts, event, AS_OF)
    assert [f.rule_id for f in on_event] == ["event_fields"]
    assert on_event[0].event_id == "e7"
    assert on_event[0].values["event.level"] == "major"
    assert "event_fields" not in {f.rule_id for f in EVALUATOR.evaluate(facts, AS_OF)}


def test_revisions_are_isolated_in_one_process(tmp_path: Path) -> None:
    edited = tmp_path / "rules"
    shutil.copytree(RULESETS / "operators", edited)
    path = edited / "operators.yaml"
    path.write_text(path.read_text().replace("tier: high", "tier: mid"))
    changed = load_rules(edited).ruleset
    assert changed is not None and changed.revision != EVALUATOR.ruleset.revision
    other = Evaluator(changed)
    facts = {"customer_id": "C1", "tier": "high", "segment": "consumer"}
    assert "eq_and_ne" in {f.rule_id for f in EVALUATOR.evaluate(facts, AS_OF)}
    assert "eq_and_ne" not in {f.rule_id for f in other.evaluate(facts, AS_OF)}
    assert Evaluator(changed).name == other.name  # the same revision is registered once


def test_many_throwaway_sessions_do_not_exhaust_the_engine() -> None:
    # durable_rules allows 1,024 live sessions per ruleset: each must be freed.
    facts = {"customer_id": "C1", "tier": "base"}
    for _ in range(3_000):
        EVALUATOR.evaluate(facts, AS_OF)


def test_the_engine_host_runs_no_background_dispatch_threads() -> None:
    # durable_rules' dispatch threads would race the evaluator for queued matches.
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert timers == []


def test_default_rules_agree_with_the_explanation_over_a_customer_base(tmp_path: Path) -> None:
    ruleset = load_rules(ROOT / "rules").ruleset
    assert ruleset is not None
    files = write_sample(tmp_path / "sample", customers=1_500, end=AS_OF)
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    upgrade_database(engine)
    import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
    import_events(engine, files.events, imported_at=AS_OF)
    with engine.connect() as connection:
        snapshots = list(iter_customer_facts(connection, AS_OF, ruleset.parameters))
    evaluator = Evaluator(ruleset)
    scheduled = [rule for rule in ruleset.enabled if rule.event is None]
    fired_rules: set[str] = set()
    for _ in range(3):
        for facts in snapshots:
            fired = {firing.rule_id for firing in evaluator.evaluate(facts, AS_OF)}
            assert fired == {rule.id for rule in scheduled if explain_rule(rule, facts)[0]}
            fired_rules |= fired
    assert len(fired_rules) >= len(scheduled) // 2
