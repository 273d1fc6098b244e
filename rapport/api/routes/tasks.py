"""The `tasks` tag: open staff tasks and closing them, for `staff` keys."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from rapport.api.errors import problems
from rapport.api.inputs import JsonObject, encodable
from rapport.api.security import require_role
from rapport.api.state import Database
from storage.tasks import TaskNotClosable, close_task, list_tasks

MAX_TASK_ID = 2**31 - 1  # the largest id the tasks table holds (a PostgreSQL integer)

router = APIRouter(
    tags=["tasks"], dependencies=[Depends(require_role("staff"))], responses=problems(401, 403)
)


class CloseTask(BaseModel):
    note: str | None = Field(default=None, max_length=5_000)


@router.get("/tasks")
def tasks(
    engine: Database,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    overdue: bool = False,
    role: Annotated[str | None, Query(max_length=60)] = None,
) -> list[JsonObject]:
    """Open staff tasks, soonest due first; `owner` is a person (or a role, for its
    whole list), `role` an owner role whoever holds the task."""
    if any(value is not None and "\x00" in value for value in (owner, role)):
        return []  # no role or person has NUL in their name
    with engine.connect() as connection:
        found = list_tasks(connection, datetime.now(UTC), owner=owner, overdue=overdue, role=role)
    return [asdict(task) for task in found]


@router.post("/tasks/{task_id}/close", responses=problems(400, 409, 413))
def close(engine: Database, task_id: int, body: CloseTask) -> JsonObject:
    """Close a task; remediation-ledger items need the verified outcome as `note`."""
    if not 0 < task_id <= MAX_TASK_ID:  # the database could not even look it up
        raise HTTPException(409, f"no task {task_id}")
    encodable(body.note)
    try:
        with engine.begin() as connection:
            close_task(connection, task_id, body.note, datetime.now(UTC))
    except TaskNotClosable as error:
        raise HTTPException(409, str(error)) from None
    return {"id": task_id, "status": "closed"}
