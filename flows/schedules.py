"""The one schedule definition (`prefect.yaml`), read for both ways of running it.

`served_deployments()` turns it into Prefect deployments for `prefect.serve` (schedules
need a Prefect server), named apart from the work pool's (`daily-served` next to
`daily`): `prefect.serve` upserts deployments by name, and taking over the pool's left
the workers' runs without code to download ("storage at None"). `embedded_scheduler()`
turns it into APScheduler jobs whose job store is a table in Rapport's own database,
for running without any server. Both read the same entries, and a test checks that
they fire at the same moments.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from prefect import Flow
from prefect.schedules import Cron
from ruamel.yaml import YAML

PROJECT_FILE = Path(__file__).resolve().parent.parent / "prefect.yaml"
TIMEZONE_PLACEHOLDER = "{{ $RAPPORT_TIMEZONE }}"
SERVED_SUFFIX = "-served"
JOB_TABLE = "apscheduler_jobs"


@dataclass(frozen=True)
class Scheduled:
    """One deployment of `prefect.yaml`."""

    name: str  # the deployment's name, e.g. "daily"
    entrypoint: str  # "flows/evaluate.py:evaluate_rules"
    description: str
    crons: tuple[str, ...]
    timezone: str
    concurrency_limit: int | None

    def flow(self) -> Flow[..., Any]:
        return load_flow(self.entrypoint)

    @property
    def job_id(self) -> str:
        return f"{self.flow().name}/{self.name}"

    @property
    def served_name(self) -> str:
        """The name `rapport serve` gives its deployment: not the work pool's."""
        return f"{self.name}{SERVED_SUFFIX}"


@dataclass(frozen=True)
class PoolSchedule:
    """An active schedule of a work-pool deployment of one of Rapport's flows."""

    deployment: str  # "evaluate-rules/daily"
    pool: str
    schedule_id: str


def read_schedules(timezone: str, path: Path = PROJECT_FILE) -> list[Scheduled]:
    """The deployments of `path`, with the timezone placeholder filled in."""
    project = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    found = []
    for entry in project["deployments"]:
        crons, zones = [], set()
        for schedule in entry.get("schedules") or []:
            crons.append(schedule["cron"])
            zones.add(str(schedule.get("timezone", "UTC")).replace(TIMEZONE_PLACEHOLDER, timezone))
        if len(zones) > 1:
            raise ValueError(f"{entry['name']}: one timezone per deployment, not {sorted(zones)}")
        found.append(
            Scheduled(
                name=entry["name"],
                entrypoint=entry["entrypoint"],
                description=entry.get("description", ""),
                crons=tuple(crons),
                timezone=zones.pop() if zones else timezone,
                concurrency_limit=entry.get("concurrency_limit"),
            )
        )
    return found


def served_deployments(schedules: list[Scheduled]) -> list[Any]:
    """Deployments for `prefect.serve`, one per entry, with its cron schedules."""
    return [
        s.flow().to_deployment(
            name=s.served_name,
            schedules=[Cron(cron, timezone=s.timezone) for cron in s.crons],
            description=s.description,
            concurrency_limit=s.concurrency_limit,
        )
        for s in schedules
    ]


def pool_schedules(schedules: list[Scheduled]) -> list[PoolSchedule]:
    """The active schedules, on the Prefect server of PREFECT_API_URL, of work-pool
    deployments of the same flows: each of those runs a second time on a worker when
    `rapport serve` runs it here."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    names = FlowFilter(name=FlowFilterName(any_=sorted({s.flow().name for s in schedules})))
    with get_client(sync_client=True) as client:
        flows = {flow.id: flow.name for flow in client.read_flows(flow_filter=names)}
        deployments = client.read_deployments(flow_filter=names)
    return [
        PoolSchedule(f"{flows[d.flow_id]}/{d.name}", d.work_pool_name, str(schedule.id))
        for d in deployments
        if d.work_pool_name and not d.paused and d.flow_id in flows
        for schedule in d.schedules
        if schedule.active
    ]


def triggers(scheduled: Scheduled) -> list[CronTrigger]:
    return [CronTrigger.from_crontab(cron, timezone=scheduled.timezone) for cron in scheduled.crons]


def embedded_scheduler(
    schedules: list[Scheduled],
    database_url: str,
    kind: type[BaseScheduler] = BlockingScheduler,
) -> BaseScheduler:
    """An APScheduler that runs each scheduled flow in this process, its jobs stored
    in Rapport's database (so a restart keeps track of missed runs). A run that is
    late by under 10 minutes still happens; runs missed for longer collapse into one.
    `kind`: blocking for `rapport serve --embedded`, background to look at it."""
    scheduler = kind(
        jobstores={"default": SQLAlchemyJobStore(url=database_url, tablename=JOB_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 600},
    )
    for scheduled in schedules:
        for number, trigger in enumerate(triggers(scheduled)):
            scheduler.add_job(
                "flows.schedules:run_flow",
                trigger=trigger,
                args=[scheduled.entrypoint],
                id=f"{scheduled.job_id}#{number}",
                name=scheduled.job_id,
                replace_existing=True,
            )
    return scheduler


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """The flow object an entrypoint (`flows/evaluate.py:evaluate_rules`) names."""
    path, _, function = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    found = getattr(module, function)
    if not isinstance(found, Flow):
        raise TypeError(f"{entrypoint} is not a flow")
    return found


def run_flow(entrypoint: str) -> None:
    """An embedded job: run the flow here; it records to Prefect's API if one is
    configured (PREFECT_API_URL), else to the ephemeral one."""
    result = load_flow(entrypoint)()
    if inspect.isawaitable(result):
        asyncio.run(cast(Coroutine[Any, Any, Any], result))
