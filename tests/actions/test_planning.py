"""Idempotency keys: the same firing always plans the same keys; scopes follow re-entry."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from actions.planning import idempotency_key, plan_firing
from engine.evaluate import Firing
from engine.loader import load_rules
from engine.model import Rule
from storage.planned import PlannedMessage, PlannedTask
from tests.paths import ROOT

RULES = load_rules(ROOT / "rules").ruleset
assert RULES is not None
MONDAY = datetime(2026, 6, 29, 9, tzinfo=UTC)
LEVELS = RULES.policy.service_levels


def firing(rule: Rule, at: datetime, event_id: str | None = None) -> Firing:
    return Firing(rule.id, "C1", RULES.revision, at, event_id, {}, rule.actions)


def test_a_weekly_rule_has_one_key_per_week() -> None:
    rule = RULES.rule("high_weekly_online_touch")
    assert rule.period == timedelta(days=7)
    monday = idempotency_key(rule, firing(rule, MONDAY), 0)
    sunday = idempotency_key(rule, firing(rule, MONDAY + timedelta(days=6, hours=14)), 0)
    next_monday = idempotency_key(rule, firing(rule, MONDAY + timedelta(days=7)), 0)
    assert monday == sunday != next_monday
    assert monday.startswith("high_weekly_online_touch.0:C1:every:604800s:")


def test_event_rules_are_keyed_by_their_event_and_once_rules_by_the_customer() -> None:
    feedback = RULES.rule("feedback_major_to_management")
    keys = {
        idempotency_key(feedback, firing(feedback, MONDAY + timedelta(hours=h), "E1"), 0)
        for h in range(5)
    }
    assert keys == {"feedback_major_to_management.0:C1:event:E1"}
    once = next(rule for rule in RULES.rules if rule.reentry.value == "once")
    assert idempotency_key(once, firing(once, MONDAY), 0).endswith(":C1:once")


def test_planning_is_deterministic_and_tasks_get_their_deadline() -> None:
    rule = RULES.rule("feedback_major_to_management")
    major = replace(firing(rule, MONDAY, "E9"), event_at=MONDAY - timedelta(hours=2), level="major")
    first = plan_firing(rule, major, LEVELS)
    assert first == plan_firing(rule, major, LEVELS)
    tasks = [p for p in first if isinstance(p, PlannedTask)]
    assert tasks and tasks[0].owner_role == "management" and tasks[0].ledger
    # a major item's 48 hours count around the clock, from when it happened
    assert tasks[0].due_at == MONDAY + timedelta(hours=46)
    messages = [p for p in plan_firing(*_message_rule(), LEVELS) if isinstance(p, PlannedMessage)]
    assert messages[0].template == "high_weekly_insight"
    assert len({p.key for p in first}) == len(first)


def _message_rule() -> tuple[Rule, Firing]:
    rule = RULES.rule("high_weekly_online_touch")
    return rule, firing(rule, MONDAY)
