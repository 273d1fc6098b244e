"""What the relationship report reads from storage, as plain rows without personal data.

Each query reads one kind of record up to the period's end; `rapport/report/measures.py` turns
the rows into measures. Only ids, times, amounts, levels and scores leave this module:
no names, emails, phone numbers or free text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from engine.facts import FactParameters
from storage.facts import iter_customer_facts
from storage.tables import EVENTS, FIRINGS, MESSAGES, TASKS


@dataclass(frozen=True)
class Survey:
    customer_id: str
    at: datetime
    question: str  # "nps" or a satisfaction dimension
    score: int


@dataclass(frozen=True)
class FeedbackItem:
    id: str
    customer_id: str
    at: datetime
    level: str
    first_response_at: datetime | None  # a staff contact about it, or its task closed
    resolved_at: datetime | None  # its `feedback_resolved` event


@dataclass(frozen=True)
class LedgerItem:
    customer_id: str
    status: str  # open or closed (escalated items are followed by their successor)
    due_at: datetime
    created_at: datetime
    closed_at: datetime | None
    accepted: bool  # closed with an acceptance note


@dataclass(frozen=True)
class Work:
    """One message sent or task opened: what relationship spend is made of."""

    customer_id: str
    rule_id: str
    at: datetime
    kind: str  # the message's channel or the task's kind
    is_task: bool


@dataclass(frozen=True)
class RuleMoment:
    """A firing of a rule: when a (possibly held-out) contact was due."""

    customer_id: str
    rule_id: str
    at: datetime
    held_out: bool


@dataclass(frozen=True)
class Sale:
    at: datetime
    amount: float  # a refund is negative
    is_purchase: bool


def purchases(connection: Connection, end: datetime) -> dict[str, list[Sale]]:
    """Every customer's purchases and refunds before `end`, in time order."""
    query = (
        select(EVENTS.c.customer_id, EVENTS.c.occurred_at, EVENTS.c.type, EVENTS.c.amount)
        .where(EVENTS.c.type.in_(("purchase", "refund")), EVENTS.c.occurred_at < end)
        .order_by(EVENTS.c.customer_id, EVENTS.c.occurred_at)
    )
    found: dict[str, list[Sale]] = defaultdict(list)
    for customer, at, kind, amount in connection.execute(query):
        value, bought = float(amount or 0.0), kind == "purchase"
        found[customer].append(Sale(at, value if bought else -value, bought))
    return found


def customer_groups(
    connection: Connection, as_of: datetime, parameters: FactParameters
) -> dict[str, tuple[str, str, str]]:
    """Each customer's tier, segment and lifecycle stage as of `as_of` (from the facts)."""
    return {
        facts["customer_id"]: (facts["tier"], facts["segment"], facts["lifecycle_stage"])
        for facts in iter_customer_facts(connection, as_of, parameters)
    }


def surveys(connection: Connection, start: datetime, end: datetime) -> list[Survey]:
    query = select(
        EVENTS.c.customer_id, EVENTS.c.occurred_at, EVENTS.c.category, EVENTS.c.score
    ).where(
        EVENTS.c.type == "survey",
        EVENTS.c.score.is_not(None),
        EVENTS.c.occurred_at >= start,
        EVENTS.c.occurred_at < end,
    )
    return [
        Survey(customer, at, category or "nps", int(score))
        for customer, at, category, score in connection.execute(query)
    ]


def feedback_items(connection: Connection, start: datetime, end: datetime) -> list[FeedbackItem]:
    """Feedback received in the period with its first response and resolution (seen by
    `end`). A first response is the earliest staff contact logged with `ref` = the item,
    or the closing of a task opened for it (or of the task it was escalated to)."""
    feedback = connection.execute(
        select(EVENTS.c.id, EVENTS.c.customer_id, EVENTS.c.occurred_at, EVENTS.c.level).where(
            EVENTS.c.type == "feedback", EVENTS.c.occurred_at >= start, EVENTS.c.occurred_at < end
        )
    ).all()
    ids = [row.id for row in feedback]
    contacts = _earliest_by_ref(connection, "contact", start, end)
    resolved = _earliest_by_ref(connection, "feedback_resolved", start, end)
    closed = _tasks_closed_for(connection, ids, end)
    items = []
    for item_id, customer, at, level in feedback:
        responses = [t for t in (contacts.get(item_id), closed.get(item_id)) if t is not None]
        items.append(
            FeedbackItem(
                item_id,
                customer,
                at,
                level or "general",
                min(responses) if responses else None,
                resolved.get(item_id),
            )
        )
    return items


def _earliest_by_ref(
    connection: Connection, kind: str, start: datetime, end: datetime
) -> dict[str, datetime]:
    """The first event of `kind` in the period referring to each `ref` (a reply to an
    item received in the period cannot come before the period starts)."""
    query = (
        select(EVENTS.c.ref, func.min(EVENTS.c.occurred_at))
        .where(
            EVENTS.c.type == kind,
            EVENTS.c.occurred_at >= start,
            EVENTS.c.occurred_at < end,
            EVENTS.c.ref.is_not(None),
        )
        .group_by(EVENTS.c.ref)
    )
    return {ref: at for ref, at in connection.execute(query)}


def _tasks_closed_for(
    connection: Connection, feedback_ids: list[str], end: datetime
) -> dict[str, datetime]:
    """When each feedback item's first task (or a task it escalated to) was closed."""
    query = select(TASKS.c.id, TASKS.c.status, TASKS.c.closed_at, TASKS.c.event_id).where(
        TASKS.c.event_id.is_not(None)
    )
    item_of: dict[int, str] = {}  # task id -> the feedback item it serves
    wanted = set(feedback_ids)
    rows = sorted(connection.execute(query), key=lambda row: row.id)  # escalations come later
    earliest: dict[str, datetime] = {}
    for task_id, status, closed_at, event_id in rows:
        item = event_id if event_id in wanted else None
        if item is None and event_id.startswith("overdue:"):
            item = item_of.get(int(event_id.removeprefix("overdue:")))
        if item is None:
            continue
        item_of[task_id] = item
        if status == "closed" and closed_at is not None and closed_at < end:
            earliest[item] = min(closed_at, earliest.get(item, closed_at))
    return earliest


def ledger_items(connection: Connection, end: datetime) -> list[LedgerItem]:
    """Remediation-ledger items opened before `end`, as they stood at `end`."""
    query = select(
        TASKS.c.customer_id,
        TASKS.c.status,
        TASKS.c.due_at,
        TASKS.c.created_at,
        TASKS.c.closed_at,
        TASKS.c.acceptance_note,
    )
    query = query.where(
        TASKS.c.ledger.is_(True), TASKS.c.created_at < end, TASKS.c.status != "escalated"
    )
    items = []
    for customer, status, due_at, created_at, closed_at, note in connection.execute(query):
        closed = status == "closed" and closed_at is not None and closed_at < end
        items.append(
            LedgerItem(
                customer,
                "closed" if closed else "open",
                due_at,
                created_at,
                closed_at if closed else None,
                closed and bool(note),
            )
        )
    return items


def work_done(connection: Connection, start: datetime, end: datetime) -> list[Work]:
    """Messages sent and tasks opened in the period."""
    sent = select(
        MESSAGES.c.customer_id, MESSAGES.c.rule_id, MESSAGES.c.sent_at, MESSAGES.c.channel
    ).where(MESSAGES.c.status == "sent", MESSAGES.c.sent_at >= start, MESSAGES.c.sent_at < end)
    opened = select(TASKS.c.customer_id, TASKS.c.rule_id, TASKS.c.created_at, TASKS.c.kind).where(
        TASKS.c.created_at >= start, TASKS.c.created_at < end
    )
    return [
        Work(customer, rule, at, kind, is_task)
        for query, is_task in ((sent, False), (opened, True))
        for customer, rule, at, kind in connection.execute(query)
    ]


def rule_moments(
    connection: Connection, rule_ids: Iterable[str], start: datetime, end: datetime
) -> list[RuleMoment]:
    """Firings of these rules in the period, held out or not."""
    query = select(
        FIRINGS.c.customer_id, FIRINGS.c.rule_id, FIRINGS.c.as_of, FIRINGS.c.held_out
    ).where(FIRINGS.c.rule_id.in_(list(rule_ids)), FIRINGS.c.as_of >= start, FIRINGS.c.as_of < end)
    return [RuleMoment(*row) for row in connection.execute(query)]
