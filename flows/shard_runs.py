"""Two ways to run the shards of an evaluation, one round at a time.

From a deployment on a work pool, each shard is a flow run of the shard deployment
(`evaluate-shard/shard` in prefect.yaml), which any worker of the pool takes: N
workers on N machines share one evaluation. Anywhere else (`rapport serve`, embedded
mode, the ephemeral API, tests) there may be no worker to take them, so the shards run
here, one after the other, as subflows. Both run the same shard flow with the same
parameters, so the figures are the same.
"""

from __future__ import annotations

import time
from typing import Any, cast
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.deployments import run_deployment
from prefect.states import State

from rapport.services.sharding import RunRound, ShardPlan

SHARD_DEPLOYMENT = "evaluate-shard/shard"
POLL_SECONDS = 2.0  # how often the parent asks the server how its shards are doing


def on_work_pool() -> bool:
    """Whether this flow run came from a deployment on a work pool (a worker started it)."""
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    return bool(run and run.deployment_id and run.work_pool_name)


def current_run_id() -> str:
    """This flow run's id: what a parent files its shards' figures under."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("shards are run from a flow run")
    return str(context.flow_run.id)


def in_process(shard_flow: Flow[..., Any], plan: ShardPlan) -> RunRound:
    """Each shard as a subflow of this run, one after the other."""

    def run_round(shards: list[int], attempt: int) -> dict[int, str]:
        failures = {}
        for shard in shards:
            state = cast(State[Any], shard_flow(**plan.parameters(shard), return_state=True))
            if not state.is_completed():
                failures[shard] = f"{state.name}: {state.message}"
        return failures

    return run_round


def on_pool(plan: ShardPlan) -> RunRound:
    """Each shard as a flow run of the shard deployment, all started at once, then
    waited for. The idempotency key makes a retried parent find its shard runs again
    instead of starting twins."""

    def run_round(shards: list[int], attempt: int) -> dict[int, str]:
        started: dict[int, UUID] = {}
        for shard in shards:
            run: FlowRun = run_deployment(  # type: ignore[assignment]
                SHARD_DEPLOYMENT,
                parameters=plan.parameters(shard),
                timeout=0,
                idempotency_key=f"{plan.run_id}:{shard}:{attempt}",
            )
            started[shard] = run.id
        finished = wait_for(started)
        return {
            shard: f"{run.state_name}: {run.state.message if run.state else ''}"
            for shard, run in finished.items()
            if not (run.state and run.state.is_completed())
        }

    return run_round


def wait_for(runs: dict[int, UUID]) -> dict[int, FlowRun]:
    """Polls the server until every run is final (completed, failed, crashed, cancelled)."""
    done: dict[int, FlowRun] = {}
    with get_client(sync_client=True) as client:
        while True:
            for shard, run_id in runs.items():
                if shard not in done:
                    run = client.read_flow_run(run_id)
                    if run.state and run.state.is_final():
                        done[shard] = run
            if len(done) == len(runs):
                return done
            time.sleep(POLL_SECONDS)
