"""Scale-out on the work pool: a sharded evaluation with 1 worker against 2, and 2
dispatch runs at once against 1, on PostgreSQL.

Run as `python -m bench.cluster [--customers N] [--shards S] [--messages M]`; prints
one JSON object last. Needs RAPPORT_BENCH_POSTGRES_URL (`make bench` sets it).

The cluster is the README's "Scaling out" on one machine, on loopback: a Prefect
server on PostgreSQL (its scheduler off, so no scheduled run competes with the
measured ones), Rapport's deployments (`rapport deploy`), and process workers. Each
worker takes at most 2 flow runs at a time (`--limit 2`): a waiting evaluate-rules
parent and one shard, the share of one machine. So with 1 worker the shards run one
after the other; with 2, side by side, as on two machines. This machine has 2 cores
that PostgreSQL shares, so the ratio is the floor of what two machines give.

- Evaluation: `evaluate-rules/daily` with `shards=S` over N customers, as of the day
  after the sample's last event; timed from the parent's start to its end (the
  server's clock), the work of the run before it cleared away between rounds.
- Dispatch: M due emails to a loopback SMTP sink, delivered by 1 run of
  `dispatch-outbox/every-5-minutes`, then (planned again) by 2 runs started together;
  timed from the first start to the last end.

Starting and stopping go through `start_cluster`/`stop_cluster`, small enough to hand
over to `scripts/cluster-up` and `scripts/cluster-down` later.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from bench.__main__ import END, sample
from bench.databases import CLEARED, fresh_database
from bench.dispatch import NOON, plan
from rapport.demo.smtp_sink import running_sink
from storage.imports import import_customers, import_events
from storage.tables import MESSAGES

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POOL = "rapport-process"
EVALUATE = "evaluate-rules/daily"
DISPATCH = "dispatch-outbox/every-5-minutes"
PREFECT_DATABASE = "rapport_bench_prefect"


@dataclass
class Cluster:
    env: dict[str, str]  # what a process of the cluster sees (Prefect's API, Rapport's db)
    processes: list[subprocess.Popen[bytes]]

    @property
    def api(self) -> str:
        return self.env["PREFECT_API_URL"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prefect_database_url(rapport_url: str) -> str:
    """Prefect's own database, beside Rapport's on the same PostgreSQL server."""
    started = subprocess.run(
        [str(ROOT / "scripts" / "postgres-start"), PREFECT_DATABASE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    url = make_url(started or rapport_url).set(drivername="postgresql+asyncpg")
    return url.render_as_string(hide_password=False)


def cluster_env(rapport_url: str, home: Path, smtp_port: int) -> dict[str, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAPPORT_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_API_DATABASE_CONNECTION_URL=prefect_database_url(rapport_url),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
        RAPPORT_DATABASE_URL=rapport_url,
        RAPPORT_SMTP_HOST="127.0.0.1",
        RAPPORT_SMTP_PORT=str(smtp_port),
        RAPPORT_SECRET_KEY="bench-cluster-" + "k" * 32,
        RAPPORT_PUBLIC_URL="https://rapport.example.com",
        RAPPORT_OUTBOX_DIR=str(home / "outbox"),
        RAPPORT_REPORTS_DIR=str(home / "reports"),
    )
    return env


def spawn(env: dict[str, str], *command: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=output, start_new_session=True
        )


def start_cluster(env: dict[str, str], workers: int) -> Cluster:
    """A Prefect server, Rapport's deployments on the process pool, `workers` workers."""
    home = Path(env["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    server = spawn(env, str(BIN / "prefect"), "server", "start", log=home / "server.log")
    cluster = Cluster(env, [server])
    try:
        wait_until(lambda: healthy(cluster.api), 300, "the Prefect server")
        deployed = subprocess.run(
            [str(BIN / "rapport"), "deploy"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if deployed.returncode != 0:
            raise RuntimeError(f"rapport deploy failed: {deployed.stderr[-2000:]}")
        add_workers(cluster, workers)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def add_workers(cluster: Cluster, count: int) -> None:
    home = Path(cluster.env["PREFECT_HOME"])
    for _ in range(count):
        number = len(cluster.processes)
        cluster.processes.append(
            spawn(
                cluster.env,
                *(str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--limit", "2"),
                log=home / f"worker-{number}.log",
            )
        )


def stop_workers(cluster: Cluster) -> None:
    """Stops every process but the server (the first)."""
    for process in cluster.processes[1:]:
        stop(process)
    del cluster.processes[1:]


def stop_cluster(cluster: Cluster) -> None:
    for process in reversed(cluster.processes):
        stop(process)
    cluster.processes.clear()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Any, seconds: float, what: str) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if result := check():
            return result
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {seconds:.0f} s")


def start_run(api: str, deployment: str, parameters: dict[str, Any]) -> str:
    found = httpx.get(f"{api}/deployments/name/{deployment}", timeout=10)
    found.raise_for_status()
    created = httpx.post(
        f"{api}/deployments/{found.json()['id']}/create_flow_run",
        json={"parameters": parameters},
        timeout=10,
    )
    created.raise_for_status()
    return str(created.json()["id"])


def finished(api: str, run_ids: list[str], seconds: float) -> list[dict[str, Any]]:
    """The runs once all are final; raises unless every one completed."""

    def final() -> list[dict[str, Any]] | None:
        runs = [httpx.get(f"{api}/flow_runs/{i}", timeout=10).json() for i in run_ids]
        done = all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs)
        return runs if done else None

    runs: list[dict[str, Any]] = wait_until(final, seconds, "the measured runs")
    if failed := [r["name"] for r in runs if r["state_type"] != "COMPLETED"]:
        raise RuntimeError(f"runs did not complete: {failed}")
    return runs


def span(runs: list[dict[str, Any]]) -> float:
    """Seconds from the first run's start to the last one's end, by the server's clock."""
    starts = [datetime.fromisoformat(r["start_time"]) for r in runs]
    ends = [datetime.fromisoformat(r["end_time"]) for r in runs]
    return (max(ends) - min(starts)).total_seconds()


def clear(engine: Engine) -> None:
    """What an earlier round wrote, so every round does the same work. TRUNCATE first:
    a DELETE of 100,000s of firings checks each against the outbox and the tasks,
    whose `firing_id` has no index (minutes on PostgreSQL)."""
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE outbox_journal, outbox_messages, staff_tasks, rule_firings")
        )
        for statement in CLEARED:
            connection.execute(text(statement))


def evaluation_round(cluster: Cluster, engine: Engine, shards: int, as_of: datetime) -> float:
    clear(engine)
    parameters = {"as_of": as_of.isoformat(), "shards": shards}
    (run,) = finished(cluster.api, [start_run(cluster.api, EVALUATE, parameters)], 7200)
    return span([run])


def dispatch_round(cluster: Cluster, engine: Engine, messages: int, runs: int) -> float:
    clear(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM customers WHERE id LIKE 'b%'"))
    plan(engine, messages)
    parameters = {"as_of": NOON.isoformat(), "batch_size": 500, "max_batches": 10_000}
    ids = [start_run(cluster.api, DISPATCH, parameters) for _ in range(runs)]
    took = span(finished(cluster.api, ids, 3600))
    with engine.connect() as connection:
        sent = connection.scalar(
            select(func.count()).select_from(MESSAGES).where(MESSAGES.c.status == "sent")
        )
    if sent != messages:
        raise RuntimeError(f"{sent} of {messages} messages sent")
    return took


@contextmanager
def cluster_running(env: dict[str, str], workers: int) -> Iterator[Cluster]:
    cluster = start_cluster(env, workers)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def run(customers: int, events: float, shards: int, messages: int) -> dict[str, Any]:
    url = os.environ.get("RAPPORT_BENCH_POSTGRES_URL")
    if not url:
        raise SystemExit("RAPPORT_BENCH_POSTGRES_URL is not set (make bench sets it)")
    files = sample(customers, events)
    engine = fresh_database(url)
    started = time.perf_counter()
    import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
    import_events(engine, files.events, imported_at=END)
    loaded = time.perf_counter() - started
    as_of = END + timedelta(days=1)
    evaluation: dict[str, float] = {}
    dispatch: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rapport-cluster-") as name:
        folder = Path(name)
        with running_sink(folder) as (smtp_port, _):
            env = cluster_env(url, folder / "prefect", smtp_port)
            with cluster_running(env, 1) as cluster:
                evaluation["1 worker"] = evaluation_round(cluster, engine, shards, as_of)
                stop_workers(cluster)
                add_workers(cluster, 2)
                evaluation["2 workers"] = evaluation_round(cluster, engine, shards, as_of)
                dispatch["1 run"] = dispatch_round(cluster, engine, messages, 1)
                dispatch["2 runs"] = dispatch_round(cluster, engine, messages, 2)
    engine.dispose()
    return {
        "customers": files.customer_count,
        "events": files.event_count,
        "load_seconds": loaded,
        "shards": shards,
        "evaluation_seconds": evaluation,
        "evaluation_ratio": evaluation["1 worker"] / evaluation["2 workers"],
        "messages": messages,
        "dispatch_seconds": dispatch,
        "dispatch_ratio": dispatch["1 run"] / dispatch["2 runs"],
        "measured_at": datetime.now(UTC).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events-per-customer", type=float, default=5.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--messages", type=int, default=5_000)
    args = parser.parse_args()
    figures = run(args.customers, args.events_per_customer, args.shards, args.messages)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
