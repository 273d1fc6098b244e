"""What `rapport demo` counts in the database after its run: only ids, rules, channels,
roles and statuses, never who a customer is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, func, select

from storage.tables import FIRINGS, MESSAGES, TASKS


@dataclass(frozen=True)
class RuleCount:
    rule_id: str
    since: int  # firings after the id given
    total: int


@dataclass(frozen=True)
class StatusCount:
    key: str | None  # the channel or owner role; None when not chosen yet
    status: str
    count: int


@dataclass(frozen=True)
class LedgerEntry:
    task_id: int
    customer_id: str
    kind: str
    owner_role: str
    due_at: datetime


def last_firing_id(connection: Connection) -> int:
    """The newest firing's id (0 when there is none): firings after it are a later run's."""
    return int(connection.scalar(select(func.max(FIRINGS.c.id))) or 0)


def firings_per_rule(connection: Connection, after_id: int) -> list[RuleCount]:
    """Firings per rule, those after `after_id` and all, the rule firing most first."""
    query = (
        select(FIRINGS.c.rule_id, func.count().filter(FIRINGS.c.id > after_id), func.count())
        .group_by(FIRINGS.c.rule_id)
        .order_by(func.count().desc(), FIRINGS.c.rule_id)
    )
    return [RuleCount(*row) for row in connection.execute(query)]


def messages_per_channel(connection: Connection) -> list[StatusCount]:
    """Outbox messages per chosen channel and status."""
    return _per_status(connection, MESSAGES, "channel")


def tasks_per_owner_role(connection: Connection) -> list[StatusCount]:
    """Staff tasks per owner role and status."""
    return _per_status(connection, TASKS, "owner_role")


def _per_status(connection: Connection, table: Table, key: str) -> list[StatusCount]:
    query = select(table.c[key], table.c.status, func.count()).group_by(
        table.c[key], table.c.status
    )
    return [StatusCount(*row) for row in connection.execute(query)]


def open_ledger(connection: Connection) -> list[LedgerEntry]:
    """Open remediation-ledger items, soonest due first."""
    query = (
        select(TASKS.c.id, TASKS.c.customer_id, TASKS.c.kind, TASKS.c.owner_role, TASKS.c.due_at)
        .where(TASKS.c.ledger.is_(True), TASKS.c.status == "open")
        .order_by(TASKS.c.due_at, TASKS.c.id)
    )
    return [LedgerEntry(*row) for row in connection.execute(query)]
