"""`ingest-events`: events from a file → storage → the event rules at once; or the event
rules at once on events already stored (by the API, an import), given by id.

A major complaint gets its task within minutes, not at the next daily evaluation.
Importing is idempotent by event id, so the task is safe to retry; events older than
the reaction window are stored as history and fire nothing (see `rapport.services.reactions`).

The flow takes a path or stored ids, never the events themselves: a flow run's
parameters are kept and shown in the Prefect UI, and events carry personal data (a
complaint's text quotes names and phone numbers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import Field

from actions.privacy import mask
from flows import artifacts
from flows.context import FlowContext, flow_context
from flows.sla import react
from rapport.services.staff_language import N_, _
from storage.imports import ImportReport, import_events

EventIds = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=10_000)]


@task(name="import-events", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def import_batch(context: FlowContext, path: str) -> ImportReport:
    imported_at, horizon = datetime.now(UTC), context.settings.future_horizon()
    return import_events(
        context.engine, Path(path), imported_at=imported_at, future_horizon=horizon
    )


@flow(name="ingest-events")
def ingest_events(
    path: str | None = None,
    event_ids: EventIds | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    """Store events from `path` (CSV or JSON Lines), then run the event rules on every
    recent event not reacted to yet; or run them on the stored events `event_ids` alone.
    With neither (the every-minute schedule): every event stored but not reacted to."""
    if path is not None and event_ids is not None:
        raise ValueError("give path or event_ids, not both")
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"no events file at {path}")  # a retry would not help
    context = flow_context(as_of)
    report = import_batch(context, path) if path else ImportReport()
    if report.rejected:
        get_run_logger().warning(
            "%d rows rejected, e.g. %s", report.rejected, mask(str(report.samples[0]))
        )
    reactions = react(context, event_ids or None)
    figures = {
        N_("read"): report.read,
        N_("inserted"): report.inserted,
        N_("already stored"): report.duplicates,
        N_("rejected"): report.rejected,
        N_("events reacted to, firings"): sum(reactions.firings.values()),
        N_("tasks opened"): reactions.tasks,
        N_("messages planned"): reactions.messages,
    }
    artifacts.summary("ingest-summary", _("Events ingested"), figures)
    fired = _("Event rules that fired")
    artifacts.counts_table("ingest-firings", fired, N_("rule"), reactions.firings)
    if report.samples:
        artifacts.counts_table(
            "ingest-rejected",
            _("Rejected rows (first 20)"),
            N_("row"),
            {mask(str(error)): 1 for error in report.samples},
        )
    return figures
