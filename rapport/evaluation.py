"""One evaluation run: storage → facts as of T → engine → admitted firings → storage.

Plain functions, so the CLI, the Prefect flows and the tests share them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from sqlalchemy import Engine

from actions.planning import PlannedMessage, PlannedTask, plan_firing
from engine.evaluate import Evaluator, Firing
from engine.model import RuleSet
from storage.facts import iter_customer_facts
from storage.firings import admitted, last_fired, record_firings
from storage.outbox import store_messages
from storage.tasks import store_tasks

BATCH = 1_000


@dataclass
class RunSummary:
    customers: int = 0
    matched: int = 0
    firings: dict[str, int] = field(default_factory=dict)  # admitted, per rule
    messages: int = 0  # new outbox messages
    tasks: int = 0  # new staff tasks


def evaluate_customers(
    engine: Engine,
    ruleset: RuleSet,
    as_of: datetime,
    *,
    record: bool,
    created_at: datetime | None = None,
    customer_ids: list[str] | None = None,
    summary: RunSummary | None = None,
) -> Iterator[Firing]:
    """Yields the firings re-entry admits; with `record`, stores them batch by batch,
    with the messages and tasks they plan (keys make a repeated run add nothing)."""
    evaluator = Evaluator(ruleset)
    summary = summary if summary is not None else RunSummary()
    with engine.connect() as reader:
        snapshots = iter_customer_facts(reader, as_of, ruleset.parameters, customer_ids)
        while batch := list(islice(snapshots, BATCH)):
            summary.customers += len(batch)
            firings = [f for facts in batch for f in evaluator.evaluate(facts, as_of)]
            summary.matched += len(firings)
            if not firings:
                continue
            with engine.begin() as writer:
                history = last_fired(writer, {f.customer_id for f in firings})
                kept = admitted(firings, ruleset, history)
                if record:
                    record_firings(writer, kept, created_at or as_of)
                    planned = [p for f in kept for p in plan_firing(ruleset.rule(f.rule_id), f)]
                    at = created_at or as_of
                    summary.messages += store_messages(
                        writer, [p for p in planned if isinstance(p, PlannedMessage)], at
                    )
                    summary.tasks += store_tasks(
                        writer, [p for p in planned if isinstance(p, PlannedTask)], at
                    )
            for firing in kept:
                summary.firings[firing.rule_id] = summary.firings.get(firing.rule_id, 0) + 1
            yield from kept
