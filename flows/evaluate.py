"""`evaluate-rules` and `evaluate-shard`: facts as of now → engine → admitted firings →
outbox and tasks, with the customers cut into shards that workers share.

`evaluate-rules` records the rules in force once, fixes the moment, and runs one
`evaluate-shard` per shard (on the work pool when it runs there, else in this process;
see `flows.shard_runs`); it reruns a failed shard and sums the shards' figures, which
each shard keeps in Rapport's database. Inside a shard, one Prefect task per batch of
customers (5,000 by default), so Prefect's per-task cost stays a small share of the
run. A batch is safe to retry, and a shard safe to run again: re-entry and the
idempotency keys make a repeat add nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlalchemy import Connection

from engine.evaluate import Evaluator
from flows import artifacts
from flows.context import FlowContext, flow_context, unwalked
from flows.shard_runs import current_run_id, in_process, on_pool, on_work_pool
from rapport.services.scheduled import RunSummary, Tally, evaluate_customers
from rapport.services.sharding import ShardPlan, run_shards, shard_count, summed
from rapport.services.staff_language import N_, _
from storage.customers import customer_count
from storage.shards import add_shard_figures, finish_shard, shard_figures, shard_id_batches
from storage.tasks import tasks_opened_at


@task(name="evaluate-batch", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def evaluate_batch(
    context: FlowContext, evaluator: Evaluator, customer_ids: list[str], tally: Tally
) -> RunSummary:
    summary = RunSummary()
    for _step in evaluate_customers(
        context.engine,
        context.ruleset,
        context.as_of,
        record=True,
        customer_ids=customer_ids,
        summary=summary,
        evaluator=evaluator,
        tally=tally,
    ):
        pass
    return summary


@flow(name="evaluate-rules", log_prints=False)
def evaluate_rules(
    as_of: str | None = None, batch_size: int = 5_000, shards: int = 0
) -> dict[str, object]:
    """Evaluate the scheduled rules for every customer as of `as_of` (default: now), in
    `shards` shards (0: RAPPORT_EVALUATION_SHARDS, whose 0 is one per 50,000 customers)."""
    context = flow_context(as_of)
    with context.engine.connect() as connection:
        customers = customer_count(connection)
    plan = ShardPlan(
        run_id=current_run_id(),
        shards=shard_count(shards or context.settings.evaluation_shards, customers),
        as_of=context.as_of.isoformat(),
        revision=context.ruleset.revision,
        batch_size=batch_size,
    )
    pool = on_work_pool()
    run_shards(plan.shards, on_pool(plan) if pool else in_process(evaluate_shard, plan))
    with context.engine.connect() as connection:
        total = summed(shard_figures(connection, plan.run_id), plan.shards)
    revision = context.ruleset.revision[:12]
    get_run_logger().info(
        "rules revision %s, %d shards %s: %d customers, %d firings admitted, "
        "%d messages and %d tasks planned",
        revision,
        plan.shards,
        "on the work pool" if pool else "in this process",
        total.customers,
        sum(total.firings.values()),
        total.messages,
        total.tasks,
    )
    publish(total, revision, "evaluate")
    with context.engine.connect() as connection:
        opened = tasks_opened_at(connection, context.as_of)
    artifacts.counts_table("evaluate-tasks", _("Tasks opened per owner"), N_("owner"), opened)
    return run_figures(total, revision)


@flow(name="evaluate-shard", flow_run_name="shard-{shard}-of-{shards}", log_prints=False)
def evaluate_shard(
    run_id: str, shard: int, shards: int, as_of: str, revision: str, batch_size: int = 5_000
) -> dict[str, object]:
    """One shard of the evaluation `run_id`: the customers whose id hashes to `shard` of
    `shards`, as of `as_of`, with the stored rules revision `revision`."""
    context = flow_context(as_of, revision=revision)
    evaluator = Evaluator(context.ruleset)
    with context.engine.connect() as connection:
        batches = shard_id_batches(connection, shard, shards, batch_size)

    def tally(writer: Connection, added: RunSummary) -> None:
        add_shard_figures(writer, run_id, shard, added.firings, added.messages, added.tasks, now())

    total = RunSummary()
    for batch in batches:
        total.add(
            evaluate_batch(unwalked(context), unwalked(evaluator), unwalked(batch), unwalked(tally))
        )
    with context.engine.begin() as connection:
        finish_shard(connection, run_id, shard, total.customers, now())
    return run_figures(total, revision[:12])


def now() -> datetime:
    """When a figure was recorded (housekeeping only: never a rule's clock)."""
    return datetime.now(UTC)


def publish(total: RunSummary, revision: str, prefix: str) -> None:
    """Firings per rule and the run's totals, as artifacts."""
    artifacts.counts_table(
        f"{prefix}-firings",
        _("Firings per rule (revision {revision})").format(revision=revision),
        N_("rule"),
        total.firings,
    )
    artifacts.summary(f"{prefix}-summary", _("Run summary"), run_figures(total, revision))


def run_figures(total: RunSummary, revision: str) -> dict[str, object]:
    return {
        N_("revision"): revision,
        N_("customers"): total.customers,
        N_("firings"): sum(total.firings.values()),
        N_("messages planned"): total.messages,
        N_("tasks opened"): total.tasks,
    }
