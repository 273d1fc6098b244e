"""`evaluate-rules`: facts as of now → engine → admitted firings → outbox and tasks.

One Prefect task per batch of customers (5,000 by default), so Prefect's per-task cost
stays a small share of the run. A batch is safe to retry: re-entry and the idempotency
keys make a repeated batch add nothing.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from engine.evaluate import Evaluator
from flows import artifacts
from flows.context import FlowContext, flow_context, unwalked
from rapport.services.scheduled import RunSummary, evaluate_customers
from storage.customers import customer_id_batches
from storage.tasks import tasks_opened_at


@task(name="evaluate-batch", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def evaluate_batch(
    context: FlowContext, evaluator: Evaluator, customer_ids: list[str]
) -> RunSummary:
    summary = RunSummary()
    for _ in evaluate_customers(
        context.engine,
        context.ruleset,
        context.as_of,
        record=True,
        customer_ids=customer_ids,
        summary=summary,
        evaluator=evaluator,
    ):
        pass
    return summary


@flow(name="evaluate-rules", log_prints=False)
def evaluate_rules(as_of: str | None = None, batch_size: int = 5_000) -> dict[str, object]:
    """Evaluate the scheduled rules for every customer as of `as_of` (default: now)."""
    context = flow_context(as_of)
    evaluator = Evaluator(context.ruleset)
    with context.engine.connect() as connection:
        batches = customer_id_batches(connection, batch_size)
    total = RunSummary()
    for batch in batches:
        total.add(evaluate_batch(unwalked(context), unwalked(evaluator), unwalked(batch)))
    get_run_logger().info(
        "rules revision %s: %d customers, %d firings admitted, %d messages and %d tasks planned",
        context.ruleset.revision[:12],
        total.customers,
        sum(total.firings.values()),
        total.messages,
        total.tasks,
    )
    publish(total, context.ruleset.revision[:12], "evaluate")
    with context.engine.connect() as connection:
        opened = tasks_opened_at(connection, context.as_of)
    artifacts.counts_table("evaluate-tasks", "Tasks opened per owner", "owner", opened)
    return run_figures(total, context.ruleset.revision[:12])


def publish(total: RunSummary, revision: str, prefix: str) -> None:
    """Firings per rule and the run's totals, as artifacts."""
    artifacts.counts_table(
        f"{prefix}-firings", f"Firings per rule (revision {revision})", "rule", total.firings
    )
    artifacts.summary(f"{prefix}-summary", "Run summary", run_figures(total, revision))


def run_figures(total: RunSummary, revision: str) -> dict[str, object]:
    return {
        "revision": revision,
        "customers": total.customers,
        "firings": sum(total.firings.values()),
        "messages planned": total.messages,
        "tasks opened": total.tasks,
    }
