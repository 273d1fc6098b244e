"""Rule firings: the audit of what matched whom, and the history re-entry reads.

Re-entry counts what went out: a firing whose every planned message a hold suppressed
(the frequency cap, or the complaint hold's limit) is marked `suppressed` by the
dispatcher and does not count, so its rule may fire again (see `storage.outbox`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, func, select, update

from engine.durations import format_duration
from engine.evaluate import Firing
from engine.model import RuleSet
from storage.dialect import insert_ignoring_conflicts
from storage.tables import FIRINGS, MESSAGES


def last_fired(
    connection: Connection, customer_ids: Iterable[str], before: datetime | None = None
) -> dict[tuple[str, str], datetime]:
    """When each rule last fired for each of these customers, leaving out firings a hold
    suppressed (before `before`, if given: a backtest starts from the history live had
    reached then)."""
    query = (
        select(FIRINGS.c.rule_id, FIRINGS.c.customer_id, func.max(FIRINGS.c.as_of))
        .where(FIRINGS.c.customer_id.in_(list(customer_ids)), FIRINGS.c.suppressed.is_(False))
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


FiringIdentity = tuple[str, str, datetime, str]  # rule, customer, as of, event ("" if none)


def identity(firing: Firing) -> FiringIdentity:
    return firing.rule_id, firing.customer_id, firing.as_of, firing.event_id or ""


def record_firings(
    connection: Connection, firings: list[Firing], created_at: datetime
) -> dict[FiringIdentity, int]:
    """Stores firings; one already stored (same rule, customer, time, event) is skipped.
    Returns the ids of those stored now, by `identity`."""
    if not firings:
        return {}
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
    ).returning(
        FIRINGS.c.id, FIRINGS.c.rule_id, FIRINGS.c.customer_id, FIRINGS.c.as_of, FIRINGS.c.event_id
    )
    return {
        (row.rule_id, row.customer_id, row.as_of, row.event_id): row.id
        for row in connection.execute(statement, rows)
    }


def give_back(connection: Connection, firing_id: int | None) -> None:
    """A hold suppressed a message of this firing: once every message it planned is
    suppressed, the firing stops counting for re-entry."""
    if firing_id is None:
        return
    outstanding = exists().where(
        MESSAGES.c.firing_id == firing_id, MESSAGES.c.status != "suppressed"
    )
    connection.execute(
        update(FIRINGS).where(FIRINGS.c.id == firing_id, ~outstanding).values(suppressed=True)
    )


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
