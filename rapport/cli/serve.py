"""`rapport serve`, `rapport deploy` and `rapport ui`: the schedules of `prefect.yaml`,
running in this process, deployed to a work pool, and watched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rapport.cli.common import console, database, fail, settings, signing_settings
from rapport.services.staff_language import _

if TYPE_CHECKING:
    from flows.schedules import PoolSchedule


def serve(
    embedded: Annotated[
        bool,
        typer.Option(
            "--embedded",
            help="Run the schedules with APScheduler in this process, without a Prefect "
            "server: the flows record to one temporary Prefect API that this process "
            "starts and stops (or to PREFECT_API_URL, if set).",
        ),
    ] = False,
) -> None:
    """Run every deployment of prefect.yaml on its schedule until stopped (Ctrl-C or
    SIGTERM)."""
    from flows.schedules import (
        embedded_scheduler,
        pool_schedules,
        read_schedules,
        served_deployments,
    )

    config = signing_settings()
    database()  # fail early, with the fix, if the schema is not current
    schedules = read_schedules(config.timezone)
    if embedded:
        from flows.embedded import run_embedded

        scheduler = embedded_scheduler(schedules, config.database_url)
        for scheduled in schedules:
            crons = ", ".join(scheduled.crons) or "no schedule (started on demand)"
            console.print(f"{scheduled.job_id}: {crons} ({scheduled.timezone})")
        run_embedded(scheduler, console.print)
        return
    if not os.environ.get("PREFECT_API_URL"):
        raise fail(
            _(
                "rapport serve needs a Prefect server: start one with `rapport ui`, then "
                "`export PREFECT_API_URL=http://127.0.0.1:4200/api`; or run "
                "`rapport serve --embedded`"
            )
        )
    from prefect import serve as prefect_serve

    warn_of_pool_schedules(pool_schedules(schedules))
    prefect_serve(*served_deployments(schedules))


def warn_of_pool_schedules(found: list[PoolSchedule]) -> None:
    """Served and work-pool deployments of one flow both run on their schedules: harmless
    (keys make a repeat add nothing) but twice the work, so say so and how to keep one."""
    if not found:
        return
    console.print(
        "[yellow]warning:[/yellow] these work-pool deployments run the same flows on the "
        "same schedules, so each flow runs twice (here as '…-served', and on a worker):"
    )
    for schedule in found:
        console.print(f"  {schedule.deployment} (work pool {schedule.pool})")
    console.print(
        "To keep only the workers' runs, stop `rapport serve` (it pauses its own schedules "
        "on the way out). To keep only these, pause the pool's schedules:"
    )
    for schedule in found:
        console.print(
            f"  prefect deployment schedule pause '{schedule.deployment}' {schedule.schedule_id}"
        )


def deploy(
    pool: Annotated[str, typer.Option(help="The process work pool the workers serve.")] = (
        "rapport-process"
    ),
) -> None:
    """Deploy every entry of prefect.yaml to the Prefect server (PREFECT_API_URL) for a
    process work pool, its schedules in RAPPORT_TIMEZONE; creates the pool if missing.
    Start workers with `prefect worker start --pool rapport-process`."""
    from flows.schedules import PROJECT_FILE

    prefect = prefect_command()
    config = settings()
    if not os.environ.get("PREFECT_API_URL"):
        raise fail(_("rapport deploy needs PREFECT_API_URL, the Prefect server to deploy to"))
    env = {**os.environ, "RAPPORT_TIMEZONE": config.timezone}
    found = subprocess.run(
        [prefect, "work-pool", "inspect", pool], env=env, capture_output=True, check=False
    )
    if found.returncode != 0:
        created = subprocess.run(
            [prefect, "work-pool", "create", pool, "--type", "process"], env=env, check=False
        )
        if created.returncode != 0:
            raise fail(_("could not create the work pool {pool}").format(pool=repr(pool)))
    os.chdir(PROJECT_FILE.parent)  # prefect deploy reads ./prefect.yaml
    os.execve(prefect, [prefect, "--no-prompt", "deploy", "--all"], env)


def ui(
    port: Annotated[int, typer.Option(help="Port of the Prefect server and UI.")] = 4200,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start a Prefect server with its UI (http://127.0.0.1:4200 by default)."""
    prefect = prefect_command()
    api = f"http://{host}:{port}/api"
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The UI asks the server for its API address: this one, not an exported
    # PREFECT_API_URL of another port.
    os.environ["PREFECT_UI_API_URL"] = api
    os.environ["PREFECT_API_URL"] = api
    console.print(
        _("Prefect UI: {url}  —  in another shell: {commands}").format(
            url=f"http://{host}:{port}", commands=f"export PREFECT_API_URL={api}; rapport serve"
        )
    )
    os.execv(prefect, [prefect, "server", "start", "--host", host, "--port", str(port)])


def prefect_command() -> str:
    """Prefect's command line from Rapport's own environment (`.venv/bin/rapport` works
    without the venv on PATH), else from PATH."""
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if found is None:
        raise fail(_("the prefect command is not installed; run `make setup`"))
    return found
