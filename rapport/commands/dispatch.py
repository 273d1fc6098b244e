"""`rapport dispatch`: deliver what is due in the outbox, batch after batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from actions.dispatch import DispatchReport, dispatch_once
from actions.templates import Templates
from rapport.commands.common import console, database, settings
from rapport.commands.evaluate import rules_for_run
from rapport.delivery import build_senders, dispatch_settings


def dispatch(
    batches: Annotated[int, typer.Option(min=1, help="Stop after this many batches.")] = 1_000,
) -> None:
    """Claim due messages, apply the guards, send, and record every outcome."""
    config = settings()
    engine = database()
    ruleset = rules_for_run(store=False)
    report = asyncio.run(_run(engine, ruleset, config, batches))
    table = Table(title=f"Dispatch: {report.claimed} messages claimed")
    table.add_column("outcome")
    table.add_column("messages", justify="right")
    for outcome, count in report.outcomes.most_common():
        table.add_row(outcome, str(count))
    for channel, count in report.channels.most_common():
        table.add_row(f"sent by {channel}", str(count))
    for reason, count in report.reasons.most_common():
        table.add_row(f"guard/failure: {reason}", str(count))
    console.print(table)


async def _run(engine, ruleset, config, batches: int) -> DispatchReport:  # type: ignore[no-untyped-def]
    senders = build_senders(config)
    templates = Templates(config.templates_dir)
    options = dispatch_settings(config)
    total = DispatchReport()
    try:
        for _ in range(batches):
            report = await dispatch_once(
                engine, senders, templates, ruleset, datetime.now(UTC), options
            )
            total.add(report)
            if report.claimed == 0:
                break
    finally:
        for sender in set(senders.values()):
            await sender.close()
    return total
