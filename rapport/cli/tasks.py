"""`rapport tasks list|close`: staff work planned by the rules, and the remediation ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from rapport.cli.common import console, database, fail
from storage.tasks import TaskNotClosable, close_task, list_tasks

app = typer.Typer(help="Staff tasks and the remediation ledger.", no_args_is_help=True)


@app.command("list")
def list_command(
    owner: Annotated[
        str | None, typer.Option(help="A person (e.g. chen.hv), or a role for its whole list.")
    ] = None,
    role: Annotated[str | None, typer.Option(help="An owner role, e.g. account_manager.")] = None,
    overdue: Annotated[bool, typer.Option(help="Only tasks past their due time.")] = False,
) -> None:
    """Open tasks, soonest due first (customers by id only)."""
    now = datetime.now(UTC)
    with database().connect() as connection:
        tasks = list_tasks(connection, now, owner, overdue, role)
    table = Table(title=f"{len(tasks)} open task(s)")
    for column in ("id", "due", "owner", "kind", "customer", "ledger", "acceptance criteria"):
        table.add_column(column)
    for task in tasks:
        late = " (overdue)" if task.due_at < now else ""
        table.add_row(
            str(task.id),
            f"{task.due_at:%Y-%m-%d %H:%M}Z{late}",
            (f"{task.owner} ({task.owner_role})" if task.owner else task.owner_role)
            + (f" / {task.department}" if task.department else ""),
            task.kind,
            task.customer_id,
            "yes" if task.ledger else "",
            task.acceptance_criteria or "",
        )
    console.print(table)


@app.command("close")
def close_command(
    task_id: Annotated[int, typer.Argument(help="The task's id.")],
    note: Annotated[
        str | None, typer.Option(help="Acceptance note (required for ledger items).")
    ] = None,
) -> None:
    """Close a task; a ledger item needs the verified outcome as its note."""
    try:
        with database().begin() as connection:
            close_task(connection, task_id, note, datetime.now(UTC))
    except TaskNotClosable as error:
        raise fail(str(error)) from None
    console.print(f"task {task_id} closed")
