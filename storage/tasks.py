"""Staff tasks planned by rules; the key makes re-planning a no-op."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, case, func, or_, select, update

from storage.dialect import insert_new_keys
from storage.events import ANSWERS, event_row, record_events
from storage.planned import OVERDUE_PREFIX, PlannedTask
from storage.tables import CUSTOMERS, EVENTS, TASKS

# Roles a customer attribute names a person for: the task goes to that person and keeps
# the role for routing; a customer without one leaves the task in the role's queue.
PERSON_ROLES = {"account_manager": CUSTOMERS.c.account_manager}


def store_tasks(connection: Connection, planned: list[PlannedTask], created_at: datetime) -> int:
    """Adds planned tasks; a key already stored is skipped. Returns how many were new.

    An escalation takes over its overdue task: its kind, department, ledger flag and
    acceptance criteria carry over (with the reason added) and the overdue task is marked
    `escalated`. A task for a role in `PERSON_ROLES` is assigned to the customer's person.
    """
    sources = _escalated_tasks(connection, [p.escalates for p in planned if p.escalates])
    people = _named_people(connection, planned)
    rows = []
    for p in planned:
        source = sources.get(p.escalates) if p.escalates is not None else None
        criteria = p.acceptance_criteria
        if source is not None and source["acceptance_criteria"]:
            criteria = f"{source['acceptance_criteria']}\nEscalated: {p.acceptance_criteria}"
        rows.append(
            {
                "key": p.key,
                "customer_id": p.customer_id,
                "rule_id": p.rule_id,
                "event_id": p.event_id,
                "kind": source["kind"] if source is not None else p.kind,
                "owner_role": p.owner_role,
                "owner": people.get((p.customer_id, p.owner_role)),
                "department": p.department or (source["department"] if source else None),
                "ledger": p.ledger or bool(source is not None and source["ledger"]),
                "acceptance_criteria": criteria,
                "status": "open",
                "due_at": p.due_at,
                "created_at": created_at,
            }
        )
    if sources:
        connection.execute(
            update(TASKS)
            .where(TASKS.c.id.in_(list(sources)), TASKS.c.status == "open")
            .values(status="escalated", closed_at=created_at)
        )
    return insert_new_keys(connection, TASKS, rows)


def _named_people(connection: Connection, planned: list[PlannedTask]) -> dict[tuple[str, str], str]:
    """(customer, role) -> the person the customer names for that role."""
    people: dict[tuple[str, str], str] = {}
    for role, column in PERSON_ROLES.items():
        ids = sorted({p.customer_id for p in planned if p.owner_role == role})
        if ids:
            query = select(CUSTOMERS.c.id, column).where(
                CUSTOMERS.c.id.in_(ids), column.is_not(None)
            )
            people.update(
                {(cid, role): person for cid, person in connection.execute(query) if person}
            )
    return people


def _escalated_tasks(connection: Connection, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    query = select(TASKS).where(TASKS.c.id.in_(ids))
    return {row["id"]: row for row in connection.execute(query).mappings()}


@dataclass(frozen=True)
class TaskRow:
    id: int
    customer_id: str
    rule_id: str
    kind: str
    owner_role: str
    owner: str | None
    department: str | None
    ledger: bool
    acceptance_criteria: str | None
    status: str
    due_at: datetime


def list_tasks(
    connection: Connection,
    now: datetime,
    owner: str | None = None,
    overdue: bool = False,
    role: str | None = None,
    limit: int | None = None,
) -> list[TaskRow]:
    """Open tasks, soonest due first; `owner` matches the person (or a role, as a
    shorthand for the role's whole list), `role` the role whoever holds the task; at
    most `limit` of them."""
    query = _open_tasks(now, owner, overdue, role).order_by(TASKS.c.due_at, TASKS.c.id)
    return [
        TaskRow(**{name: row[name] for name in TaskRow.__dataclass_fields__})
        for row in connection.execute(query.limit(limit)).mappings()
    ]


def holder(owner: str | None, role: str) -> str:
    """Who holds a task, as staff read it: `chen.hv (account_manager)`, or the role's
    queue when nobody is named."""
    return f"{owner} ({role})" if owner else role


def count_tasks(
    connection: Connection,
    now: datetime,
    owner: str | None = None,
    overdue: bool = False,
    role: str | None = None,
) -> int:
    """How many open tasks `list_tasks` would list without a limit."""
    query = _open_tasks(now, owner, overdue, role).with_only_columns(func.count())
    return int(connection.scalar(query) or 0)


def _open_tasks(now: datetime, owner: str | None, overdue: bool, role: str | None) -> Select[Any]:
    query = select(TASKS).where(TASKS.c.status == "open")
    if owner:
        query = query.where(or_(TASKS.c.owner_role == owner, TASKS.c.owner == owner))
    if role:
        query = query.where(TASKS.c.owner_role == role)
    if overdue:
        query = query.where(TASKS.c.due_at < now)
    return query


def task_by_id(connection: Connection, task_id: int) -> dict[str, Any] | None:
    """Every column of one task, open or not."""
    row = connection.execute(select(TASKS).where(TASKS.c.id == task_id)).mappings().first()
    return None if row is None else dict(row)


class TaskNotClosable(ValueError):
    """The task does not exist, is already closed, or needs an acceptance note.

    `reason` (missing, not_open or needs_note) and `status` let a caller word it in
    another language; the message is English."""

    def __init__(self, message: str, reason: str, status: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


def close_task(connection: Connection, task_id: int, note: str | None, now: datetime) -> None:
    """Closes an open task; remediation-ledger items need a non-empty acceptance note."""
    row = task_by_id(connection, task_id)
    if row is None:
        raise TaskNotClosable(f"no task {task_id}", "missing")
    if row["status"] != "open":
        raise TaskNotClosable(
            f"task {task_id} is already {row['status']}", "not_open", row["status"]
        )
    if row["ledger"] and not (note and note.strip()):
        raise TaskNotClosable(
            f"task {task_id} is a remediation-ledger item: close it with --note describing "
            "the verified outcome against its acceptance criteria",
            "needs_note",
        )
    connection.execute(
        update(TASKS)
        .where(TASKS.c.id == task_id, TASKS.c.status == "open")
        .values(status="closed", closed_at=now, acceptance_note=(note or "").strip() or None)
    )


def raise_overdue_events(connection: Connection, now: datetime) -> list[str]:
    """The SLA watch. A task serving a feedback item that has been answered by `now`
    is met: it raises nothing, and unless it is a remediation-ledger item (closed
    only with an acceptance note) it is closed as answered. Every other open task past
    its due time raises a `task_overdue` event, once per task; returns the ids of the
    events raised now.

    The event happens at the due time; its id comes from the task's, so the watch may
    run as often as it likes. Escalation rules act on these events. A task serving a
    feedback item (directly, or escalated from one) passes on the item's `level` and,
    as `ref`, the item itself, so an escalated task is answered the same way.
    """
    source = EVENTS.alias("source")
    item = case(
        (source.c.type == "feedback", source.c.id),
        (source.c.type == "task_overdue", source.c.ref),
    )
    query = (
        select(TASKS, source.c.level, item.label("item"))
        .outerjoin(source, source.c.id == TASKS.c.event_id)
        .where(
            TASKS.c.status == "open",
            or_(TASKS.c.due_at < now, source.c.type.in_(("feedback", "task_overdue"))),
        )
    )
    tasks = connection.execute(query).mappings().all()
    answers = first_answers(connection, {t["item"] for t in tasks if t["item"]}, now)
    rows = []
    for task in tasks:
        answer = answers.get(task["item"])
        if answer is not None:
            if not task["ledger"]:
                _close_answered(connection, task, answer)
        elif task["due_at"] < now:
            rows.append(_overdue_event(task, now))
    return record_events(connection, rows)


def first_answers(connection: Connection, items: set[str], now: datetime) -> dict[str, RowMapping]:
    """The first event (id, type, occurred_at) by `now` answering each feedback item."""
    if not items:
        return {}
    query = (
        select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.occurred_at, EVENTS.c.ref)
        .where(EVENTS.c.type.in_(ANSWERS), EVENTS.c.ref.in_(items), EVENTS.c.occurred_at <= now)
        .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
    )
    first: dict[str, RowMapping] = {}
    for row in connection.execute(query).mappings():
        first.setdefault(row["ref"], row)
    return first


def _close_answered(connection: Connection, task: RowMapping, answer: RowMapping) -> None:
    connection.execute(
        update(TASKS)
        .where(TASKS.c.id == task["id"], TASKS.c.status == "open")
        .values(
            status="closed",
            closed_at=max(answer["occurred_at"], task["created_at"]),
            acceptance_note=f"Answered: {answer['type']} {answer['id']}",
        )
    )


def _overdue_event(task: RowMapping, now: datetime) -> dict[str, Any]:
    return event_row(
        f"{OVERDUE_PREFIX}{task['id']}",
        task["customer_id"],
        "task_overdue",
        task["due_at"],
        now,
        {
            "task_kind": task["kind"],
            "owner_role": task["owner_role"],
            "task_id": task["id"],
            "hours_overdue": round((now - task["due_at"]).total_seconds() / 3600, 1),
        },
        level=task["level"],
        ref=task["item"],
    )


def open_tasks_by_owner(
    connection: Connection, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Open tasks per owner (the person if assigned, else the role), and how many of
    them are overdue at `now`."""
    owner = func.coalesce(TASKS.c.owner, TASKS.c.owner_role)
    late = func.sum(case((TASKS.c.due_at < now, 1), else_=0))
    query = select(owner, func.count(), late).where(TASKS.c.status == "open").group_by(owner)
    open_counts: dict[str, int] = {}
    late_counts: dict[str, int] = {}
    for name, count, overdue in connection.execute(query):
        open_counts[name] = count
        if overdue:
            late_counts[name] = int(overdue)
    return open_counts, late_counts


def tasks_opened_at(connection: Connection, created_at: datetime) -> dict[str, int]:
    """Tasks a run opened (they carry the run's time), per owner role."""
    query = (
        select(TASKS.c.owner_role, func.count())
        .where(TASKS.c.created_at == created_at)
        .group_by(TASKS.c.owner_role)
    )
    return {role: count for role, count in connection.execute(query)}
