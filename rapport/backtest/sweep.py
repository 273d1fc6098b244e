"""`--sweep RULE.FACT=V1,V2,…`: one threshold of one rule, replayed at several values.

The spec names a rule and the fact its threshold compares (`churn_purchase_overdue.
purchase_overdue_ratio=1.5,2,3`, or a range `=1.5..3:0.5`); when the fact is compared
twice in the rule (`spend_12m: {gte: 1000, lt: 5000}`), the operator says which:
`RULE.FACT.gte=…`. A threshold compares by order (`lt`, `lte`, `gt`, `gte`) with a
number, whose place each value takes, or with another fact, when each value is the
multiplier (`purchases_recent < 0.5 × purchases_previous`: the 0.5).

Each value is a variant of the revision — the same rules with that one number changed,
as if the file had been edited by hand — and all variants are replayed per chunk of
customers from one read of their histories (`runner.py`). When the swept rule can
neither affect nor be affected by any other rule — it only tags, its trigger is no
event the replay raises, and it reads no contact counter — a variant holds the swept
rule alone: its firings are exactly those of the full revision, the other rules' work
does not change with the value, and the replay is several times cheaper.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from engine.conditions import comparisons
from engine.evaluate import referenced
from engine.facts import FACTS_BY_NAME, FactType
from engine.model import AllOf, AnyOf, Comparison, Condition, FactRef, Not, Position, Rule, RuleSet
from engine.problems import did_you_mean
from engine.trace import describe
from rapport.backtest.drift import CONTACTS
from rapport.backtest.eligibility import eligibility
from rapport.services.staff_language import _

THRESHOLD_OPS = ("lt", "lte", "gt", "gte")
MAX_VALUES = 25  # each value is a replay of the history
QUIET_ACTIONS = frozenset({"tag"})  # actions that plan nothing another rule could see
RAISED = frozenset({"contact", "step_due", "task_overdue"})  # events the replay raises


class SweepError(ValueError):
    """A spec that names no sweepable threshold: the message says what to write."""


@dataclass(frozen=True)
class Sweep:
    """A parsed spec: plain values, so it crosses to worker processes."""

    rule_id: str
    fact: str
    op: str | None
    values: tuple[float, ...]

    @classmethod
    def parse(cls, spec: str) -> Sweep:
        target, equals, listed = spec.partition("=")
        rule_id, dot, fact = target.strip().partition(".")
        if not equals or not dot or not rule_id or not fact:
            raise SweepError(
                _(
                    "--sweep {spec}: write RULE.FACT=V1,V2,… or RULE.FACT=FROM..TO:STEP, "
                    "e.g. {example}"
                ).format(
                    spec=repr(spec), example="churn_purchase_overdue.purchase_overdue_ratio=1.5,2,3"
                )
            )
        head, _dot, last = fact.rpartition(".")
        op = last if head and last in THRESHOLD_OPS else None
        return cls(rule_id, head if op else fact, op, _values(listed.strip(), spec))

    @property
    def label(self) -> str:
        return f"{self.rule_id}.{self.fact}" + (f".{self.op}" if self.op else "")

    def target(self, ruleset: RuleSet) -> Target:
        """The threshold this spec names in `ruleset`, or a `SweepError` that lists the
        rule's conditions."""
        rule = _rule(ruleset, self.rule_id)
        written = list(comparisons(rule.when))
        on_fact = [c for c in written if c.subject == self.fact]
        if self.op is not None:
            on_fact = [c for c in on_fact if c.op == self.op]
        thresholds = [c for c in on_fact if c.op in THRESHOLD_OPS]
        if len(thresholds) == 1:
            target = Target(rule, thresholds[0], isolated(rule))
            target.check(self.values)
            return target
        sweepable = sorted({f"{rule.id}.{c.subject}" for c in written if c.op in THRESHOLD_OPS})
        listing = "; ".join(f"{describe(c)} ({c.position})" for c in written)
        if len(thresholds) > 1:
            named = ", ".join(f"{self.label}.{c.op}" for c in thresholds)
            problem = _("{fact!r} has {count} thresholds in {rule}: name one, {named}").format(
                fact=self.fact, count=len(thresholds), rule=rule.id, named=named
            )
        elif on_fact:
            problem = _(
                "{rule}'s condition on {fact!r} is not a threshold (lt, lte, gt or gte)"
            ).format(rule=rule.id, fact=self.fact)
        else:
            problem = _("{rule} has no condition on {fact!r}").format(rule=rule.id, fact=self.fact)
        hint = _("thresholds it can sweep: {names}").format(names=", ".join(sweepable) or "–")
        raise SweepError(
            f"--sweep {self.label}: {problem}. "
            + _("Its conditions: {listing}").format(listing=listing or "–")
            + f". {hint}"
        )

    def variants(self, ruleset: RuleSet) -> list[Variant]:
        """One revision per value, in the order of the values."""
        target = self.target(ruleset)
        return [target.variant(ruleset, value) for value in self.values]


@dataclass(frozen=True)
class Variant:
    """The revision replayed for one value; `threshold` is where its threshold is written."""

    value: float
    ruleset: RuleSet
    threshold: Position


@dataclass(frozen=True)
class Target:
    """The swept rule and its threshold comparison; `isolated`: replayable alone."""

    rule: Rule
    comparison: Comparison

    isolated: bool

    @property
    def current(self) -> float:
        operand = self.comparison.operand
        return float(operand.times if isinstance(operand, FactRef) else operand)

    @property
    def condition(self) -> str:
        return describe(self.comparison)

    @property
    def eligible(self) -> str:
        """The eligible population's conditions, as a reader would write them."""
        found = eligibility(self.rule, self.comparison.position)
        return ", ".join(describe(c) for c in comparisons(found)) if found else ""

    def check(self, values: tuple[float, ...]) -> None:
        """An integer fact compared with a number takes whole numbers, as the loader says."""
        fact = FACTS_BY_NAME.get(self.comparison.subject)
        whole = fact is not None and fact.type is FactType.INTEGER
        if whole and not isinstance(self.comparison.operand, FactRef):
            broken = [v for v in values if v != int(v)]
            if broken:
                raise SweepError(
                    _("--sweep: {fact} is a whole number; {value} is not").format(
                        fact=self.comparison.subject, value=_shown(broken[0])
                    )
                )

    def variant(self, ruleset: RuleSet, value: float) -> Variant:
        old = self.comparison
        if isinstance(old.operand, FactRef):
            operand: object = replace(old.operand, times=float(value))
        else:
            operand = int(value) if isinstance(old.operand, int) and value == int(value) else value
        new = replace(old, operand=operand)
        rule = replace(
            self.rule, when=AllOf(tuple(_swap(i, old, new) for i in self.rule.when.items))
        )
        rules = (
            (rule,)
            if self.isolated
            else tuple(rule if r.id == rule.id else r for r in ruleset.rules)
        )
        digest = hashlib.sha256(
            f"{ruleset.revision}\0{rule.id}\0{old.position}\0{value!r}\0{self.isolated}".encode()
        ).hexdigest()
        return Variant(value, replace(ruleset, rules=rules, revision=digest), old.position)


def isolated(rule: Rule) -> bool:
    """Whether `rule` neither affects nor depends on the other rules in a replay: it plans
    nothing (tags only), reacts to no event the replay raises and reads no contact
    counter (the contacts other rules' messages leave)."""
    return (
        all(action.name in QUIET_ACTIONS for action in rule.actions)
        and rule.event not in RAISED
        and CONTACTS.isdisjoint(referenced(rule.when))
    )


def _swap(condition: Condition, old: Comparison, new: Comparison) -> Condition:
    if condition is old:
        return new
    if isinstance(condition, AllOf | AnyOf):
        return type(condition)(tuple(_swap(item, old, new) for item in condition.items))
    if isinstance(condition, Not):
        return Not(_swap(condition.item, old, new))
    return condition


def _rule(ruleset: RuleSet, rule_id: str) -> Rule:
    rules = {rule.id: rule for rule in ruleset.rules}
    rule = rules.get(rule_id)
    if rule is None:
        hint = did_you_mean(rule_id, rules)
        raise SweepError(_("--sweep: no rule {rule!r}{hint}").format(rule=rule_id, hint=hint))
    if not rule.enabled:
        raise SweepError(_("--sweep: rule {rule} is disabled").format(rule=rule_id))
    return rule


def _values(listed: str, spec: str) -> tuple[float, ...]:
    """`1.5,2,3` or `1.5..3:0.5` (both ends included), sorted, each once."""
    try:
        found = set(_range(listed) if ".." in listed else _listed(listed))
    except (InvalidOperation, ValueError):
        found = set()
    count = len(found) if ".." not in listed else _range_length(listed)
    if not found:
        raise SweepError(
            _("--sweep {spec}: the values are numbers, e.g. =1.5,2,3 or =1.5..3:0.5").format(
                spec=repr(spec)
            )
        )
    if count > MAX_VALUES:
        raise SweepError(
            _("--sweep {spec}: {count} values; at most {most} (each is a replay)").format(
                spec=repr(spec), count=f"{count:,}", most=MAX_VALUES
            )
        )
    return tuple(sorted(found))


def _listed(listed: str) -> Iterator[float]:
    for part in listed.split(","):
        yield _number(Decimal(part.strip()))


def _bounds(listed: str) -> tuple[Decimal, Decimal, Decimal]:
    """FROM, TO and STEP of `FROM..TO:STEP` (STEP 1 when left out), as decimals so that
    1.5..3:0.1 ends on 3 exactly."""
    bounds, _colon, step_text = listed.partition(":")
    low, _dots, high = bounds.partition("..")
    first, last = Decimal(low.strip()), Decimal(high.strip())
    step = Decimal(step_text.strip()) if step_text.strip() else Decimal(1)
    if step <= 0 or last < first:
        raise ValueError("no such range")
    return first, last, step


def _range_length(listed: str) -> int:
    try:
        first, last, step = _bounds(listed)
    except (InvalidOperation, ValueError):
        return 0
    return int((last - first) // step) + 1


def _range(listed: str) -> Iterator[float]:
    first, last, step = _bounds(listed)
    for index in range(min(int((last - first) // step) + 1, MAX_VALUES + 1)):
        yield _number(first + step * index)


def _number(value: Decimal) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _shown(value: float) -> str:
    return f"{value:g}"
