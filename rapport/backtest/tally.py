"""What a backtest counts while it replays, in a form that adds up across processes.

One `Tally` per rules revision and chunk of customers; `merge` sums them. Everything
is a count (or a maximum), so memory does not grow with the steps: per rule and week,
per owner and week, per week a histogram of messages per customer, and the churn
outcome counts defined in `rapport/backtest/outcomes.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from actions.guards import Decision
from storage.planned import PlannedTask

GROUP_DIMENSIONS = ("tier", "lifecycle_stage", "segment")
Group = tuple[str, str, str]  # the customer's tier, lifecycle stage and segment at the moment


def _weekly(count: int) -> list[int]:
    return [0] * count


def _add_weekly(mine: dict[str, list[int]], other: dict[str, list[int]]) -> None:
    for key, values in other.items():
        target = mine.setdefault(key, _weekly(len(values)))
        for index, value in enumerate(values):
            target[index] += value


@dataclass
class Tally:
    """Counts of one revision over some customers. Weeks are indexes into the window's
    counted weeks; nothing of the warm-up is counted."""

    weeks: int
    customers: int = 0
    events: int = 0
    firings: dict[str, list[int]] = field(default_factory=dict)  # rule -> per week
    held_out: Counter[str] = field(default_factory=Counter)  # rule -> control-group firings
    messages: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, outcome)
    channels: Counter[str] = field(default_factory=Counter)  # sent per channel
    per_customer: list[Counter[int]] = field(default_factory=list)  # week -> {sent: customers}
    population: list[int] = field(default_factory=list)  # week -> customers who existed
    busiest: tuple[int, str, int] = (0, "", -1)  # most messages in one week: count, customer, week
    tasks: dict[str, list[int]] = field(default_factory=dict)  # owner role -> opened per week
    rule_tasks: Counter[str] = field(default_factory=Counter)  # rule -> tasks it opened
    overdue: dict[str, list[int]] = field(default_factory=dict)  # owner role -> went overdue
    feedback: Counter[tuple[int, str, str]] = field(default_factory=Counter)  # week, level, what
    groups: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    churn: dict[str, Counter[str]] = field(default_factory=dict)  # rule -> outcome counts
    outcome_base: Counter[str] = field(default_factory=Counter)  # rule-independent counts
    journal: Journal | None = None  # every firing, message and task: for tests, not flat

    def __post_init__(self) -> None:
        self.per_customer = self.per_customer or [Counter() for _ in range(self.weeks)]
        self.population = self.population or _weekly(self.weeks)

    def fired(
        self,
        rule_id: str,
        customer_id: str,
        as_of: datetime,
        event_id: str | None,
        held_out: bool,
        week: int,
        group: Group,
    ) -> None:
        if self.journal is not None:
            self.journal.firings.append((rule_id, customer_id, as_of, event_id, held_out))
        if week < 0:
            return
        self.firings.setdefault(rule_id, _weekly(self.weeks))[week] += 1
        if held_out:
            self.held_out[rule_id] += 1
        self._grouped("firings", group, rule_id)

    def message(self, rule_id: str, outcome: str, week: int) -> None:
        """`outcome` is `planned`, `sent`, `deferred` or `suppressed:<guard code>`."""
        if week >= 0:
            self.messages[(rule_id, outcome)] += 1

    def sent(self, rule_id: str, channel: str, week: int, group: Group) -> None:
        if week >= 0:
            self.messages[(rule_id, "sent")] += 1
            self.channels[channel] += 1
            self._grouped("messages", group, "")

    def task(self, rule_id: str, owner_role: str, week: int, group: Group) -> None:
        if week >= 0:
            self.tasks.setdefault(owner_role, _weekly(self.weeks))[week] += 1
            self.rule_tasks[rule_id] += 1
            self._grouped("tasks", group, "")

    def late_task(self, owner_role: str, week: int) -> None:
        if week >= 0:
            self.overdue.setdefault(owner_role, _weekly(self.weeks))[week] += 1

    def customer_weeks(self, customer_id: str, first_week: int, sent: Counter[int]) -> None:
        """One customer's messages per week; they count in every week from `first_week`
        (the week they appear in) on, with zero messages where none were sent."""
        for week in range(max(first_week, 0), self.weeks):
            self.population[week] += 1
        for week, count in sent.items():
            self.per_customer[week][count] += 1
            if _busier((count, customer_id, week), self.busiest):
                self.busiest = (count, customer_id, week)

    def _grouped(self, what: str, group: Group, rule_id: str) -> None:
        for dimension, value in zip(GROUP_DIMENSIONS, group, strict=True):
            self.groups[(what, dimension, value, rule_id)] += 1

    def merge(self, other: Tally) -> None:
        self.customers += other.customers
        self.events += other.events
        _add_weekly(self.firings, other.firings)
        _add_weekly(self.tasks, other.tasks)
        _add_weekly(self.overdue, other.overdue)
        for name in (
            "held_out",
            "messages",
            "channels",
            "rule_tasks",
            "feedback",
            "groups",
            "outcome_base",
        ):
            getattr(self, name).update(getattr(other, name))
        for week in range(self.weeks):
            self.per_customer[week].update(other.per_customer[week])
            self.population[week] += other.population[week]
        for rule_id, counts in other.churn.items():
            self.churn.setdefault(rule_id, Counter()).update(counts)
        if _busier(other.busiest, self.busiest):
            self.busiest = other.busiest
        if self.journal is not None and other.journal is not None:
            self.journal.merge(other.journal)


@dataclass
class Journal:
    """One row per firing, message and task of a replay, warm-up included: what live
    would have recorded in `rule_firings`, `outbox_messages` and `staff_tasks`."""

    firings: list[tuple[str, str, datetime, str | None, bool]] = field(default_factory=list)
    messages: dict[str, tuple[str, str | None, datetime]] = field(default_factory=dict)
    tasks: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # owner role, due

    def decided(self, key: str, decision: Decision, now: datetime) -> None:
        """A message's latest guard decision: how its outbox row would stand."""
        outcome = {"send": "sent", "defer": "deferred"}.get(decision.outcome)
        at = decision.send_at or now
        self.messages[key] = (outcome or f"suppressed:{decision.code}", decision.channel, at)

    def opened(self, task: PlannedTask) -> None:
        self.tasks[task.key] = (task.owner_role, task.due_at)

    def merge(self, other: Journal) -> None:
        self.firings.extend(other.firings)
        self.messages.update(other.messages)
        self.tasks.update(other.tasks)

    def sorted_firings(self) -> list[tuple[str, str, datetime, str | None, bool]]:
        """The firings in time order (customer, rule and event break ties)."""
        return sorted(self.firings, key=lambda row: (row[2], row[1], row[0], row[3] or ""))


def _busier(candidate: tuple[int, str, int], current: tuple[int, str, int]) -> bool:
    """More messages in a week, or as many for a customer whose id sorts first (so the
    answer does not depend on the order chunks finish in)."""
    if candidate[0] != current[0]:
        return candidate[0] > current[0]
    return candidate[0] > 0 and candidate[1] < current[1]
