"""`rapport run`: one cycle as the schedules run it, each step's result printed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from rapport.cli.common import (
    AS_OF_HELP,
    as_of_option,
    console,
    database,
    firings_line,
    rules_for_run,
    settings,
    signing_settings,
)
from rapport.cli.dispatch import deliver_due
from rapport.services.cycle import run_cycle
from rapport.services.delivery import dispatch_settings


def run(
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Write and send nothing; show what is pending.")
    ] = False,
) -> None:
    """React to waiting events, watch the SLAs, evaluate the scheduled rules, dispatch.
    A dry run sends nothing, so it runs without a secret of your own."""
    config = settings() if dry_run else signing_settings()
    engine = database()
    moment = as_of_option(as_of)
    ruleset = rules_for_run(record=not dry_run)
    report = run_cycle(
        engine,
        ruleset,
        moment,
        dry_run=dry_run,
        deliver=lambda: asyncio.run(
            deliver_due(
                engine, ruleset, config, dispatch_settings(config), 1_000, moment if as_of else None
            )
        ),
        created_at=datetime.now(UTC),
    )
    console.print(
        f"Cycle as of {moment.isoformat()}, rules revision {ruleset.revision[:12]}"
        + (" — dry run, nothing written or sent" if dry_run else "")
    )
    console.print(f"1. event reactions: {firings_line(report.reactions, dry_run)}")
    escalated = f"; escalations: {firings_line(report.escalations, dry_run)}" if not dry_run else ""
    console.print(f"2. SLA watch: {report.overdue} overdue task(s){escalated}")
    console.print(
        f"3. scheduled rules over {report.evaluation.customers} customers: "
        f"{firings_line(report.evaluation, dry_run)}"
    )
    if report.delivery is None:
        console.print("4. dispatch: skipped (dry run)")
    else:
        outcomes = ", ".join(f"{k} {v}" for k, v in report.delivery.outcomes.most_common())
        console.print(f"4. dispatch: {report.delivery.claimed} claimed ({outcomes or 'none'})")
