"""`rapport serve --embedded` as a real process: its flows share one temporary Prefect
API, and SIGTERM stops everything it started.

Before, each flow run started Prefect's temporary API server on first use (two flows
due at once raced to start two), and the server outlived the process after SIGTERM.

No cron minute is waited for: two runs due now are put in the embedded scheduler's
job store (Rapport's database) before the process starts, as a restart finds runs it
missed, and it runs them at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from flows.embedded import temporary_api
from flows.schedules import JOB_TABLE
from tests.flows.test_deploy import RAPPORT, isolated_environment, run, wait_until
from tests.paths import ROOT

ENTRYPOINT = "flows/ingest.py:ingest_events"  # quick on an empty database
STARTUP = 240.0  # seconds: the temporary API's start, then two flow runs


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    env = isolated_environment(tmp_path, "embedded")
    upgraded = run(env, RAPPORT, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    return env


def add_runs_due_now(database_url: str, count: int) -> None:
    """`count` runs of one flow due this moment, written straight into the job store
    `serve` reads (a scheduler of the test's own would run them itself)."""
    store = SQLAlchemyJobStore(url=database_url, tablename=JOB_TABLE)
    scheduler = BackgroundScheduler()  # never started: only the jobs' owner
    store.start(scheduler, "default")
    now = datetime.now(UTC)
    try:
        for number in range(count):
            store.add_job(
                Job(
                    scheduler,
                    id=f"due-now#{number}",
                    func="flows.schedules:run_flow",
                    trigger=DateTrigger(now),
                    executor="default",
                    args=[ENTRYPOINT],
                    kwargs={},
                    name="due-now",
                    misfire_grace_time=600,
                    coalesce=True,
                    max_instances=1,
                    next_run_time=now,
                )
            )
    finally:
        store.shutdown()


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (pid → command line), from /proc."""
    parents: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        parent = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(parent, []).append(int(entry.name))
        commands[int(entry.name)] = command
    found: dict[int, str] = {}
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found[child] = commands[child]
        todo.extend(parents.get(child, []))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_two_flows_due_at_once_share_one_api_and_sigterm_stops_everything(
    environment: dict[str, str], tmp_path: Path
) -> None:
    add_runs_due_now(environment["RAPPORT_DATABASE_URL"], 2)
    output = tmp_path / "serve.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [RAPPORT, "serve", "--embedded"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def both_finished() -> bool:
            text = output.read_text(errors="replace")
            assert process.poll() is None, text
            return text.count("flow_runs: Finished in state Completed") >= 2

        wait_until(both_finished, STARTUP, "two flow runs finishing")
        started = descendants(process.pid)
        servers = [command for command in started.values() if "uvicorn" in command]
        assert len(servers) == 1, "\n".join(servers)

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        survivors = {pid: command for pid, command in started.items() if alive(pid)}
        assert survivors == {}, output.read_text(errors="replace")
        assert process.returncode == 0, output.read_text(errors="replace")
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group outlives its leader
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_a_configured_prefect_api_is_used_and_none_is_started() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = "http://127.0.0.1:4399/api"
    with temporary_settings(updates={PREFECT_API_URL: api}):
        before = descendants(os.getpid())
        with temporary_api() as used:
            assert used == api
            assert descendants(os.getpid()) == before
