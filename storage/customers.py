"""Customer rows (contact details, consents) by id: reading them, withdrawing a consent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select, update

from storage.tables import CUSTOMERS


def customer_rows(connection: Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of these customers, by id (unknown ids are absent)."""
    query = select(CUSTOMERS).where(CUSTOMERS.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in connection.execute(query).mappings()}


def customer_ids(connection: Connection) -> list[str]:
    """Every customer id, in order."""
    return list(connection.scalars(select(CUSTOMERS.c.id).order_by(CUSTOMERS.c.id)))


def customer_count(connection: Connection) -> int:
    """How many customers there are (what a run over all of them goes through)."""
    return int(connection.scalar(select(func.count()).select_from(CUSTOMERS)) or 0)


def customer_id_batches(connection: Connection, size: int) -> list[list[str]]:
    """Every customer id in order, cut into batches of `size` (the units of a run)."""
    ids = customer_ids(connection)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def withdraw_consent(connection: Connection, customer_id: str, channel: str) -> bool:
    """Marks the customer as no longer consenting to `channel` (a message channel, e.g.
    after an unsubscribe); False when no customer has that id."""
    query = (
        update(CUSTOMERS).where(CUSTOMERS.c.id == customer_id).values({f"consent_{channel}": False})
    )
    return bool(connection.execute(query).rowcount)
