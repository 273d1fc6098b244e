"""One cycle as the schedules run it, for `rapport run`: react to the events waiting,
watch the SLAs, evaluate the scheduled rules, then deliver what is due.

The flows run the same steps on their own schedules (`ingest-events`, `watch-sla`,
`evaluate-rules`, `dispatch-outbox`); this runs them once, in that order, as of one
moment, so operations can drive a day from the command line (`--as-of`) and see what
each step did. A dry run writes nothing and sends nothing: it shows the reactions and
firings that are pending and the tasks that would be escalated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from actions.dispatch import DispatchReport
from engine.model import RuleSet
from rapport.services.reactions import react_to_events
from rapport.services.scheduled import RunSummary, evaluate_customers
from storage.tasks import open_tasks_by_owner, raise_overdue_events


@dataclass
class CycleReport:
    """What each step of one cycle did (or, in a dry run, would do)."""

    reactions: RunSummary = field(default_factory=RunSummary)
    overdue: int = 0  # tasks past their deadline: escalation events raised (or due)
    escalations: RunSummary = field(default_factory=RunSummary)
    evaluation: RunSummary = field(default_factory=RunSummary)
    delivery: DispatchReport | None = None  # None in a dry run


def run_cycle(
    engine: Engine,
    ruleset: RuleSet,
    as_of: datetime,
    *,
    dry_run: bool,
    deliver: Callable[[], DispatchReport],
    created_at: datetime,
) -> CycleReport:
    """The four steps in schedule order; `deliver` dispatches what is due (not called in
    a dry run)."""
    record = not dry_run
    report = CycleReport()
    react_to_events(engine, ruleset, as_of, summary=report.reactions, record=record)
    if record:
        with engine.begin() as connection:
            overdue = raise_overdue_events(connection, as_of)
        report.overdue = len(overdue)
        if overdue:
            react_to_events(engine, ruleset, as_of, event_ids=overdue, summary=report.escalations)
    else:
        with engine.connect() as connection:
            report.overdue = sum(open_tasks_by_owner(connection, as_of)[1].values())
    for _ in evaluate_customers(
        engine, ruleset, as_of, record=record, created_at=created_at, summary=report.evaluation
    ):
        pass
    if record:
        report.delivery = deliver()
    return report
