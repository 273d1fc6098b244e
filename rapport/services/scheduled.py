"""One evaluation run: storage → facts as of T → engine → admitted firings → storage.

Plain functions, so the CLI, the Prefect flows and the tests share them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice

from sqlalchemy import Connection, Engine

from actions.planning import plan_firing
from engine.evaluate import Evaluator, Firing
from engine.model import RuleSet
from storage.events import store_steps
from storage.facts import iter_customer_facts
from storage.firings import admitted, identity, last_fired, record_firings
from storage.outbox import store_messages
from storage.planned import PlannedMessage, PlannedStep, PlannedTask
from storage.tasks import store_tasks

BATCH = 1_000

# Called in each batch's write transaction with what that batch added: a sharded run
# keeps its figures there (`storage.shards`), exact even when a shard runs again.
Tally = Callable[[Connection, "RunSummary"], None]


@dataclass
class RunSummary:
    customers: int = 0
    matched: int = 0
    firings: dict[str, int] = field(default_factory=dict)  # admitted, per rule
    messages: int = 0  # new outbox messages
    tasks: int = 0  # new staff tasks

    def add(self, other: RunSummary) -> None:
        self.customers += other.customers
        self.matched += other.matched
        self.messages += other.messages
        self.tasks += other.tasks
        for rule, count in other.firings.items():
            self.firings[rule] = self.firings.get(rule, 0) + count

    def count(self, firings: list[Firing]) -> None:
        for firing in firings:
            self.firings[firing.rule_id] = self.firings.get(firing.rule_id, 0) + 1


def evaluate_customers(
    engine: Engine,
    ruleset: RuleSet,
    as_of: datetime,
    *,
    record: bool,
    created_at: datetime | None = None,
    customer_ids: list[str] | None = None,
    summary: RunSummary | None = None,
    evaluator: Evaluator | None = None,
    tally: Tally | None = None,
) -> Iterator[Firing]:
    """Yields the firings re-entry admits; with `record`, stores them batch by batch,
    with the messages and tasks they plan (keys make a repeated run add nothing), and
    passes what each batch added to `tally` in the same transaction.
    Pass `evaluator` to reuse a compiled engine across calls."""
    evaluator = evaluator or Evaluator(ruleset)
    summary = summary if summary is not None else RunSummary()
    with engine.connect() as reader:
        snapshots = iter_customer_facts(reader, as_of, ruleset.parameters, customer_ids)
        while batch := list(islice(snapshots, BATCH)):
            summary.customers += len(batch)
            firings = [f for facts in batch for f in evaluator.evaluate(facts, as_of)]
            summary.matched += len(firings)
            if not firings:
                continue
            added = RunSummary()
            with engine.begin() as writer:
                kept = admit(writer, ruleset, firings)
                added.count(kept)
                if record:
                    apply_firings(writer, ruleset, kept, created_at or as_of, added)
                    if tally is not None:
                        tally(writer, added)
            summary.add(added)
            yield from kept


def admit(writer: Connection, ruleset: RuleSet, firings: list[Firing]) -> list[Firing]:
    """The firings their rules' re-entry lets through, given the stored history."""
    history = last_fired(writer, {f.customer_id for f in firings})
    return admitted(firings, ruleset, history)


def apply_firings(
    writer: Connection, ruleset: RuleSet, firings: list[Firing], at: datetime, summary: RunSummary
) -> None:
    """Records admitted firings and what they plan: outbox messages, staff tasks
    (escalations take over their overdue task) and later steps (`step_due` events).
    A held-out firing (control group) is recorded and plans nothing. Messages remember
    their firing, which re-entry stops counting if a hold suppresses them all."""
    ids = record_firings(writer, firings, at)
    planned = [
        p
        for f in firings
        if not f.held_out
        for p in plan_firing(ruleset.rule(f.rule_id), f, ruleset.policy.service_levels)
    ]
    firing_of = {(f.rule_id, f.customer_id, f.event_id): ids.get(identity(f)) for f in firings}
    messages = [
        replace(p, firing_id=firing_of[(p.rule_id, p.customer_id, p.event_id)])
        for p in planned
        if isinstance(p, PlannedMessage)
    ]
    summary.messages += store_messages(writer, messages, at)
    summary.tasks += store_tasks(writer, [p for p in planned if isinstance(p, PlannedTask)], at)
    store_steps(writer, [p for p in planned if isinstance(p, PlannedStep)], at)
