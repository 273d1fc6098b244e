"""Events Rapport itself records (contacts it made, tasks that went overdue)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from storage.dialect import insert_ignoring_conflicts
from storage.models import Event

EVENTS = Event.__table__  # type: ignore[attr-defined]
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
    }


def record_events(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Inserts events whose id is new; returns how many were."""
    if not rows:
        return 0
    statement = insert_ignoring_conflicts(connection, EVENTS, ["id"]).returning(EVENTS.c.id)
    return len(connection.execute(statement, rows).all())
