"""Everything stored about what happened to one customer and what Rapport did about it:
events, rule firings, outbox messages with their journal, staff tasks.

Read-only, one query per table, filtered by customer (each table has an index that
starts with the customer or the message). Free text (an event's `text`) is read only
when the caller asks for it; contact details are never read here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from storage.events import FIELDS
from storage.tables import EVENTS, FIRINGS, JOURNAL, MESSAGES, TASKS


@dataclass(frozen=True)
class StoredHistory:
    events: list[RowMapping]
    firings: list[RowMapping]
    messages: list[RowMapping]
    journal: dict[int, list[RowMapping]]  # message id -> its settled transitions, in order
    tasks: list[RowMapping]


def stored_history(
    connection: Connection, customer_id: str, since: datetime | None, with_text: bool
) -> StoredHistory:
    """The customer's rows from `since` on (all when None). A message or task belongs
    when it was planned since, or anything happened to it since."""
    fields = [EVENTS.c[name] for name in FIELDS if with_text or name != "text"]
    events = select(
        EVENTS.c.id, EVENTS.c.type, EVENTS.c.occurred_at, *fields, EVENTS.c.attributes
    ).where(EVENTS.c.customer_id == customer_id)
    firings = select(FIRINGS).where(FIRINGS.c.customer_id == customer_id)
    messages = select(MESSAGES).where(MESSAGES.c.customer_id == customer_id)
    tasks = select(TASKS).where(TASKS.c.customer_id == customer_id)
    if since is not None:
        events = events.where(EVENTS.c.occurred_at >= since)
        firings = firings.where(FIRINGS.c.as_of >= since)
        touched = select(JOURNAL.c.message_id).where(JOURNAL.c.at >= since)
        messages = messages.where(
            (MESSAGES.c.created_at >= since) | MESSAGES.c.id.in_(touched.scalar_subquery())
        )
        tasks = tasks.where((TASKS.c.created_at >= since) | (TASKS.c.closed_at >= since))
    message_rows = connection.execute(messages.order_by(MESSAGES.c.id)).mappings().all()
    journal: dict[int, list[RowMapping]] = defaultdict(list)
    if message_rows:
        entries = (
            select(JOURNAL)
            .where(JOURNAL.c.message_id.in_([m["id"] for m in message_rows]))
            .order_by(JOURNAL.c.at, JOURNAL.c.id)
        )
        for entry in connection.execute(entries).mappings():
            journal[entry["message_id"]].append(entry)
    return StoredHistory(
        events=list(connection.execute(events.order_by(EVENTS.c.occurred_at)).mappings()),
        firings=list(connection.execute(firings.order_by(FIRINGS.c.as_of)).mappings()),
        messages=list(message_rows),
        journal=dict(journal),
        tasks=list(connection.execute(tasks.order_by(TASKS.c.id)).mappings()),
    )
