"""`dispatch-outbox`: deliver what is due, one Prefect task per batch of messages.

A batch claims up to `batch_size` due messages and settles every one of them (sent,
deferred, suppressed, retrying or failed; see `actions.dispatch`), so a task retry
after an unexpected error only claims what is still due; a claim lost with a crashed
process is taken over when its lease expires. Several runs at once are safe: each is
its own dispatcher and claims skip rows another one holds.

When a channel's provider is down, its messages go back to the outbox with backoff and
the run ends Failed ("nothing could be delivered on email"), so the outage shows in the
Prefect UI; a later run delivers them once the provider is back.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from actions.channels.base import Sender
from actions.dispatch import DispatchReport, DispatchSettings, dispatch_batches, dispatch_once
from actions.templates import Templates
from flows import artifacts
from flows.context import FlowContext, flow_context, moment, unwalked
from rapport.services.delivery import build_senders, dispatch_settings, public_url_warning
from rapport.services.staff_language import N_, _


class DeliveryOutage(RuntimeError):
    """Nothing could be delivered: every attempt failed temporarily."""


@task(name="dispatch-batch", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
async def dispatch_batch(
    context: FlowContext,
    senders: dict[str, Sender],
    templates: Templates,
    settings: DispatchSettings,
    now: datetime,
) -> DispatchReport:
    report = await dispatch_once(context.engine, senders, templates, context.ruleset, now, settings)
    if report.claimed:
        get_run_logger().info("%d claimed: %s", report.claimed, dict(report.outcomes.most_common()))
    return report


@flow(name="dispatch-outbox")
async def dispatch_outbox(
    as_of: str | None = None, batch_size: int = 500, max_batches: int = 200
) -> dict[str, Any]:
    """Deliver due messages batch after batch until none is due (or `max_batches`).

    `as_of` fixes the clock for replays and tests; by default each batch uses now. With
    a RAPPORT_SECRET_KEY anyone knows, the run fails before it claims anything.
    """
    context = flow_context(as_of)
    settings = replace(dispatch_settings(context.settings), batch=batch_size)
    if warning := public_url_warning(context.settings):
        get_run_logger().warning(warning)
    senders = build_senders(context.settings)
    templates = Templates(context.settings.templates_dir)

    def batch() -> Awaitable[DispatchReport]:
        return dispatch_batch(
            unwalked(context), unwalked(senders), unwalked(templates), settings, moment(as_of)
        )

    total = await dispatch_batches(batch, senders, max_batches)
    publish(total)
    if down := outages(total):
        raise DeliveryOutage(
            "nothing could be delivered on "
            + ", ".join(f"{channel} ({count} attempts failed)" for channel, count in down.items())
            + "; those messages are retried with backoff (see the failures artifact)"
        )
    return figures(total)


def outages(total: DispatchReport) -> dict[str, int]:
    """Channels on which every attempt of the run failed temporarily."""
    return {
        channel: count
        for channel, count in total.unavailable.items()
        if not total.channels[channel]
    }


def publish(total: DispatchReport) -> None:
    """Messages per channel and outcome, guard decisions and failures, as artifacts."""
    outcomes, channels = _("Messages per outcome"), _("Messages sent per channel")
    artifacts.counts_table("dispatch-outcomes", outcomes, N_("outcome"), total.outcomes)
    artifacts.counts_table("dispatch-channels", channels, N_("channel"), total.channels)
    decisions, failures = _("Guard decisions and failures"), _("Failures with reasons")
    artifacts.counts_table("dispatch-decisions", decisions, N_("decision"), total.reasons)
    artifacts.counts_table("dispatch-failures", failures, N_("failure"), total.failures)


def figures(total: DispatchReport) -> dict[str, Any]:
    return {
        "claimed": total.claimed,
        "outcomes": dict(total.outcomes),
        "channels": dict(total.channels),
        "decisions": dict(total.reasons),
    }
