"""`rapport serve` and `rapport ui`: the schedules of `prefect.yaml`, running."""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer

from rapport.cli.common import console, database, fail, signing_settings


def serve(
    embedded: Annotated[
        bool,
        typer.Option(
            "--embedded",
            help="Run the schedules with APScheduler in this process, without a Prefect "
            "server (flows still record to Prefect's ephemeral API).",
        ),
    ] = False,
) -> None:
    """Run every deployment of prefect.yaml on its schedule until stopped (Ctrl-C)."""
    from flows.schedules import embedded_scheduler, read_schedules, served_deployments

    config = signing_settings()
    database()  # fail early, with the fix, if the schema is not current
    schedules = read_schedules(config.timezone)
    if embedded:
        scheduler = embedded_scheduler(schedules, config.database_url)
        for scheduled in schedules:
            crons = ", ".join(scheduled.crons) or "no schedule (started on demand)"
            console.print(f"{scheduled.job_id}: {crons} ({scheduled.timezone})")
        console.print("embedded scheduler running; Ctrl-C stops it")
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            scheduler.shutdown(wait=False)
        return
    if not os.environ.get("PREFECT_API_URL"):
        raise fail(
            "rapport serve needs a Prefect server: start one with `rapport ui`, then "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`; or run `rapport serve --embedded`"
        )
    from prefect import serve as prefect_serve

    prefect_serve(*served_deployments(schedules))


def ui(
    port: Annotated[int, typer.Option(help="Port of the Prefect server and UI.")] = 4200,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start a Prefect server with its UI (http://127.0.0.1:4200 by default)."""
    prefect = shutil.which("prefect")
    if prefect is None:
        raise fail("the prefect command is not installed; run `make setup`")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    console.print(
        f"Prefect UI: http://{host}:{port}  —  in another shell: "
        f"export PREFECT_API_URL=http://{host}:{port}/api; rapport serve"
    )
    os.execv(prefect, [prefect, "server", "start", "--host", host, "--port", str(port)])
