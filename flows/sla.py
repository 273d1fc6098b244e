"""`watch-sla`: tasks of feedback items answered since (a contact referring to the item,
its resolution) are met; other overdue tasks become `task_overdue` events, and the event
rules act on them (escalations) and on anything else waiting: steps that came due,
recent events that arrived by file.

Safe to run as often as it is scheduled: an overdue event is raised once per task and
each event is reacted to once.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import artifacts
from flows.context import FlowContext, flow_context
from rapport.services.reactions import react_to_events
from rapport.services.scheduled import RunSummary
from rapport.services.staff_language import N_, _
from storage.tasks import open_tasks_by_owner, raise_overdue_events


@task(name="raise-overdue-events", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def raise_overdue(context: FlowContext) -> list[str]:
    with context.engine.begin() as connection:
        return raise_overdue_events(connection, context.as_of)


@task(name="react-to-events", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def react(context: FlowContext, event_ids: list[str] | None) -> RunSummary:
    """The event rules on these events, or (None) on every event still waiting."""
    return react_to_events(context.engine, context.ruleset, context.as_of, event_ids=event_ids)


@flow(name="watch-sla")
def watch_sla(as_of: str | None = None) -> dict[str, Any]:
    """Raise overdue events and let the escalation rules act on them; then react to
    every other event that is waiting."""
    context = flow_context(as_of)
    overdue = raise_overdue(context)
    total = react(context, overdue) if overdue else RunSummary()
    total.add(react(context, None))
    with context.engine.connect() as connection:
        open_by_owner, late_by_owner = open_tasks_by_owner(connection, context.as_of)
    reactions, late = _("Escalations and other reactions"), _("Overdue open tasks per owner")
    artifacts.counts_table("sla-firings", reactions, N_("rule"), total.firings)
    artifacts.counts_table("sla-overdue", late, N_("owner"), late_by_owner)
    artifacts.counts_table("sla-open", _("Open tasks per owner"), N_("owner"), open_by_owner)
    return {
        "overdue events raised": len(overdue),
        "firings": sum(total.firings.values()),
        "tasks opened": total.tasks,
        "messages planned": total.messages,
        "overdue open tasks": sum(late_by_owner.values()),
    }
