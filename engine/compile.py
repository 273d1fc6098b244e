"""Compiling validated rules into a `durable_rules` ruleset (its dict form).

Semantics shared with `engine/explain.py`: a comparison on a missing value (a
nullable fact that is null, an absent event field) is false; `not` is true when its
condition is false. `not` is pushed down to the comparisons (durable_rules has no
negation inside an expression), adding "or the value is missing" where needed, and
`in` becomes an `$or` of equalities (durable_rules has no `$in`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.model import AllOf, AnyOf, Comparison, Condition, FactRef, Not, Rule

SNAPSHOT = "customer_snapshot"
EVENT = "customer_event"
WARMUP_RULE = "__warmup"  # no rule id can start with "_"

_NEGATED = {
    "eq": "ne",
    "ne": "eq",
    "lt": "gte",
    "lte": "gt",
    "gt": "lte",
    "gte": "lt",
    "in": "not_in",
    "not_in": "in",
}
_DURABLE_OP = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


def message_key(subject: str) -> str:
    """Where a subject lives in the asserted message: facts as named, `event_<field>`."""
    return subject.replace("event.", "event_", 1) if subject.startswith("event.") else subject


def compile_rules(
    rules: tuple[Rule, ...], action: Callable[[str], Callable[[Any], None]]
) -> dict[str, Any]:
    """The durable_rules ruleset for `rules`; `action(rule_id)` makes each rule's callback.

    It always holds `WARMUP_RULE`: durable_rules 2.0.28 crashes (free(): invalid
    pointer) on `delete_state` until the ruleset has handled one message, so the
    evaluator asserts one warm-up message right after registering.
    """
    compiled = {rule.id: compile_rule(rule, action(rule.id)) for rule in rules if rule.enabled}
    compiled[WARMUP_RULE] = {"all": [{"m": {"kind": WARMUP_RULE}}], "run": _ignore}
    return compiled


def _ignore(_context: Any) -> None:
    """The warm-up rule's action: nothing."""


def compile_rule(rule: Rule, run: Callable[[Any], None]) -> dict[str, Any]:
    # The positive `kind` match keeps a rule of only negative conditions from matching
    # the session state (which loops forever), and separates scheduled from event rules.
    trigger: list[dict[str, Any]] = [{"kind": SNAPSHOT}]
    if rule.event is not None:
        trigger = [{"kind": EVENT}, {"event_type": rule.event}]
    return {
        "all": [{"m": {"$and": [*trigger, *map(_condition, rule.when.items)]}}],
        "pri": rule.priority,
        "run": run,
    }


def _condition(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, Comparison):
        return _comparison(condition)
    if isinstance(condition, AllOf):
        return _all([_condition(item) for item in condition.items])
    if isinstance(condition, AnyOf):
        return _any([_condition(item) for item in condition.items])
    return _condition(negate(condition.item))


def negate(condition: Condition) -> Condition:
    """The condition true exactly when `condition` is false (missing values included)."""
    if isinstance(condition, Not):
        return condition.item
    if isinstance(condition, AllOf):
        return AnyOf(tuple(negate(item) for item in condition.items))
    if isinstance(condition, AnyOf):
        return AllOf(tuple(negate(item) for item in condition.items))
    if condition.op == "exists":
        return Comparison(condition.subject, "exists", not condition.operand, condition.position)
    missing = Comparison(condition.subject, "exists", False, condition.position)
    if condition.op == "between":
        low, high = condition.operand
        opposite: Condition = AnyOf(
            (
                Comparison(condition.subject, "lt", low, condition.position),
                Comparison(condition.subject, "gt", high, condition.position),
            )
        )
    else:
        opposite = Comparison(
            condition.subject, _NEGATED[condition.op], condition.operand, condition.position
        )
    alternatives: list[Condition] = [opposite, missing]
    if isinstance(condition.operand, FactRef):
        alternatives.append(Comparison(condition.operand.fact, "exists", False, condition.position))
    return AnyOf(tuple(alternatives))


def _comparison(comparison: Comparison) -> dict[str, Any]:
    key, op, operand = message_key(comparison.subject), comparison.op, comparison.operand
    present = {"$ex": {key: 1}}
    if op == "exists":
        return present if operand else {"$nex": {key: 1}}
    if op == "in":
        return _any([{key: value} for value in operand])
    if op == "not_in":
        return _all([present, *({"$neq": {key: value}} for value in operand)])
    if op == "between":
        return _all([{"$gte": {key: operand[0]}}, {"$lte": {key: operand[1]}}])
    if isinstance(operand, FactRef):
        expression = _reference(operand)
        compared = {key: expression} if op == "eq" else {_DURABLE_OP[op]: {key: expression}}
        return _all([present, {"$ex": {operand.fact: 1}}, compared])
    if op == "eq":
        return {key: operand}
    return _all([present, {_DURABLE_OP[op]: {key: operand}}])


def _reference(ref: FactRef) -> Any:
    value: Any = {"$m": ref.fact}
    if ref.times != 1.0:
        value = {"$mul": {"$l": ref.times, "$r": value}}
    if ref.plus != 0.0:
        value = {"$add": {"$l": value, "$r": ref.plus}}
    return value


def _all(items: list[dict[str, Any]]) -> dict[str, Any]:
    return items[0] if len(items) == 1 else {"$and": items}


def _any(items: list[dict[str, Any]]) -> dict[str, Any]:
    return items[0] if len(items) == 1 else {"$or": items}
