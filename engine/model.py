"""The validated rule model the loader produces and the compiler consumes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any

from engine.care_calendar import CareDay
from engine.facts import FactParameters
from engine.measure_settings import Measures
from engine.policy import Policy


@dataclass(frozen=True)
class Position:
    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class FactRef:
    """Another fact as a comparison's right-hand side: `times` × fact + `plus`."""

    fact: str
    times: float = 1.0
    plus: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """`subject op operand`; a subject is a fact name or `event.<field>`."""

    subject: str
    op: str
    operand: Any
    position: Position


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Comparison | AllOf | AnyOf | Not


class Reentry(StrEnum):
    """How often one rule may fire for one customer."""

    ONCE = "once"  # once per customer, ever
    PER_EVENT = "per_event"  # once per triggering event
    EVERY = "every"  # at most once per period


@dataclass(frozen=True)
class Action:
    name: str
    params: dict[str, Any]
    position: Position


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    event: str | None  # None: evaluated on every customer at each scheduled run
    when: AllOf
    actions: tuple[Action, ...]
    reentry: Reentry
    period: timedelta | None
    priority: int
    enabled: bool
    tags: tuple[str, ...]
    position: Position

    @property
    def marketing(self) -> bool:
        """Tagged `marketing` or sending a marketing message: held out for the control group."""
        return "marketing" in self.tags or any(
            action.name == "send_message" and action.params.get("purpose") == "marketing"
            for action in self.actions
        )

    @property
    def trigger(self) -> str:
        return f"event:{self.event}" if self.event else "schedule"

    def admits(self, last_fired_at: datetime | None, as_of: datetime) -> bool:
        """Whether the re-entry policy lets the rule fire again for the same customer.

        `per_event` is enforced by the firing's key (rule, customer, event) instead.
        """
        if last_fired_at is None or self.reentry is Reentry.PER_EVENT:
            return True
        if self.reentry is Reentry.ONCE:
            return False
        assert self.period is not None
        return as_of - last_fired_at >= self.period


@dataclass(frozen=True)
class RuleSet:
    """A whole, valid rules directory: what one revision is."""

    revision: str
    rules: tuple[Rule, ...]
    parameters: FactParameters = field(default_factory=FactParameters)
    affinity: dict[str, tuple[str, ...]] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    measures: Measures = field(default_factory=Measures)
    files: dict[str, str] = field(default_factory=dict)  # file name -> content

    @property
    def holidays(self) -> tuple[CareDay, ...]:
        """The care calendar (kept with the parameters facts are computed with)."""
        return self.parameters.holidays

    def suggestions_for(self, product: str | None, owned: Collection[str] = ()) -> tuple[str, ...]:
        """Products the affinity table suggests after `product`, in its order, without
        those the customer already `owned` (rules/affinity.yaml promises to skip them)."""
        listed = self.affinity.get(product, ()) if product else ()
        return tuple(p for p in listed if p not in owned)

    @cached_property
    def _by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    def rule(self, rule_id: str) -> Rule:
        """A rule by id: looked up for every firing (re-entry, hold-out, planning)."""
        return self._by_id[rule_id]

    def holds_out(self, rule_id: str, customer_id: str) -> bool:
        """Whether the control group keeps this customer out of this rule."""
        return self.rule(rule_id).marketing and self.measures.control.holds_out(customer_id)

    @property
    def enabled(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)
