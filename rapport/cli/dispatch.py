"""`rapport dispatch`: deliver what is due in the outbox, batch after batch."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine

from actions.dispatch import DispatchReport, DispatchSettings, dispatch_batches, dispatch_once
from actions.templates import Templates
from engine.model import RuleSet
from rapport.cli.common import (
    AS_OF_HELP,
    as_of_option,
    console,
    database,
    errors,
    rules_for_run,
    signing_settings,
)
from rapport.services.delivery import build_senders, dispatch_settings
from rapport.services.settings import Settings
from rapport.services.staff_language import _, format_number
from rapport.services.terminal import progress
from storage.outbox import count_due


def dispatch(
    batches: Annotated[int, typer.Option(min=1, help="Stop after this many batches.")] = 1_000,
    batch_size: Annotated[int, typer.Option(min=1, max=5_000, help="Messages per batch.")] = 200,
    lease: Annotated[
        int,
        typer.Option(min=5, help="Seconds a claim lasts before another dispatcher may retake it."),
    ] = 300,
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
) -> None:
    """Claim due messages, apply the guards, send, and record every outcome."""
    config = signing_settings()
    engine = database()
    ruleset = rules_for_run(record=False)
    options = replace(dispatch_settings(config), batch=batch_size, lease=timedelta(seconds=lease))
    moment = as_of_option(as_of) if as_of else None
    report = asyncio.run(deliver_due(engine, ruleset, config, options, batches, moment))
    title = _("Dispatch: {count} messages claimed").format(count=format_number(report.claimed))
    table = Table(title=title)
    table.add_column(_("outcome"))
    table.add_column(_("messages"), justify="right")
    for outcome, count in report.outcomes.most_common():
        table.add_row(outcome, format_number(count))
    for channel, count in report.channels.most_common():
        table.add_row(_("sent by {channel}").format(channel=channel), format_number(count))
    for reason, count in report.reasons.most_common():
        table.add_row(_("guard/failure: {reason}").format(reason=reason), format_number(count))
    console.print(table)


async def deliver_due(
    engine: Engine,
    ruleset: RuleSet,
    config: Settings,
    options: DispatchSettings,
    batches: int,
    as_of: datetime | None,
) -> DispatchReport:
    """Batches until nothing is due; `as_of` fixes the clock (replays, tests)."""
    senders = build_senders(config)
    templates = Templates(config.templates_dir)
    with engine.connect() as connection:
        due = count_due(connection, as_of or datetime.now(UTC))
    with progress(errors, "delivering due messages", due) as advance:

        async def batch() -> DispatchReport:
            now = as_of or datetime.now(UTC)
            report = await dispatch_once(engine, senders, templates, ruleset, now, options)
            advance(report.claimed)
            return report

        return await dispatch_batches(batch, senders, batches)
