"""The outbox: planned messages, claimed in batches by dispatchers, and their outcomes.

A row moves `pending → sending → sent | failed | suppressed`; a temporary failure or
a guard's deferral (quiet hours, an open complaint) puts it back to `pending` with a
later `due_at`; a message an open complaint holds is due again as soon as the
complaint is resolved (`wake_held`). Claiming is
safe with several dispatchers at once: PostgreSQL skips rows another dispatcher has
locked, SQLite serialises writers. A row whose dispatcher died is claimed again once
its lease expires. Every transition after the claim names the claiming dispatcher,
so a dispatcher whose lease was taken over cannot overwrite the new owner's outcome.
Every settled transition is also written to the journal (`outbox_journal`), the row's
state as it was settled, so a customer's history shows each deferral and attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from storage.dialect import insert_new_keys
from storage.events import event_row
from storage.facts import with_open_complaints
from storage.firings import give_back
from storage.planned import PlannedMessage
from storage.tables import EVENTS, FIRINGS, JOURNAL, MESSAGES

CONTACT_PREFIX = "rapport:"  # the ids of the contact events deliveries record


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    key: str
    customer_id: str
    rule_id: str
    template: str
    channels: tuple[str, ...]
    purpose: str
    event_id: str | None
    attempts: int
    held_since: datetime | None


def store_messages(
    connection: Connection, planned: list[PlannedMessage], created_at: datetime
) -> int:
    """Adds planned messages; a key already in the outbox is skipped, unless a hold
    suppressed it and gave its firing's re-entry back: the rule fired again, so that
    message is planned again (`replan`). Returns how many are new or planned again."""
    replanned = replan(connection, planned, created_at)
    rows = [
        {
            "key": p.key,
            "customer_id": p.customer_id,
            "rule_id": p.rule_id,
            "channels": ",".join(p.channels),
            "template": p.template,
            "purpose": p.purpose,
            "event_id": p.event_id,
            "firing_id": p.firing_id,
            "status": "pending",
            "due_at": p.due_at,
            "attempts": 0,
            "created_at": created_at,
        }
        for p in planned
    ]
    return replanned + insert_new_keys(connection, MESSAGES, rows)


_REPLAN = (
    update(MESSAGES)
    .where(
        MESSAGES.c.key == bindparam("planned_key"),
        MESSAGES.c.status == "suppressed",
        MESSAGES.c.firing_id.in_(select(FIRINGS.c.id).where(FIRINGS.c.suppressed)),
    )
    .values(
        status="pending",
        due_at=bindparam("due"),
        firing_id=bindparam("firing"),
        held_since=None,
        reason=literal("planned again, after ") + MESSAGES.c.reason,
        created_at=bindparam("at"),
    )
)


def replan(connection: Connection, planned: list[PlannedMessage], created_at: datetime) -> int:
    """Puts messages a hold suppressed back to pending when their rule fired again (the
    key is the same: the same message for the same re-entry period). The reason keeps
    the earlier suppression until the guards decide again."""
    if not planned:
        return 0
    parameters = [
        {"planned_key": p.key, "due": p.due_at, "firing": p.firing_id, "at": created_at}
        for p in planned
    ]
    return connection.execute(_REPLAN, parameters).rowcount


def claim_due(
    engine: Engine, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedMessage]:
    """Takes up to `limit` due rows (and rows whose lease expired) for `worker`."""
    due = or_(
        and_(MESSAGES.c.status == "pending", MESSAGES.c.due_at <= now),
        and_(MESSAGES.c.status == "sending", MESSAGES.c.lease_until < now),
    )
    candidates = (
        select(MESSAGES.c.id).where(due).order_by(MESSAGES.c.due_at, MESSAGES.c.id).limit(limit)
    )
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        claimed = connection.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id.in_(candidates.scalar_subquery()))
            .values(
                status="sending",
                claimed_by=worker,
                lease_until=now + lease,
                attempts=MESSAGES.c.attempts + 1,
            )
            .returning(
                MESSAGES.c.id,
                MESSAGES.c.key,
                MESSAGES.c.customer_id,
                MESSAGES.c.rule_id,
                MESSAGES.c.template,
                MESSAGES.c.channels,
                MESSAGES.c.purpose,
                MESSAGES.c.event_id,
                MESSAGES.c.attempts,
                MESSAGES.c.held_since,
            )
        ).all()
    return sorted(
        (
            ClaimedMessage(
                row.id,
                row.key,
                row.customer_id,
                row.rule_id,
                row.template,
                tuple(c for c in row.channels.split(",") if c),
                row.purpose,
                row.event_id,
                row.attempts,
                row.held_since,
            )
            for row in claimed
        ),
        key=lambda message: message.id,
    )


def _settle(
    connection: Connection, message_id: int, worker: str, at: datetime, **values: object
) -> bool:
    """Applies an outcome if `worker` still holds the row, and journals it; False if it
    lost the lease."""
    result = connection.execute(
        update(MESSAGES)
        .where(
            MESSAGES.c.id == message_id,
            MESSAGES.c.claimed_by == worker,
            MESSAGES.c.status == "sending",
        )
        .values(claimed_by=None, lease_until=None, **values)
    )
    if result.rowcount != 1:
        return False
    connection.execute(_JOURNAL, {"message_id": message_id, "at": at})
    return True


# The settled row as the journal keeps it: one statement, built once, reading the
# values the transition has just written.
_JOURNAL = insert(JOURNAL).from_select(
    ["message_id", "at", "status", "channel", "reason", "attempt", "due_at"],
    select(
        MESSAGES.c.id,
        bindparam("at", type_=JOURNAL.c.at.type),
        MESSAGES.c.status,
        MESSAGES.c.channel,
        MESSAGES.c.reason,
        MESSAGES.c.attempts,
        case((MESSAGES.c.status == "pending", MESSAGES.c.due_at)),
    ).where(MESSAGES.c.id == bindparam("message_id")),
)


# Sending is the hot path: its two statements are built once, so SQLAlchemy reuses
# their compiled form (an ON CONFLICT insert would be compiled again every time).
_SENT = (
    update(MESSAGES)
    .where(
        MESSAGES.c.id == bindparam("message_id"),
        MESSAGES.c.claimed_by == bindparam("worker"),
        MESSAGES.c.status == "sending",
    )
    .values(
        status="sent",
        channel=bindparam("channel"),
        reason=bindparam("reply"),
        sent_at=bindparam("at"),
        claimed_by=None,
        lease_until=None,
        last_error=None,
    )
)
_CONTACT = insert(EVENTS).from_select(
    [c.name for c in EVENTS.columns],
    select(*(bindparam(c.name, type_=c.type) for c in EVENTS.columns)).where(
        ~exists().where(EVENTS.c.id == bindparam("id"))
    ),
)


def mark_sent(
    connection: Connection, message_id: int, worker: str, channel: str, reply: str, at: datetime
) -> bool:
    parameters = {
        "message_id": message_id,
        "worker": worker,
        "channel": channel,
        "reply": reply,
        "at": at,
    }
    if connection.execute(_SENT, parameters).rowcount != 1:
        return False
    connection.execute(_JOURNAL, {"message_id": message_id, "at": at})
    return True


def mark_failed(
    connection: Connection,
    message_id: int,
    worker: str,
    at: datetime,
    channel: str | None,
    error: str,
) -> bool:
    """A permanent failure: never retried."""
    return _settle(
        connection,
        message_id,
        worker,
        at,
        status="failed",
        channel=channel,
        last_error=error,
        reason=error,
    )


def mark_suppressed(
    connection: Connection,
    message_id: int,
    worker: str,
    at: datetime,
    reason: str,
    held: bool = False,
) -> bool:
    """Suppressed for `reason`; `held`: by a hold, which gives re-entry back once the
    firing has nothing else outstanding (`storage.firings.give_back`)."""
    settled = _settle(connection, message_id, worker, at, status="suppressed", reason=reason)
    if settled and held:
        firing = select(MESSAGES.c.firing_id).where(MESSAGES.c.id == message_id)
        give_back(connection, connection.scalar(firing))
    return settled


def postpone(
    connection: Connection,
    message_id: int,
    worker: str,
    at: datetime,
    until: datetime,
    reason: str,
    error: str | None = None,
    held_since: datetime | None = None,
) -> bool:
    """Back to pending, due at `until`: a guard's deferral or a retry after backoff
    (`held_since`: when an open complaint first held it, kept once set)."""
    held = {"held_since": held_since} if held_since is not None else {}
    return _settle(
        connection,
        message_id,
        worker,
        at,
        status="pending",
        due_at=until,
        reason=reason,
        last_error=error,
        **held,
    )


def wake_held(connection: Connection, code: str, now: datetime) -> int:
    """Messages held for an open complaint (pending, not due yet, their reason starting
    with `code`) whose customer has no open complaint any more are due `now`, so the
    dispatcher decides them again at once. Returns how many.

    Open complaints are counted as the `open_complaints` fact counts them, so a woken
    message is never held again by the same complaint."""
    held = and_(
        MESSAGES.c.status == "pending",
        MESSAGES.c.due_at > now,
        MESSAGES.c.reason.startswith(f"{code}:", autoescape=True),
    )
    customers = list(connection.scalars(select(MESSAGES.c.customer_id).where(held).distinct()))
    if not customers:
        return 0
    resolved = set(customers) - with_open_complaints(connection, now, customers)
    if not resolved:
        return 0
    woken = update(MESSAGES).where(held, MESSAGES.c.customer_id.in_(sorted(resolved)))
    return connection.execute(woken.values(due_at=now)).rowcount


def record_contact(
    connection: Connection, message: ClaimedMessage, channel: str, at: datetime
) -> None:
    """A delivered message is a contact: cadence rules see it like a logged call.

    Called only by the dispatcher whose `mark_sent` succeeded, so once per message;
    the event id is derived from the outbox key and skipped if already stored.
    """
    row = event_row(
        f"{CONTACT_PREFIX}{message.key}",
        message.customer_id,
        "contact",
        at,
        at,
        {"outbox_key": message.key},
        channel=channel,
        text=f"{message.template} ({message.rule_id})",
    )
    connection.execute(_CONTACT, row)


def capped_sent_since(
    connection: Connection, customer_ids: list[str], since: datetime, purposes: Sequence[str]
) -> dict[str, int]:
    """Messages of the purposes the frequency cap counts delivered to each customer
    since `since`."""
    query = (
        select(MESSAGES.c.customer_id, func.count())
        .where(
            MESSAGES.c.customer_id.in_(customer_ids),
            MESSAGES.c.status == "sent",
            MESSAGES.c.purpose.in_(list(purposes)),
            MESSAGES.c.sent_at > since,
        )
        .group_by(MESSAGES.c.customer_id)
    )
    return {customer: count for customer, count in connection.execute(query)}


def count_due(connection: Connection, now: datetime) -> int:
    """Messages due at `now` (what a dispatch run is about to go through)."""
    query = select(func.count()).where(MESSAGES.c.status == "pending", MESSAGES.c.due_at <= now)
    return int(connection.scalar(query) or 0)
