"""`rapport import customers|events FILE`: CSV or JSON Lines into the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from rapport.cli.common import console, database, errors, fail, print_json, settings
from rapport.services.staff_language import _, format_number
from rapport.services.terminal import progress
from storage.imports import ImportReport, RowError, import_customers, import_events

app = typer.Typer(help="Import customers or events from CSV or JSON Lines.", no_args_is_help=True)

FileArgument = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="A .csv or .jsonl file."),
]


def _report_row(error: RowError) -> None:
    errors.print(str(error), markup=False, highlight=False, soft_wrap=True)


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="The summary as JSON on stdout: {kind, file, read, inserted, updated, "
        "duplicates, rejected}; rejected rows stay FILE:LINE lines on stderr.",
    ),
]


def _run(
    kind: str,
    path: Path,
    job: Callable[[Callable[[int], None]], ImportReport],
    as_json: bool = False,
) -> None:
    with progress(console, f"importing {path.name}", path.stat().st_size, in_bytes=True) as read:
        try:
            report = job(read)
        except ValueError as error:
            raise fail(str(error)) from None
    if as_json:
        counts = ("read", "inserted", "updated", "duplicates", "rejected")
        print_json({"kind": kind, "file": str(path), **{n: getattr(report, n) for n in counts}})
        if report.rejected:
            raise typer.Exit(code=1)
        return
    line = _(
        "{kind}: {read} rows read, {inserted} inserted, {updated} updated, "
        "{duplicates} already imported, {rejected} rejected"
    )
    console.print(
        line.format(
            kind=kind,
            read=format_number(report.read),
            inserted=format_number(report.inserted),
            updated=format_number(report.updated),
            duplicates=format_number(report.duplicates),
            rejected=format_number(report.rejected),
        )
    )
    if report.rejected:
        raise fail(
            _("{count} row(s) of {path} rejected (listed above)").format(
                count=report.rejected, path=path
            )
        )


@app.command("customers")
def customers(path: FileArgument, as_json: JsonOption = False) -> None:
    """Upsert customers by id; unknown columns are kept as attributes."""
    engine, zone = database(), settings().timezone
    _run(
        "customers",
        path,
        lambda on_bytes: import_customers(
            engine, path, default_timezone=zone, on_error=_report_row, on_bytes=on_bytes
        ),
        as_json,
    )


@app.command("events")
def events(path: FileArgument, as_json: JsonOption = False) -> None:
    """Insert events; an event id already imported is skipped, never duplicated."""
    engine, now, horizon = database(), datetime.now(UTC), settings().future_horizon()
    _run(
        "events",
        path,
        lambda on_bytes: import_events(
            engine,
            path,
            imported_at=now,
            future_horizon=horizon,
            on_error=_report_row,
            on_bytes=on_bytes,
        ),
        as_json,
    )
