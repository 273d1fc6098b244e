"""Staff tasks planned by rules; the key makes re-planning a no-op."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from actions.planning import PlannedTask
from storage.dialect import insert_ignoring_conflicts
from storage.models import StaffTask

TASKS = StaffTask.__table__  # type: ignore[attr-defined]


def store_tasks(connection: Connection, planned: list[PlannedTask], created_at: datetime) -> int:
    """Adds planned tasks; a key already stored is skipped. Returns how many were new."""
    if not planned:
        return 0
    rows = [
        {
            "key": p.key,
            "customer_id": p.customer_id,
            "rule_id": p.rule_id,
            "kind": p.kind,
            "owner_role": p.owner_role,
            "department": p.department,
            "ledger": p.ledger,
            "acceptance_criteria": p.acceptance_criteria,
            "status": "open",
            "due_at": p.due_at,
            "created_at": created_at,
        }
        for p in planned
    ]
    statement = insert_ignoring_conflicts(connection, TASKS, ["key"]).returning(TASKS.c.key)
    return len(connection.execute(statement, rows).all())
