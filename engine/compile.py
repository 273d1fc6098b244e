"""Compiling validated rules into a `durable_rules` ruleset (its dict form).

Semantics shared with `engine/trace.py`: a comparison on a missing value (a
nullable fact that is null, an absent event field) is false; `not` is true when its
condition is false. `not` is pushed down to the comparisons (durable_rules has no
negation inside an expression), adding "or the value is missing" for nullable facts,
and `in` becomes an `$or` of equalities (durable_rules has no `$in`). Nested groups of
the same kind are flattened: durable_rules allows a rule only 31 expression slots.
"""

from __future__ import annotations

from typing import Any

from engine.facts import fact_named
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


def compile_rules(rules: tuple[Rule, ...]) -> dict[str, Any]:
    """The durable_rules ruleset for the enabled `rules`, keyed by rule id.

    Every rule's action is a no-op: the evaluator reads matches from the engine's action
    queue by rule name, so nothing ever runs inside the engine.

    It always holds `WARMUP_RULE`: durable_rules 2.0.28 crashes (free(): invalid
    pointer) on `delete_state` until the ruleset has handled one message, so the
    evaluator asserts one warm-up message right after registering.
    """
    compiled = {rule.id: compile_rule(rule) for rule in rules if rule.enabled}
    compiled[WARMUP_RULE] = {"all": [{"m": {"kind": WARMUP_RULE}}], "run": _ignore}
    return compiled


def _ignore(_context: Any) -> None:
    """Every rule's action: nothing (durable_rules requires one)."""


def compile_rule(rule: Rule) -> dict[str, Any]:
    # The positive `kind` match keeps a rule of only negative conditions from matching
    # the session state (which loops forever), and separates scheduled from event rules.
    trigger: list[dict[str, Any]] = [{"kind": SNAPSHOT}]
    if rule.event is not None:
        trigger = [{"kind": EVENT}, {"event_type": rule.event}]
    return {
        "all": [{"m": _all([*trigger, *map(_condition, rule.when.items)])}],
        "pri": rule.priority,
        "run": _ignore,
    }


def _condition(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, Comparison):
        return _comparison(condition)
    if isinstance(condition, AllOf):
        return _all([_condition(item) for item in condition.items])
    if isinstance(condition, AnyOf):
        return _any([_condition(item) for item in condition.items])
    return _condition(negate(condition.item))


def _nullable(subject: str) -> bool:
    fact = fact_named(subject)
    return subject.startswith("event.") or (fact is not None and fact.nullable)


def negate(condition: Condition) -> Condition:
    """The condition true exactly when `condition` is false (missing values included)."""
    if isinstance(condition, Not):
        return condition.item
    if isinstance(condition, AllOf):
        return AnyOf(tuple(negate(item) for item in condition.items))
    if isinstance(condition, AnyOf):
        return AllOf(tuple(negate(item) for item in condition.items))
    subject, at = condition.subject, condition.position
    if condition.op == "exists":
        return Comparison(subject, "exists", not condition.operand, at)
    if condition.op == "between":
        low, high = condition.operand
        alternatives: list[Condition] = [
            Comparison(subject, "lt", low, at),
            Comparison(subject, "gt", high, at),
        ]
    else:
        alternatives = [Comparison(subject, _NEGATED[condition.op], condition.operand, at)]
    if _nullable(subject):
        alternatives.append(Comparison(subject, "exists", False, at))
    ref = condition.operand
    if isinstance(ref, FactRef) and _nullable(ref.fact):
        alternatives.append(Comparison(ref.fact, "exists", False, at))
    return alternatives[0] if len(alternatives) == 1 else AnyOf(tuple(alternatives))


def _comparison(comparison: Comparison) -> dict[str, Any]:
    """One comparison; durable_rules already finds any comparison on a missing field false."""
    key, op, operand = message_key(comparison.subject), comparison.op, comparison.operand
    if op == "exists":
        return {"$ex": {key: 1}} if operand else {"$nex": {key: 1}}
    if op == "in":
        return _any([{key: value} for value in operand])
    if op == "not_in":
        return _all([{"$neq": {key: value}} for value in operand])
    if op == "between":
        return _all([{"$gte": {key: operand[0]}}, {"$lte": {key: operand[1]}}])
    if isinstance(operand, FactRef):
        # Arithmetic on a missing fact is not false in durable_rules: guard the reference.
        expression = _reference(operand)
        compared = {key: expression} if op == "eq" else {_DURABLE_OP[op]: {key: expression}}
        if not _nullable(operand.fact):
            return compared
        return _all([{"$ex": {operand.fact: 1}}, compared])
    if op == "eq":
        return {key: operand}
    return {_DURABLE_OP[op]: {key: operand}}


def expression_count(compiled: dict[str, Any]) -> int:
    """Slots a compiled rule takes in durable_rules' expression sequence (at most 31).

    Each comparison takes one; each `$and`/`$or` group takes two (its start and end).
    """
    expression = compiled["all"][0]["m"]

    def count(node: dict[str, Any]) -> int:
        group = node.get("$and", node.get("$or"))
        return 1 if group is None else 2 + sum(count(item) for item in group)

    return count(expression)


def _reference(ref: FactRef) -> Any:
    value: Any = {"$m": ref.fact}
    if ref.times != 1.0:
        value = {"$mul": {"$l": ref.times, "$r": value}}
    if ref.plus != 0.0:
        value = {"$add": {"$l": value, "$r": ref.plus}}
    return value


def _all(items: list[dict[str, Any]]) -> dict[str, Any]:
    flat = [part for item in items for part in item.get("$and", [item])]
    return flat[0] if len(flat) == 1 else {"$and": flat}


def _any(items: list[dict[str, Any]]) -> dict[str, Any]:
    flat = [part for item in items for part in item.get("$or", [item])]
    return flat[0] if len(flat) == 1 else {"$or": flat}
