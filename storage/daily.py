"""The day's numbers: what the rules did, what went out, what staff were given."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, select

from storage.tables import FIRINGS, MESSAGES, TASKS


@dataclass
class DayNumbers:
    firings: dict[str, int] = field(default_factory=dict)  # per rule
    sent: dict[str, int] = field(default_factory=dict)  # per channel
    planned: dict[str, int] = field(default_factory=dict)  # messages planned, by status now
    tasks_opened: dict[str, int] = field(default_factory=dict)  # per owner role
    tasks_closed: int = 0
    tasks_escalated: int = 0
    ledger_open: int = 0  # remediation-ledger items opened before the end, open now


def day_numbers(connection: Connection, start: datetime, end: datetime) -> DayNumbers:
    """Counts for [start, end)."""

    def grouped(
        column: ColumnElement[Any], table: Table, moment: ColumnElement[Any]
    ) -> dict[str, int]:
        query = (
            select(column, func.count())
            .where(moment >= start, moment < end)
            .group_by(column)
            .select_from(table)
        )
        return {str(name): count for name, count in connection.execute(query)}

    def counted(*conditions: ColumnElement[bool]) -> int:
        return int(
            connection.scalar(select(func.count()).select_from(TASKS).where(*conditions)) or 0
        )

    return DayNumbers(
        firings=grouped(FIRINGS.c.rule_id, FIRINGS, FIRINGS.c.created_at),
        sent=grouped(MESSAGES.c.channel, MESSAGES, MESSAGES.c.sent_at),
        planned=grouped(MESSAGES.c.status, MESSAGES, MESSAGES.c.created_at),
        tasks_opened=grouped(TASKS.c.owner_role, TASKS, TASKS.c.created_at),
        tasks_closed=counted(
            TASKS.c.status == "closed", TASKS.c.closed_at >= start, TASKS.c.closed_at < end
        ),
        tasks_escalated=counted(
            TASKS.c.status == "escalated", TASKS.c.closed_at >= start, TASKS.c.closed_at < end
        ),
        ledger_open=counted(
            TASKS.c.ledger.is_(True), TASKS.c.status == "open", TASKS.c.created_at < end
        ),
    )
