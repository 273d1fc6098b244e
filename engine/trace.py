"""Why a rule fired or not: every condition with the actual value beside it.

Evaluates conditions in Python with the compiler's semantics (a comparison on a
missing value is false; `not` is true when its condition is false). The test suite
checks this agrees with the engine on every rule and a whole generated customer base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.compile import message_key
from engine.model import AllOf, AnyOf, Comparison, Condition, FactRef, Not, Rule

_SYMBOLS = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}


@dataclass(frozen=True)
class Check:
    """One line of an explanation: a condition, what was found, and whether it held."""

    depth: int
    text: str
    actual: str
    holds: bool


def _value(values: dict[str, Any], subject: str) -> Any:
    return values.get(message_key(subject))


def _right(operand: Any, values: dict[str, Any]) -> Any:
    if isinstance(operand, FactRef):
        other = values.get(operand.fact)
        return None if other is None else other * operand.times + operand.plus
    return operand


def holds(condition: Condition, values: dict[str, Any]) -> bool:
    """Whether `condition` is true for `values` (facts, and `event_<field>` keys)."""
    if isinstance(condition, AllOf):
        return all(holds(item, values) for item in condition.items)
    if isinstance(condition, AnyOf):
        return any(holds(item, values) for item in condition.items)
    if isinstance(condition, Not):
        return not holds(condition.item, values)
    actual = _value(values, condition.subject)
    if condition.op == "exists":
        return (actual is not None) == condition.operand
    right = _right(condition.operand, values)
    if actual is None or right is None:
        return False
    match condition.op:
        case "eq":
            return bool(actual == right)
        case "ne":
            return bool(actual != right)
        case "lt":
            return bool(actual < right)
        case "lte":
            return bool(actual <= right)
        case "gt":
            return bool(actual > right)
        case "gte":
            return bool(actual >= right)
        case "between":
            return bool(right[0] <= actual <= right[1])
        case "in":
            return actual in right
        case "not_in":
            return actual not in right
    raise ValueError(f"unknown operator {condition.op!r}")


def describe(comparison: Comparison) -> str:
    """`days_since_online_contact ≥ 7`, `purchases_recent < 0.5 × purchases_previous`."""
    operand = comparison.operand
    if comparison.op == "exists":
        return f"{comparison.subject} {'has a value' if operand else 'has no value'}"
    if comparison.op == "between":
        return f"{comparison.subject} between {operand[0]} and {operand[1]}"
    if comparison.op in ("in", "not_in"):
        word = "in" if comparison.op == "in" else "not in"
        return f"{comparison.subject} {word} [{', '.join(map(str, operand))}]"
    if isinstance(operand, FactRef):
        right = operand.fact if operand.times == 1 else f"{operand.times:g} × {operand.fact}"
        right += f" + {operand.plus:g}" if operand.plus else ""
    else:
        right = repr(operand) if isinstance(operand, str) else str(operand)
    return f"{comparison.subject} {_SYMBOLS[comparison.op]} {right}"


def explain_rule(rule: Rule, values: dict[str, Any]) -> tuple[bool, list[Check]]:
    """Whether `rule`'s conditions hold, with one `Check` per condition and group."""
    checks: list[Check] = []

    def visit(node: Condition, depth: int) -> None:
        if isinstance(node, Comparison):
            actual = _value(values, node.subject)
            shown = "missing" if actual is None else repr(actual)
            if isinstance(node.operand, FactRef):
                shown += f" vs {_right(node.operand, values)!r}"
            checks.append(Check(depth, describe(node), shown, holds(node, values)))
            return
        label = {AllOf: "all of", AnyOf: "any of", Not: "not"}[type(node)]
        checks.append(Check(depth, label, "", holds(node, values)))
        for item in node.items if isinstance(node, AllOf | AnyOf) else (node.item,):
            visit(item, depth + 1)

    for item in rule.when.items:
        visit(item, 0)
    return holds(rule.when, values), checks
