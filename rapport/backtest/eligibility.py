"""The population a churn signal could have flagged: its eligible customers, step by step.

A signal's precision means little on its own: a rule that needs two purchases picks
from repeat buyers, who leave less often than one-time buyers, so comparing it with
every current customer can make a signal that ranks repeat buyers well look worse than
random. Its *fair* base rate is the leaver share among the customers who met the rule's
other conditions — those it could have flagged had its threshold been lower.

Which condition is the threshold: the one a sweep changes (`sweep.py`), else the last
top-level condition of the rule that compares a fact by order (`lt`, `lte`, `gt`,
`gte`, `between`) — `purchase_overdue_ratio ≥ 2` in `churn_purchase_overdue`,
`purchases_recent < 0.5 × purchases_previous` in `churn_frequency_drop`, the `any:`
group of `churn_high_value_activity_drop`. The eligible population is then every other
top-level condition, and when the threshold is one comparison, a value for the facts it
reads (the overdue ratio exists only for repeat buyers). Conditions on the triggering
event are left out: steps have no event. A scheduled rule without such a condition has
no eligible population apart from its flags, and no fair figure.

`Eligible` finds, at each step, which signals a customer was eligible for with the
prefilter's machinery (`prefilter.py`, `customer_facts.Foresight`): exact, yet facts are
derived only when the customer's aggregates change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from engine.conditions import comparisons
from engine.facts import fact_named
from engine.model import AllOf, Comparison, Condition, FactRef, Position, Rule
from rapport.backtest.customer_facts import CustomerFacts, Foresight
from rapport.backtest.drift import Drift
from rapport.backtest.prefilter import Prefilter

ORDERED = frozenset({"lt", "lte", "gt", "gte", "between"})


def _on_event(condition: Condition) -> bool:
    return any(c.subject.startswith("event.") for c in comparisons(condition))


def _threshold_index(rule: Rule, at: Position | None) -> int | None:
    """The top-level condition holding the threshold: the one written at `at`, else the
    last one comparing a fact by order."""
    items = rule.when.items
    for index in reversed(range(len(items))):
        found = list(comparisons(items[index]))
        if at is not None and any(c.position == at for c in found):
            return index
        if at is None and any(
            c.op in ORDERED and not c.subject.startswith("event.") for c in found
        ):
            return index
    return None


def eligibility(rule: Rule, at: Position | None = None) -> AllOf | None:
    """The conditions a customer meets to be eligible for `rule`'s signal (the threshold
    written at `at`, or found as the module says); None when no eligible population
    apart from the flags can be told."""
    index = _threshold_index(rule, at)
    if index is None and rule.event is None:
        return None
    items = rule.when.items
    kept = [item for i, item in enumerate(items) if i != index and not _on_event(item)]
    threshold = items[index] if index is not None else None
    if isinstance(threshold, Comparison) and not threshold.subject.startswith("event."):
        facts = [threshold.subject]
        if isinstance(threshold.operand, FactRef):
            facts.append(threshold.operand.fact)
        kept += [
            Comparison(fact, "exists", True, threshold.position)
            for fact in facts
            if (named := fact_named(fact)) is not None and named.nullable
        ]
    return AllOf(tuple(kept))


class Eligibility:
    """One revision's churn signals and the conditions of their eligible populations,
    ready to check (the prefilter remembers outcomes across customers); `always`: signals
    every current customer is eligible for (no condition left)."""

    def __init__(self, signals: tuple[Rule, ...], thresholds: Mapping[str, Position]) -> None:
        rules, always = [], []
        for rule in signals:
            condition = eligibility(rule, thresholds.get(rule.id))
            if condition is None:
                continue
            if condition.items:
                rules.append(replace(rule, when=condition, event=None))
            else:
                always.append(rule.id)
        self.always = tuple(always)
        self.prefilter = Prefilter(tuple(rules)) if rules else None

    @property
    def counted(self) -> bool:
        return bool(self.always) or self.prefilter is not None


class Eligible:
    """One customer's view: the signals they are eligible for at a step."""

    def __init__(self, eligibility: Eligibility, drift: Drift, facts: CustomerFacts) -> None:
        self.always = eligibility.always
        prefilter = eligibility.prefilter
        self.foresight = Foresight(prefilter, drift, facts) if prefilter is not None else None

    def at(self, at: int, moment: datetime) -> list[str]:
        found = list(self.always)
        if self.foresight is not None:
            found += [rule.id for rule in self.foresight.holding(at, moment)]
        return found
