"""`ingest-events`: events from a file or a list → storage → the event rules at once.

A major complaint gets its task within minutes, not at the next daily evaluation.
Importing is idempotent by event id, so the task is safe to retry; events older than
the reaction window are stored as history and fire nothing (see `rapport.services.reactions`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from actions.privacy import mask
from flows import artifacts
from flows.context import FlowContext, flow_context
from flows.sla import react
from storage.imports import ImportReport, import_event_list, import_events


@task(name="import-events", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def import_batch(
    context: FlowContext, path: str | None, events: list[dict[str, Any]] | None
) -> ImportReport:
    imported_at, horizon = datetime.now(UTC), context.settings.future_horizon()
    if path is not None:
        return import_events(
            context.engine, Path(path), imported_at=imported_at, future_horizon=horizon
        )
    return import_event_list(
        context.engine, events or [], imported_at=imported_at, future_horizon=horizon
    )


@flow(name="ingest-events")
def ingest_events(
    path: str | None = None,
    events: list[dict[str, Any]] | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    """Store events from `path` (CSV or JSON Lines) or `events`, then run the event
    rules on every recent event not reacted to yet. With neither (the every-minute
    schedule), only the second step: events the API stored but did not react to."""
    if path is not None and events is not None:
        raise ValueError("give path or events, not both")
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"no events file at {path}")  # a retry would not help
    context = flow_context(as_of)
    report = import_batch(context, path, events) if path or events else ImportReport()
    if report.rejected:
        get_run_logger().warning(
            "%d rows rejected, e.g. %s", report.rejected, mask(str(report.samples[0]))
        )
    reactions = react(context, None)
    figures = {
        "read": report.read,
        "inserted": report.inserted,
        "already stored": report.duplicates,
        "rejected": report.rejected,
        "events reacted to, firings": sum(reactions.firings.values()),
        "tasks opened": reactions.tasks,
        "messages planned": reactions.messages,
    }
    artifacts.summary("ingest-summary", "Events ingested", figures)
    artifacts.counts_table("ingest-firings", "Event rules that fired", "rule", reactions.firings)
    if report.samples:
        artifacts.counts_table(
            "ingest-rejected",
            "Rejected rows (first 20)",
            "row",
            {mask(str(error)): 1 for error in report.samples},
        )
    return figures
