"""Rule firings: the audit of what matched whom, and the history re-entry reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from engine.durations import format_duration
from engine.evaluate import Firing
from engine.model import RuleSet
from storage.dialect import insert_ignoring_conflicts
from storage.tables import FIRINGS


def last_fired(
    connection: Connection, customer_ids: Iterable[str], before: datetime | None = None
) -> dict[tuple[str, str], datetime]:
    """When each rule last fired for each of these customers (before `before`, if given:
    a backtest starts from the history live had reached then)."""
    query = (
        select(FIRINGS.c.rule_id, FIRINGS.c.customer_id, func.max(FIRINGS.c.as_of))
        .where(FIRINGS.c.customer_id.in_(list(customer_ids)))
        .group_by(FIRINGS.c.rule_id, FIRINGS.c.customer_id)
    )
    if before is not None:
        query = query.where(FIRINGS.c.as_of < before)
    return {(rule, customer): at for rule, customer, at in connection.execute(query)}


def admitted(
    firings: list[Firing], ruleset: RuleSet, history: dict[tuple[str, str], datetime]
) -> list[Firing]:
    """The firings their rule's re-entry policy allows, given the stored history; those
    the control group holds out are marked so (they count for re-entry, so treated and
    held-out customers keep the same rhythm)."""
    return [
        replace(firing, held_out=True)
        if ruleset.holds_out(firing.rule_id, firing.customer_id)
        else firing
        for firing in firings
        if ruleset.rule(firing.rule_id).admits(
            history.get((firing.rule_id, firing.customer_id)), firing.as_of
        )
    ]


def record_firings(connection: Connection, firings: list[Firing], created_at: datetime) -> None:
    """Stores firings; one already stored (same rule, customer, time, event) is skipped."""
    if not firings:
        return
    rows = [
        {
            "revision": f.revision,
            "rule_id": f.rule_id,
            "customer_id": f.customer_id,
            "as_of": f.as_of,
            "event_id": f.event_id or "",
            "values": f.values,
            "held_out": f.held_out,
            "created_at": created_at,
        }
        for f in firings
    ]
    statement = insert_ignoring_conflicts(
        connection, FIRINGS, ["revision", "rule_id", "customer_id", "as_of", "event_id"]
    )
    connection.execute(statement, rows)


def firing_json(firing: Firing) -> dict[str, Any]:
    """A firing as plain JSON: durations written back as `7d`."""
    return {
        "rule": firing.rule_id,
        "customer_id": firing.customer_id,
        "as_of": firing.as_of.isoformat(),
        "event_id": firing.event_id,
        "revision": firing.revision,
        "held_out": firing.held_out,
        "values": firing.values,
        "actions": [
            {
                action.name: {
                    key: format_duration(value)
                    if hasattr(value, "total_seconds")
                    else (list(value) if isinstance(value, tuple) else value)
                    for key, value in action.params.items()
                    if value not in (None, ())
                }
            }
            for action in firing.actions
        ],
    }
