"""One schedule definition, two ways of running it: they must fire at the same moments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import create_engine, inspect, text

from flows.schedules import (
    JOB_TABLE,
    embedded_scheduler,
    read_schedules,
    served_deployments,
    triggers,
)

START = datetime(2026, 11, 24, 3, 17, tzinfo=UTC)
FLOW_NAMES = {
    "evaluate-rules",
    "evaluate-shard",  # no schedule: each evaluation starts its shards
    "dispatch-outbox",
    "watch-sla",
    "ingest-events",
    "daily-report",
}


def prefect_dates(schedule: object, count: int) -> list[datetime]:
    """The next `count` runs Prefect's scheduler would create for a deployment schedule."""
    from prefect.server.schemas.schedules import CronSchedule

    client = schedule.schedule  # type: ignore[attr-defined]
    server = CronSchedule(cron=client.cron, timezone=client.timezone, day_or=client.day_or)
    return [d.astimezone(UTC) for d in asyncio.run(server.get_dates(n=count, start=START))]


def apscheduler_dates(trigger: object, count: int) -> list[datetime]:
    dates: list[datetime] = []
    previous = None
    now = START
    while len(dates) < count:
        fire = trigger.get_next_fire_time(previous, now)  # type: ignore[attr-defined]
        dates.append(fire.astimezone(UTC))
        previous, now = fire, fire + timedelta(microseconds=1)
    return dates


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "Europe/Berlin"])
def test_served_and_embedded_schedules_fire_at_the_same_moments(timezone: str) -> None:
    schedules = read_schedules(timezone)
    assert {s.flow().name for s in schedules} == FLOW_NAMES
    deployments = served_deployments(schedules)
    compared = 0
    for scheduled, deployment in zip(schedules, deployments, strict=True):
        assert deployment.name == scheduled.served_name != scheduled.name
        assert len(deployment.schedules) == len(scheduled.crons)
        for served, trigger in zip(deployment.schedules, triggers(scheduled), strict=True):
            assert served.schedule.timezone == timezone
            expected = prefect_dates(served, 30)
            assert apscheduler_dates(trigger, 30) == expected
            compared += 1
    assert compared == 5


def test_evaluation_runs_every_morning_in_the_configured_timezone() -> None:
    (evaluation,) = [
        s for s in read_schedules("Asia/Shanghai") if s.flow().name == "evaluate-rules"
    ]
    (trigger,) = triggers(evaluation)
    first = apscheduler_dates(trigger, 1)[0]
    assert first == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai


def test_the_embedded_scheduler_keeps_its_jobs_in_rapports_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rapport.db'}"
    scheduler = embedded_scheduler(read_schedules("Asia/Shanghai"), url, BackgroundScheduler)
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {
        "evaluate-rules/daily#0",
        "dispatch-outbox/every-5-minutes#0",
        "watch-sla/every-5-minutes#0",
        "daily-report/daily#0",
        "ingest-events/every-minute#0",
    }
    engine = create_engine(url)
    assert JOB_TABLE in inspect(engine).get_table_names()
    with engine.connect() as connection:
        stored = connection.scalar(text(f"SELECT count(*) FROM {JOB_TABLE}"))
    assert stored == len(jobs)
