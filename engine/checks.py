"""Checks on valid rules that still cannot work: contradictions, duplicates, limits.

Contradictions are found among the comparisons that must all hold (a rule's
top-level conditions and nested `all:` blocks); `any:` and `not:` are not searched.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from engine.compile import compile_rule, expression_count
from engine.model import AllOf, Comparison, Condition, FactRef, Position, Rule
from engine.problems import Problem, Severity
from engine.service_levels import TARGETS

MAX_EXPRESSIONS = 31  # durable_rules' expression sequence per rule holds 31 slots


def check_rules(rules: list[Rule], max_per_trigger: int) -> list[Problem]:
    problems = [problem for rule in rules for problem in _contradictions(rule)]
    for rule in rules:
        size = expression_count(compile_rule(rule))
        if size > MAX_EXPRESSIONS:
            problems.append(
                _problem(
                    rule.position,
                    "rule-too-complex",
                    f"rule {rule.id!r} needs {size} engine expression slots "
                    f"of {MAX_EXPRESSIONS}: split it into simpler rules",
                )
            )
    problems.extend(_duplicates(rules))
    problems.extend(_targets_without_item(rules))
    counts: Counter[str] = Counter()
    for rule in rules:
        if not rule.enabled:
            continue
        counts[rule.trigger] += 1
        if counts[rule.trigger] == max_per_trigger + 1:
            problems.append(
                _problem(
                    rule.position,
                    "too-many-rules",
                    f"more than {max_per_trigger} enabled rules have trigger "
                    f"{rule.trigger}; the engine cannot match more at once",
                )
            )
    return problems


def _targets_without_item(rules: list[Rule]) -> Iterator[Problem]:
    """`due_in: first_response` needs a feedback item whose level sets the target."""
    for rule in rules:
        for action in rule.actions:
            due = action.params.get("due_in")
            if due in TARGETS and rule.event != "feedback":
                yield _problem(
                    action.position,
                    "bad-choice",
                    f"`due_in: {due}` is a feedback item's target; rule {rule.id!r} is not "
                    "triggered by feedback: give a duration such as 24h",
                )


def _problem(at: Position, code: str, message: str, severity: Severity = Severity.ERROR) -> Problem:
    return Problem(at.path, at.line, at.column, code, message, severity)


def _must_hold(condition: Condition) -> Iterator[Comparison]:
    if isinstance(condition, Comparison):
        yield condition
    elif isinstance(condition, AllOf):
        for item in condition.items:
            yield from _must_hold(item)


@dataclass
class _Bounds:
    """What one subject may still be, given the comparisons read so far."""

    low: float = -math.inf
    low_open: bool = False
    high: float = math.inf
    high_open: bool = False
    allowed: set[object] | None = None
    excluded: set[object] = field(default_factory=set)
    needs_value: bool = False
    absent: bool = False

    def add(self, op: str, value: Any) -> None:
        if op == "exists" and value is False:
            self.absent = True
            return
        self.needs_value = True
        if op in ("eq", "in"):
            values = set(value) if op == "in" else {value}
            self.allowed = values if self.allowed is None else self.allowed & values
        elif op in ("ne", "not_in"):
            self.excluded |= set(value) if op == "not_in" else {value}
        elif op == "between":
            low, high = value
            self._raise_low(low, False)
            self._lower_high(high, False)
        elif op in ("gt", "gte"):
            self._raise_low(value, op == "gt")
        elif op in ("lt", "lte"):
            self._lower_high(value, op == "lt")

    def _raise_low(self, value: float, open_: bool) -> None:
        if value > self.low or (value == self.low and open_):
            self.low, self.low_open = value, open_

    def _lower_high(self, value: float, open_: bool) -> None:
        if value < self.high or (value == self.high and open_):
            self.high, self.high_open = value, open_

    def possible(self) -> bool:
        if self.absent and self.needs_value:
            return False
        if self.low > self.high or (self.low == self.high and (self.low_open or self.high_open)):
            return False
        if self.allowed is None:
            return True
        return any(self._within(v) for v in self.allowed - self.excluded)

    def _within(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return True
        above = value > self.low or (value == self.low and not self.low_open)
        below = value < self.high or (value == self.high and not self.high_open)
        return above and below


def _contradictions(rule: Rule) -> Iterator[Problem]:
    bounds: dict[str, _Bounds] = defaultdict(_Bounds)
    reported: set[str] = set()
    for comparison in _must_hold(rule.when):
        if isinstance(comparison.operand, FactRef):
            continue
        state = bounds[comparison.subject]
        state.add(comparison.op, comparison.operand)
        if comparison.subject not in reported and not state.possible():
            reported.add(comparison.subject)
            yield _problem(
                comparison.position,
                "contradiction",
                f"rule {rule.id!r} can never fire: the conditions on "
                f"{comparison.subject!r} cannot all hold",
            )


def _duplicates(rules: list[Rule]) -> Iterator[Problem]:
    seen: dict[object, Rule] = {}
    for rule in rules:
        key = (
            rule.trigger,
            _without_positions(rule.when),
            tuple((a.name, tuple(sorted(a.params.items(), key=str))) for a in rule.actions),
        )
        if key in seen:
            yield _problem(
                rule.position,
                "duplicate-rule",
                f"rule {rule.id!r} repeats rule {seen[key].id!r} "
                "(same trigger, conditions and actions)",
                Severity.WARNING,
            )
        else:
            seen[key] = rule


def _without_positions(condition: object) -> object:
    if isinstance(condition, Comparison):
        return replace(condition, position=Position("", 0, 0))
    if hasattr(condition, "items"):
        return (type(condition).__name__, tuple(_without_positions(i) for i in condition.items))
    return ("Not", _without_positions(condition.item))  # type: ignore[attr-defined]
