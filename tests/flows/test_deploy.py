"""`prefect deploy` as the README says, end to end: a real Prefect server on loopback,
the process work pool, every deployment of prefect.yaml deployed, triggered and run to
completion by a process worker, and the command line's list commands working.

This is what the pins in constraints.txt are proven by: with Prefect 3.8.8 and
fastapi 0.154 the server answered 422 to the command line's own requests, and
`prefect deploy --all` stopped after its first deployment.

The server is started with `rapport ui`, so its README use is checked on the way: it
finds Prefect's command beside itself and its UI talks to its own port.

Slow but bounded: a few minutes, most of it the server's start-up.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from flows.schedules import SERVED_SUFFIX, read_schedules
from flows.shard_runs import SHARD_DEPLOYMENT
from rapport.demo.sample import write_sample
from storage.db import make_engine
from storage.imports import import_customers, import_events
from storage.tables import FIRINGS, SHARD_FIGURES
from tests.paths import ROOT

BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
RAPPORT = str(BIN / "rapport")
POOL = "rapport-process"
CUSTOMERS = 30
STARTUP = 180.0  # seconds; the server has taken 11 s alone and 55 s on a loaded machine
RUNS = 300.0
SERVED_RUN = "dispatch-outbox/every-5-minutes"  # one served deployment run is enough

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[bytes], grace: float = 60) -> None:
    """SIGTERM to the process's group, SIGKILL if it is still there after `grace`: a
    worker finishing a scheduled run it had just taken outlived 30 s once (CI, loaded
    machine); how it stops is not what these tests check."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_until(check: Any, deadline: float, what: str) -> Any:
    """Polls `check` until it returns something truthy: a server or worker doing its
    work, not a clock the test waits for."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if result := check():
            return result
        time.sleep(1)
    raise AssertionError(f"{what}: not within {deadline:.0f} s")


def isolated_environment(tmp_path: Path, name: str) -> dict[str, str]:
    """This process's environment without any PREFECT_ or RAPPORT_ setting, and Rapport
    and Prefect confined to `tmp_path`: what a command started by a test sees."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "RAPPORT_"))
    }
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        RAPPORT_DATABASE_URL=f"sqlite:///{tmp_path / 'rapport.db'}",
        RAPPORT_OUTBOX_DIR=str(tmp_path / "outbox"),
        RAPPORT_REPORTS_DIR=str(tmp_path / "reports"),
        RAPPORT_SECRET_KEY=f"{name}-test-" + "k" * 32,
        RAPPORT_PUBLIC_URL="https://rapport.example.com",
    )
    return env


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    env = isolated_environment(tmp_path, "deploy")
    env.update(
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        RAPPORT_STAFF_LOCALE="en",  # summary_figures reads the English artifact
        COLUMNS="200",  # the command line's tables, uncut
    )
    return env


def run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


@pytest.fixture
def server(environment: dict[str, str]) -> Iterator[dict[str, str]]:
    """A Prefect server of its own (SQLite in a temporary PREFECT_HOME), started as the
    README says, `.venv/bin/rapport ui --port N`: without the venv on PATH, and with
    another server's PREFECT_API_URL exported, which the UI must not follow."""
    port = environment["PREFECT_SERVER_API_PORT"]
    ui_env = {
        **environment,
        "PATH": "/usr/bin:/bin",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
    }
    process = subprocess.Popen(
        [RAPPORT, "ui", "--port", port],
        env=ui_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    api = environment["PREFECT_API_URL"]

    def healthy() -> bool:
        assert process.poll() is None, "the Prefect server exited"
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, STARTUP, "the Prefect server answering /health")
        ui_settings = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()
        assert ui_settings["api_url"] == environment["PREFECT_API_URL"]
        yield environment
    finally:
        stop(process)


def flow_runs(api: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{api}/flow_runs/filter", json={"limit": 200}, timeout=10)
    response.raise_for_status()
    return list(response.json())


def deployments(api: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{api}/deployments/filter", json={"limit": 200}, timeout=10)
    response.raise_for_status()
    return list(response.json())


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`rapport serve` against the same server, stopped by its pid (and its runs' group)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [RAPPORT, "serve"],
            cwd=ROOT,
            env={**env, "PREFECT_RUNNER_POLL_FREQUENCY": "2"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop(process)


def load_sample(url: str, folder: Path) -> None:
    """A few customers with a history up to now, so the evaluation has work to share."""
    engine = make_engine(url)
    files = write_sample(folder, customers=CUSTOMERS, end=datetime.now(UTC))
    import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
    import_events(engine, files.events, imported_at=datetime.now(UTC))
    engine.dispose()


def summary_figures(api: str) -> dict[str, str]:
    """The figures of the newest `evaluate-summary` artifact (markdown `- **name**: value`)."""
    response = httpx.post(
        f"{api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["evaluate-summary"]}}, "sort": "CREATED_DESC"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(re.findall(r"- \*\*(.+?)\*\*: (.+)", response.json()[0]["data"]))


def test_deploy_run_and_list_every_deployment_on_a_real_server(
    server: dict[str, str], tmp_path: Path
) -> None:
    env, api = server, server["PREFECT_API_URL"]
    assert run(env, RAPPORT, "db", "upgrade").returncode == 0
    load_sample(env["RAPPORT_DATABASE_URL"], tmp_path / "sample")

    pool = run(env, PREFECT, "work-pool", "create", POOL, "--type", "process")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    # A bare `prefect deploy` without RAPPORT_TIMEZONE stops before creating anything.
    bare = run(env, PREFECT, "--no-prompt", "deploy", "--all")
    assert bare.returncode != 0
    assert "RAPPORT_TIMEZONE is '', not a timezone" in bare.stdout + bare.stderr
    assert deployments(api) == []

    # `rapport deploy` (which would create the pool) deploys everything in Asia/Shanghai.
    deployed = run(env, RAPPORT, "deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    expected = {f"{s.flow().name}/{s.name}" for s in read_schedules("Asia/Shanghai")}
    found = deployments(api)
    flows = {
        f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}, timeout=10).json()
    }
    assert {f"{flows[d['flow_id']]}/{d['name']}" for d in found} == expected
    zones = {s["schedule"]["timezone"] for d in found for s in d["schedules"]}
    assert zones == {"Asia/Shanghai"}
    assert {d["work_pool_name"] for d in found} == {POOL}
    ids = {d["id"] for d in found}

    # `rapport serve` on the same server: its own deployments beside the pool's (it used
    # to take theirs over, and the worker's runs crashed: "storage at None"), and a
    # warning that both sets are scheduled.
    serve_log = tmp_path / "serve.log"
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", POOL],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with served(env, serve_log) as serving:

            def serving_started() -> bool:
                assert serving.poll() is None, serve_log.read_text(errors="replace")
                return "being served" in serve_log.read_text(errors="replace")

            wait_until(serving_started, STARTUP, "rapport serve serving")
            warning = serve_log.read_text(errors="replace")
            scheduled = expected - {SHARD_DEPLOYMENT}  # the shards' has no schedule
            assert all(f"{name} (work pool {POOL})" in warning for name in scheduled), warning
            pool_fields = {(d["id"], d["work_pool_name"], str(d["pull_steps"])) for d in found}
            now = {(d["id"], d["work_pool_name"], str(d["pull_steps"])) for d in deployments(api)}
            assert pool_fields <= now, "rapport serve changed the pool's deployments"
            # Every pool deployment but the shards' (the evaluation starts them: 2 here),
            # and one served deployment.
            names = sorted(scheduled) + [f"{SERVED_RUN}{SERVED_SUFFIX}"]
            for name in names:
                shards = ("--param", "shards=2") if name == "evaluate-rules/daily" else ()
                started = run(env, PREFECT, "deployment", "run", name, *shards)
                assert started.returncode == 0, started.stdout + started.stderr
            ids |= {d["id"] for d in deployments(api) if d["name"].endswith(SERVED_SUFFIX)}

            def all_finished() -> list[dict[str, Any]] | None:
                manual = [
                    r
                    for r in flow_runs(api)
                    if r["deployment_id"] in ids and not r["auto_scheduled"]
                ]
                if len(manual) == len(names) + 2 and all(  # and the two shard runs
                    r["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in manual
                ):
                    return manual
                return None

            finished = wait_until(all_finished, RUNS, "every triggered run finishing")
            states = {r["name"]: r["state_type"] for r in finished}
            assert set(states.values()) == {"COMPLETED"}, json.dumps(states)
    finally:
        stop(worker)
    # serve paused its own schedules on the way out, not the pool's.
    after = {d["id"]: d for d in deployments(api)}
    assert all(s["active"] for d in found for s in after[d["id"]]["schedules"])

    # The evaluation ran as two flow runs of the shard deployment, which the worker
    # took like any other, and its figures are their sum.
    by_flow = {flows[d["flow_id"]]: d["id"] for d in found if d["name"] in ("daily", "shard")}
    (parent,) = [r for r in finished if r["deployment_id"] == by_flow["evaluate-rules"]]
    shard_runs = [r for r in finished if r["deployment_id"] == by_flow["evaluate-shard"]]
    assert sorted(r["parameters"]["shard"] for r in shard_runs) == [0, 1]
    assert {r["parameters"]["run_id"] for r in shard_runs} == {parent["id"]}
    engine = make_engine(env["RAPPORT_DATABASE_URL"])
    with engine.connect() as connection:
        figures = dict(
            connection.execute(
                select(SHARD_FIGURES.c.figure, func.sum(SHARD_FIGURES.c["count"]))
                .where(SHARD_FIGURES.c.run_id == parent["id"])
                .group_by(SHARD_FIGURES.c.figure)
            ).all()
        )
        by_schedule = FIRINGS.c.event_id == ""  # not the event rules the other runs fired
        fired = connection.scalar(select(func.count()).select_from(FIRINGS).where(by_schedule))
    engine.dispose()
    shown = summary_figures(api)
    assert int(shown["customers"]) == figures["customers"] == CUSTOMERS
    firings = sum(count for name, count in figures.items() if name.startswith("firings:"))
    assert int(shown["firings"]) == firings == fired > 0
    assert int(shown["messages planned"]) == figures.get("messages", 0)
    assert int(shown["tasks opened"]) == figures.get("tasks", 0)

    for command in (("deployment", "ls"), ("flow-run", "ls"), ("work-pool", "ls")):
        listed = run(env, PREFECT, *command)
        assert listed.returncode == 0, f"prefect {' '.join(command)}: {listed.stderr[-500:]}"
    assert POOL in run(env, PREFECT, "work-pool", "ls").stdout
