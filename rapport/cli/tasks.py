"""`rapport tasks list|show|close`: staff work planned by the rules, and the remediation ledger."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from rapport.cli.common import (
    AS_OF_HELP,
    as_of_option,
    console,
    database,
    fail,
    print_json,
    zone_option,
)
from rapport.services.staff_language import N_, _, format_moment, format_number, ngettext
from storage.tasks import TaskNotClosable, close_task, count_tasks, holder, list_tasks, task_by_id

app = typer.Typer(help="Staff tasks and the remediation ledger.", no_args_is_help=True)


TZ_HELP = "Show times in this timezone (default: RAPPORT_TIMEZONE)."
STATUSES = {"open": N_("open"), "closed": N_("closed"), "escalated": N_("escalated")}


@app.command("list")
def list_command(
    owner: Annotated[
        str | None, typer.Option(help="A person (e.g. chen.hv), or a role for its whole list.")
    ] = None,
    role: Annotated[str | None, typer.Option(help="An owner role, e.g. account_manager.")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only tasks past their due time.")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Overdue as of this time; " + AS_OF_HELP)
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Show at most this many (the rest are counted).")
    ] = 50,
    tz: Annotated[str | None, typer.Option("--tz", help=TZ_HELP)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="{open, tasks: [...]} as JSON, times in ISO 8601.")
    ] = False,
) -> None:
    """Open tasks, soonest due first (customers by id only)."""
    now = as_of_option(as_of)
    zone = zone_option(tz)
    with database().connect() as connection:
        tasks = list_tasks(connection, now, owner, overdue, role, limit)
        total = count_tasks(connection, now, owner, overdue, role)
    if as_json:
        listed = [{**asdict(task), "overdue": task.due_at < now} for task in tasks]
        print_json({"open": total, "tasks": listed})
        return
    title = ngettext(
        "{count} open task, due times in {zone}", "{count} open tasks, due times in {zone}", total
    )
    table = Table(title=title.format(count=format_number(total), zone=zone))
    columns = (
        _("id"),
        _("due"),
        _("owner"),
        _("kind"),
        _("customer"),
        _("ledger"),
        _("acceptance criteria"),
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for task in tasks:
        late = _(" (overdue)") if task.due_at < now else ""
        table.add_row(
            str(task.id),
            format_moment(task.due_at, zone) + late,
            holder(task.owner, task.owner_role)
            + (f" / {task.department}" if task.department else ""),
            task.kind,
            task.customer_id,
            _("yes") if task.ledger else "",
            task.acceptance_criteria or "",
        )
    console.print(table)
    if total > len(tasks):
        more = _("… and {count} more not shown (--limit {limit})")
        console.print(more.format(count=format_number(total - len(tasks)), limit=limit))


@app.command("show")
def show_command(
    task_id: Annotated[int, typer.Argument(help="The task's id.")],
    tz: Annotated[str | None, typer.Option("--tz", help=TZ_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The task as a JSON object.")] = False,
) -> None:
    """One task, open or not: who holds it, what it answers, when it was due and how it
    ended (the customer's whole story: `rapport customers history`)."""
    zone = zone_option(tz)
    with database().connect() as connection:
        task = task_by_id(connection, task_id)
    if task is None:
        raise fail(_("no task {id}").format(id=task_id))
    if as_json:
        print_json(task)
        return
    title = _("Task {id} ({status}), times in {zone}")
    heading = title.format(id=task_id, status=_status(task["status"]), zone=zone)
    table = Table(title=heading, show_header=False)
    table.add_column(_("field"))
    table.add_column(_("value"), overflow="fold")
    for name, value in task.items():
        if isinstance(value, datetime):
            value = format_moment(value, zone)
        table.add_row(name, "" if value is None else str(value))
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
        raise fail(_not_closable(task_id, error)) from None
    console.print(_("task {id} closed").format(id=task_id))


def _not_closable(task_id: int, error: TaskNotClosable) -> str:
    """Why `rapport tasks close` refused, in the staff language (storage words it in
    English, for the API)."""
    if error.reason == "missing":
        return _("no task {id}").format(id=task_id)
    if error.reason == "not_open":
        return _("task {id} is already {status}").format(id=task_id, status=_status(error.status))
    return _(
        "task {id} is a remediation-ledger item: close it with --note describing the "
        "verified outcome against its acceptance criteria"
    ).format(id=task_id)


def _status(status: str | None) -> str:
    """A task's status (open, closed, escalated) in the staff language."""
    return _(STATUSES[status]) if status in STATUSES else str(status)
