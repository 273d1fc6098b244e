"""What the backtest reads from storage: customers, their events and live state.

Read-only: only SELECT statements. Per customer it returns what the facts, the guards
and the outcome figures need — ids, times, amounts, types, levels, categories, scores,
consents — and never names or free text; addresses are read only so that the caller
can tell whether there is one.

Events Rapport raised itself (contacts it delivered, `task_overdue`, `step_due`) are
read only when recorded before the replay begins: from then on the replay raises its
own, from the rules under test (see `rapport/backtest/history.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, func, not_, or_, select
from sqlalchemy.engine import RowMapping

from storage.events import ANSWERS, FIELDS
from storage.facts import PROFILE_COLUMNS
from storage.outbox import CONTACT_PREFIX
from storage.tables import CUSTOMERS, EVENTS, MESSAGES

GENERATED_TYPES = ("task_overdue", "step_due")
HISTORY_FIELDS = tuple(name for name in FIELDS if name != "text")  # no free text
ADDRESSES = ("email", "phone", "wechat")


def history_end(connection: Connection) -> datetime | None:
    """The latest moment anything is known about: the last event from outside Rapport."""
    found: datetime | None = connection.scalar(
        select(func.max(EVENTS.c.occurred_at)).where(not_(_generated()))
    )
    return found


def _generated() -> ColumnElement[bool]:
    """Events Rapport raised itself rather than imported."""
    return or_(
        EVENTS.c.type.in_(GENERATED_TYPES),
        EVENTS.c.id.startswith(CONTACT_PREFIX, autoescape=True),
    )


def customer_profiles(connection: Connection, ids: Sequence[str]) -> list[RowMapping]:
    """These customers' profiles: what the facts read, when the customer was created,
    their attributes and their addresses (`ADDRESSES`)."""
    query = select(
        *PROFILE_COLUMNS,
        CUSTOMERS.c.created_at,
        CUSTOMERS.c.attributes,
        *(CUSTOMERS.c[name] for name in ADDRESSES),
    ).where(CUSTOMERS.c.id.in_(list(ids)))
    return list(connection.execute(query).mappings())


def customer_events(
    connection: Connection, ids: Sequence[str], replay_begins: datetime
) -> list[RowMapping]:
    """These customers' events by customer and time, without free text; events Rapport
    raised are left out when recorded at or after `replay_begins`."""
    query = (
        select(
            EVENTS.c.id,
            EVENTS.c.customer_id,
            EVENTS.c.type,
            EVENTS.c.occurred_at,
            EVENTS.c.attributes,
            *(EVENTS.c[name] for name in HISTORY_FIELDS),
        )
        .where(EVENTS.c.customer_id.in_(list(ids)))
        .where(not_(and_(_generated(), EVENTS.c.imported_at >= replay_begins)))
        .order_by(EVENTS.c.customer_id, EVENTS.c.occurred_at, EVENTS.c.id)
    )
    return list(connection.execute(query).mappings())


def feedback_responses(
    connection: Connection, ids: Sequence[str]
) -> list[tuple[str, str, datetime]]:
    """For these customers' feedback items, the first `contact` and the first
    `feedback_resolved` event referring to each: (item id, event type, when)."""
    items = select(EVENTS.c.id).where(
        EVENTS.c.customer_id.in_(list(ids)), EVENTS.c.type == "feedback"
    )
    query = (
        select(EVENTS.c.ref, EVENTS.c.type, func.min(EVENTS.c.occurred_at))
        .where(
            EVENTS.c.ref.in_(items.scalar_subquery()),
            EVENTS.c.type.in_(ANSWERS),
        )
        .group_by(EVENTS.c.ref, EVENTS.c.type)
    )
    return [(ref, kind, at) for ref, kind, at in connection.execute(query)]


def capped_deliveries(
    connection: Connection, ids: Sequence[str], after: datetime, before: datetime
) -> list[tuple[str, datetime, str]]:
    """Messages a frequency cap may count (every purpose but service) delivered to these
    customers in (after, before): (customer, when, purpose)."""
    query = select(MESSAGES.c.customer_id, MESSAGES.c.sent_at, MESSAGES.c.purpose).where(
        MESSAGES.c.customer_id.in_(list(ids)),
        MESSAGES.c.status == "sent",
        MESSAGES.c.purpose != "service",
        MESSAGES.c.sent_at < before,
        MESSAGES.c.sent_at > after,
    )
    return [(customer, at, purpose) for customer, at, purpose in connection.execute(query)]


def next_purchases(
    connection: Connection, after: datetime, until: datetime
) -> dict[str, tuple[datetime, str]]:
    """Each customer's first purchase in (after, until], with the customer's timezone: who
    bought again within a churn horizon, and when (the ranking's outcomes)."""
    first = func.min(EVENTS.c.occurred_at)
    query = (
        select(EVENTS.c.customer_id, first, CUSTOMERS.c.timezone)
        .join(CUSTOMERS, CUSTOMERS.c.id == EVENTS.c.customer_id)
        .where(
            EVENTS.c.type == "purchase",
            EVENTS.c.occurred_at > after,
            EVENTS.c.occurred_at <= until,
        )
        .group_by(EVENTS.c.customer_id, CUSTOMERS.c.timezone)
    )
    return {customer: (at, zone) for customer, at, zone in connection.execute(query)}
