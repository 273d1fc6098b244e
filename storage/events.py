"""Events Rapport itself records (contacts it made, tasks that went overdue), and the
look-ups delivery and reactions make on stored events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.engine import RowMapping

from engine.vocabulary import EVENT_TYPES
from storage.dialect import insert_ignoring_conflicts
from storage.planned import PlannedStep
from storage.tables import EVENTS

ANSWERS = ("contact", "feedback_resolved")
"""Events that answer a feedback item when their `ref` names it (a logged phone call,
a reply, the resolution): its tasks' deadlines are met and escalation stops, live
(`storage.tasks.raise_overdue_events`) and in the backtest (`feedback_responses`)."""

FIELDS = ("amount", "quantity", "product", "channel", "level", "category", "score", "ref", "text")


def event_row(
    event_id: str,
    customer_id: str,
    kind: str,
    occurred_at: datetime,
    recorded_at: datetime,
    attributes: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A full events row: every optional field present, None unless given."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not event fields: {sorted(unknown)}")
    return {
        **dict.fromkeys(FIELDS),
        **fields,
        "id": event_id,
        "customer_id": customer_id,
        "type": kind,
        "occurred_at": occurred_at,
        "attributes": attributes or {},
        "imported_at": recorded_at,
        "reacted_at": None,
    }


def record_events(connection: Connection, rows: list[dict[str, Any]]) -> list[str]:
    """Inserts events whose id is new; returns their ids."""
    if not rows:
        return []
    statement = insert_ignoring_conflicts(connection, EVENTS, ["id"]).returning(EVENTS.c.id)
    return list(connection.execute(statement, rows).scalars())


def event_fields(row: RowMapping) -> dict[str, Any]:
    """An event as rules and templates see it: its id, type, customer and time, and
    every field of its type (from its column, else its attributes; None when absent)."""
    kind = EVENT_TYPES.get(row["type"])
    attributes = row["attributes"] or {}
    fields = {
        f.name: row[f.name] if f.name in FIELDS else attributes.get(f.name)
        for f in (kind.fields if kind else ())
    }
    return {
        "id": row["id"],
        "type": row["type"],
        "customer_id": row["customer_id"],
        "occurred_at": row["occurred_at"],
        **fields,
    }


def events_by_id(connection: Connection, ids: list[str]) -> dict[str, RowMapping]:
    if not ids:
        return {}
    rows = connection.execute(select(EVENTS).where(EVENTS.c.id.in_(ids))).mappings()
    return {row["id"]: row for row in rows}


def products_bought(
    connection: Connection, customer_ids: list[str], before: datetime
) -> dict[str, frozenset[str]]:
    """The products each customer bought up to `before`: the cross-sell message
    suggests only what they do not own yet."""
    if not customer_ids:
        return {}
    rows = connection.execute(
        select(EVENTS.c.customer_id, EVENTS.c.product)
        .where(
            EVENTS.c.customer_id.in_(customer_ids),
            EVENTS.c.type == "purchase",
            EVENTS.c.occurred_at <= before,
            EVENTS.c.product.is_not(None),
        )
        .distinct()
    )
    owned: dict[str, set[str]] = {}
    for customer_id, product in rows:
        owned.setdefault(customer_id, set()).add(product)
    return {customer_id: frozenset(products) for customer_id, products in owned.items()}


def pending_reactions(
    connection: Connection, types: list[str], as_of: datetime, since: datetime
) -> list[RowMapping]:
    """Events of `types` that happened in (since, as_of] and no rule has reacted to yet
    (recent arrivals by file, steps that came due), oldest first."""
    query = (
        select(EVENTS)
        .where(
            EVENTS.c.type.in_(types),
            EVENTS.c.occurred_at > since,
            EVENTS.c.occurred_at <= as_of,
            EVENTS.c.reacted_at.is_(None),
        )
        .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
    )
    return list(connection.execute(query).mappings())


def mark_reacted(connection: Connection, ids: list[str], at: datetime) -> None:
    if ids:
        connection.execute(update(EVENTS).where(EVENTS.c.id.in_(ids)).values(reacted_at=at))


def store_steps(connection: Connection, steps: list[PlannedStep], at: datetime) -> int:
    """`step_due` events for planned steps, due later; a step planned twice is stored once."""
    rows = [
        event_row(f"step:{s.key}", s.customer_id, "step_due", s.due_at, at, {"step": s.step})
        for s in steps
    ]
    return len(record_events(connection, rows))
