"""The control group: stable membership, held out of marketing rules only, configured in
the `measures:` section with errors a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from engine.loader import load_rules
from engine.measure_settings import ControlGroup
from rapport.services.explanation import explain_customer
from rapport.services.rules import rules_in_force
from rapport.services.scheduled import RunSummary, evaluate_customers
from storage.models import OutboxMessage, RuleFiring, StaffTask
from tests.factories import NOW, add_customer

RULES = """
rules:
  - id: marketing_offer
    description: A marketing message (so a marketing rule without the tag).
    trigger: schedule
    actions:
      - send_message: {template: loyalty_offer, purpose: marketing}
    reentry: {every: 30d}
  - id: promo_call
    description: Tagged marketing, though it only opens a task.
    trigger: schedule
    actions:
      - open_task: {kind: promo_call, owner_role: account_manager, due_in: 2d}
    reentry: {every: 30d}
    tags: [marketing]
  - id: service_reminder
    description: A service message; nobody is held out of it.
    trigger: schedule
    actions:
      - send_message: {template: base_service_reminder, purpose: service}
    reentry: {every: 30d}
measures:
  control_group: {percent: 30, salt: control-test}
"""
CUSTOMERS = [f"c{number:03d}" for number in range(60)]


def _rules(tmp_path: Path, text: str = RULES) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yaml").write_text(text, encoding="utf-8")
    return folder


def test_membership_is_stable_and_close_to_the_share() -> None:
    group = ControlGroup(percent=5, salt="rapport-control")
    ids = [f"C{number:06d}" for number in range(20_000)]
    held = [i for i in ids if group.holds_out(i)]
    assert 900 < len(held) < 1100  # 5 % of 20,000 is 1,000
    assert held == [i for i in ids if ControlGroup(percent=5, salt="rapport-control").holds_out(i)]
    other_salt = {i for i in ids if ControlGroup(percent=5, salt="another").holds_out(i)}
    assert len(other_salt & set(held)) < 200  # a new salt draws a new group
    assert not any(ControlGroup(percent=0).holds_out(i) for i in ids)
    # Growing the share keeps everyone already held out in the group.
    assert set(held) <= {
        i for i in ids if ControlGroup(percent=10, salt="rapport-control").holds_out(i)
    }


def test_held_out_customers_get_no_marketing_but_all_service(
    engine: Engine, tmp_path: Path
) -> None:
    for customer in CUSTOMERS:
        add_customer(engine, customer)
    ruleset, problems = rules_in_force(engine, _rules(tmp_path), None, NOW)
    assert problems == ()
    control = {c for c in CUSTOMERS if ruleset.measures.control.holds_out(c)}
    assert 0 < len(control) < len(CUSTOMERS)
    summary = RunSummary()
    firings = list(evaluate_customers(engine, ruleset, NOW, record=True, summary=summary))
    assert len(firings) == 3 * len(CUSTOMERS)  # every rule fired for everyone
    with engine.connect() as connection:
        held = set(
            connection.execute(
                select(RuleFiring.rule_id, RuleFiring.customer_id).where(RuleFiring.held_out)
            ).all()
        )
        messages = set(connection.execute(select(OutboxMessage.rule_id, OutboxMessage.customer_id)))
        tasks = {c for (c,) in connection.execute(select(StaffTask.customer_id))}
    marketing = {"marketing_offer", "promo_call"}
    assert held == {(rule, c) for rule in marketing for c in control}
    assert {c for rule, c in messages if rule == "marketing_offer"} == set(CUSTOMERS) - control
    assert {c for rule, c in messages if rule == "service_reminder"} == set(CUSTOMERS)
    assert tasks == set(CUSTOMERS) - control
    # Held-out firings count for re-entry, so both groups keep the same rhythm.
    assert list(evaluate_customers(engine, ruleset, NOW, record=True)) == []


@pytest.mark.parametrize(
    ("measures", "expected"),
    [
        (
            "  control_group: {percent: 80}",
            "rules.yaml:23:28: wrong-type: `percent` is a number from 0 to 50",
        ),
        (
            "  control_group: {share: 5}",
            "rules.yaml:23:19: unknown-key: unknown control_group key 'share'",
        ),
        ("  active_window: 90 days", "rules.yaml:23:18: bad-duration: '90 days' is not a duration"),
        (
            "  feedback_sla: {general: {first_response: 1h}}",
            "rules.yaml:23:3: unknown-key: `feedback_sla` moved to the `policy:` section",
        ),
        (
            "  costs: {messages: {emial: 0.1}}",
            "rules.yaml:23:22: unknown-key: unknown message channel 'emial' "
            "(did you mean 'email'?)",
        ),
        (
            "  costs: {tasks: {promo_cal: 30}}",
            "rules.yaml:23:19: unknown-task-kind: no rule opens tasks of kind 'promo_cal' "
            "(did you mean 'promo_call'?)",
        ),
        (
            "  clv_horizon_years: 0",
            "rules.yaml:23:22: wrong-type: `clv_horizon_years` is a whole number",
        ),
    ],
)
def test_measures_mistakes_are_reported_where_they_are(
    tmp_path: Path, measures: str, expected: str
) -> None:
    text = RULES.replace("  control_group: {percent: 30, salt: control-test}", measures)
    result = load_rules(_rules(tmp_path, text))
    assert result.ruleset is None  # nothing half-applies
    messages = [
        f"{Path(p.path).name}:{p.line}:{p.column}: {p.code}: {p.message}" for p in result.errors
    ]
    assert len(messages) == 1 and messages[0].startswith(expected), messages


def test_measures_left_out_keep_their_defaults(tmp_path: Path) -> None:
    text = RULES.replace(
        "  control_group: {percent: 30, salt: control-test}", "  winback_window: 14d"
    )
    ruleset = load_rules(_rules(tmp_path, text)).ruleset
    assert ruleset is not None
    assert ruleset.measures.winback_window.days == 14
    assert ruleset.measures.control.percent == 5
    assert ruleset.policy.service_levels.targets["general"].first_response.total_seconds() == 3600


def test_explain_says_a_held_out_customer_gets_no_marketing(engine: Engine, tmp_path: Path) -> None:
    for customer in CUSTOMERS:
        add_customer(engine, customer)
    ruleset, _ = rules_in_force(engine, _rules(tmp_path), None, NOW)
    held = next(c for c in CUSTOMERS if ruleset.measures.control.holds_out(c))
    treated = next(c for c in CUSTOMERS if not ruleset.measures.control.holds_out(c))
    states = {}
    for customer in (held, treated):
        explanation = explain_customer(engine, ruleset, customer, NOW)
        assert explanation is not None
        states[customer] = {rule.rule_id: rule.state for rule in explanation.rules}
    assert states[held]["marketing_offer"] == "fired, held out (control group: plans nothing)"
    assert states[held]["service_reminder"] == "fired"
    assert states[treated]["marketing_offer"] == "fired"
