"""Event rules at work: events → facts of their customers → engine → outbox.

Event rules react to events once, soon after they happen: a first purchase, a
complaint, a survey answer, a task gone overdue (raised by the SLA watch), a step
planned earlier that has come due. Each event is marked when the rules have reacted to
it (whether or not any fired), so a reaction never repeats. Events older than the
reaction window when they reach Rapport are history: they shape the facts, but no
event rule fires for them (a year of imported purchases sends no thank-you notes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.engine import RowMapping

from engine.evaluate import Evaluator
from engine.model import RuleSet
from rapport.services.scheduled import RunSummary, admit, apply_firings
from storage.events import event_fields, events_by_id, mark_reacted, pending_reactions
from storage.facts import iter_customer_facts

WINDOW = timedelta(days=3)
CHUNK = 500


def react_to_events(
    engine: Engine,
    ruleset: RuleSet,
    as_of: datetime,
    *,
    event_ids: Sequence[str] | None = None,
    window: timedelta = WINDOW,
    summary: RunSummary | None = None,
    record: bool = True,
) -> RunSummary:
    """Runs the event rules on `event_ids` (just ingested or raised), or on every event
    not reacted to yet; either way only on events that happened within `window` before
    `as_of` — one reaction window for the API, the ingest flow and `rapport run`.
    Without `record` (dry runs) the firings re-entry admits are counted, nothing written."""
    summary = summary if summary is not None else RunSummary()
    types = sorted({r.event for r in ruleset.enabled if r.event is not None})
    with engine.connect() as connection:
        if event_ids is None:
            rows = pending_reactions(connection, types, as_of, as_of - window)
        else:
            found = events_by_id(connection, list(event_ids))
            rows = [
                row
                for row in found.values()
                if row["reacted_at"] is None
                and row["type"] in types
                and as_of - window <= row["occurred_at"] <= as_of
            ]
            rows.sort(key=lambda row: (row["occurred_at"], row["id"]))
    evaluator = Evaluator(ruleset)
    for start in range(0, len(rows), CHUNK):
        _react(engine, ruleset, evaluator, rows[start : start + CHUNK], as_of, summary, record)
    return summary


def _react(
    engine: Engine,
    ruleset: RuleSet,
    evaluator: Evaluator,
    rows: list[RowMapping],
    as_of: datetime,
    summary: RunSummary,
    record: bool,
) -> None:
    """One chunk: facts as of now for its customers, each event through the engine,
    firings recorded and events marked in one transaction (with `record`)."""
    customers = sorted({row["customer_id"] for row in rows})
    with engine.connect() as connection:
        facts = {
            f["customer_id"]: f
            for f in iter_customer_facts(connection, as_of, ruleset.parameters, customers)
        }
    firings = [
        firing
        for row in rows
        for firing in evaluator.evaluate_event(facts[row["customer_id"]], event_fields(row), as_of)
    ]
    summary.customers += len(customers)
    summary.matched += len(firings)
    if not record:
        with engine.connect() as reader:
            summary.count(admit(reader, ruleset, firings) if firings else [])
        return
    with engine.begin() as writer:
        kept = admit(writer, ruleset, firings) if firings else []
        apply_firings(writer, ruleset, kept, as_of, summary)
        mark_reacted(writer, [row["id"] for row in rows], as_of)
    summary.count(kept)
