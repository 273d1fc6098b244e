"""Small builders for rows the storage tests need, with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert

from storage.events import FIELDS
from storage.tables import CUSTOMERS, EVENTS

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
OPTIONAL_EVENT_FIELDS = FIELDS


def add_customer(engine: Engine, customer_id: str, **fields: Any) -> None:
    values: dict[str, Any] = {
        "id": customer_id,
        "timezone": "Asia/Shanghai",
        "segment": "consumer",
        "locale": "zh-CN",
        "attributes": {},
        **fields,
    }
    with engine.begin() as connection:
        connection.execute(insert(CUSTOMERS), [values])


def add_events(engine: Engine, customer_id: str, *events: dict[str, Any]) -> None:
    """Each event dict needs `type` and `occurred_at`; ids are generated when absent."""
    rows = []
    for number, event in enumerate(events):
        rows.append(
            {
                **dict.fromkeys(OPTIONAL_EVENT_FIELDS),
                "id": event.get("id", f"{customer_id}-{event['type']}-{number}"),
                "customer_id": customer_id,
                "attributes": {},
                "imported_at": NOW,
                **event,
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(EVENTS), rows)
