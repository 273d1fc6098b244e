"""API intake: sustained `POST /events` throughput and feedback-escalation latency.

Run as `python -m bench.api [--customers N] [--batches B] [--batch-size S]`; prints one
JSON object last. SQLite always, then PostgreSQL too when `RAPPORT_BENCH_POSTGRES_URL`
is set (its `public` schema is dropped and rebuilt: give it a throwaway database).

For each database:

- Setup: a fresh, migrated database in a scratch folder; N customers (20,000) from
  `write_sample`, imported with `import_customers` (no event history: every purchase
  posted below is a customer's first or an early one, so the event rules have work).
- The API (`rapport api`) runs as a process of its own on 127.0.0.1 with a freshly
  minted ingest and staff key, exactly as deployed: its own reaction worker thread
  runs the event rules on each accepted batch while the next batches arrive.
- Throughput: this process — the second one — posts B batches of S events (100 × 500)
  one after another over one keep-alive httpx connection: 60 % `login`, 40 %
  `purchase` (amount, product, quantity), unique ids, random customers, occurred a
  few minutes ago. Every request body is encoded before the clock starts. Reported:
  events stored ÷ wall time, and the p50 / p99 of the per-request latency. Every
  response must report all S events stored, and the events table must hold them all.
- Reaction backlog: the worker is handed one job per batch and runs them one at a
  time, so it may still be busy when the last batch is accepted. Reported: how many
  posted purchases had no reaction yet at that moment, `drain_seconds` from then until
  none is left, and `reacted_purchases_per_second` (purchases ÷ load plus drain time).
- Escalation: one `feedback` event of level `major` is posted, then
  `GET /tasks?owner=management` is polled with the staff key every 100 ms until the
  `feedback_major_to_management` task of that customer is there; the figure is the
  time from the POST's response to the first poll that sees the task. One is posted
  right after the last batch (it queues behind the backlog:
  `escalation_after_load_seconds`), five more once every reaction is done
  (`escalation_seconds`); `escalation_max_seconds` is the largest of all six. The
  goal is under 60 s.
- With serve: `rapport serve --embedded` is started as a third process against the
  same database (its outbox and Prefect home in the scratch folder) and three more
  escalations are timed (`escalation_with_serve_seconds`). The API's own worker
  makes the task; serve's every-minute `ingest-events` flow only catches up on
  events the worker missed, so this should change nothing. `--no-serve` skips it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, or_, select

from bench.databases import fresh_database
from rapport.api.keys import Role, new_key
from rapport.demo.sample import write_sample
from storage.imports import import_customers
from storage.tables import EVENTS

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
PURCHASE_SHARE = 0.4
PRODUCTS = (("coffee-beans", 128.0), ("water-filter", 160.0), ("grinder", 2_400.0))
ESCALATION_RULE = "feedback_major_to_management"
POLL_SECONDS = 0.1
ESCALATION_TIMEOUT = 180.0  # a task missing this long is a failure, not a figure
START_TIMEOUT = 90.0
RAPPORT = [sys.executable, "-c", "from rapport.cli.app import main; main()"]


def sample_customers(folder: Path, count: int) -> Path:
    """customers.csv with `count` customers (no events)."""
    files = write_sample(
        folder, customers=count, events_per_customer=0, end=datetime.now(UTC).replace(microsecond=0)
    )
    return files.customers


def load_customers(engine: Engine, customers_csv: Path) -> list[str]:
    """Imports the customers; returns their ids."""
    report = import_customers(engine, customers_csv, default_timezone="Asia/Shanghai")
    if report.rejected:
        raise RuntimeError(f"customer import rejected {report.rejected} rows: {report.samples}")
    with customers_csv.open(encoding="utf-8", newline="") as handle:
        ids = [row["id"] for row in csv.DictReader(handle)]
    if report.inserted != len(ids):
        raise RuntimeError(f"imported {report.inserted} customers, expected {len(ids)}")
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def minted_keys() -> tuple[dict[Role, str], str]:
    """A fresh ingest and staff key, and the RAPPORT_API_KEYS value naming them."""
    keys: dict[Role, str] = {}
    entries = []
    for role in ("ingest", "staff"):
        key, entry = new_key(f"bench-{role}", role)
        keys[role] = key
        entries.append(asdict(entry))
    return keys, json.dumps(entries)


def environment(url: str, api_keys: str, folder: Path) -> dict[str, str]:
    """The environment of the API and serve processes: this database and keys, the
    working tree's rules and templates, outbox and Prefect home in the scratch folder."""
    env = dict(os.environ)
    env.update(
        RAPPORT_DATABASE_URL=url,
        RAPPORT_API_KEYS=api_keys,
        RAPPORT_SECRET_KEY=secrets.token_urlsafe(32),  # the documented default is refused
        RAPPORT_RULES_DIR=str(ROOT / "rules"),
        RAPPORT_TEMPLATES_DIR=str(ROOT / "templates" / "messages"),
        RAPPORT_OUTBOX_DIR=str(folder / "outbox"),
        PREFECT_HOME=str(folder / "prefect"),
        PYTHONUNBUFFERED="1",
    )
    return env


def log_tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@contextmanager
def running(
    arguments: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`rapport ARGUMENTS` as a child process, its output in `log`; stopped on exit."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*RAPPORT, *arguments], env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_until_healthy(
    client: httpx.Client, url: str, process: subprocess.Popen[bytes], log: Path
) -> float:
    """Seconds until `/healthz` answers; raises with the server's log if it never does."""
    started = time.perf_counter()
    while time.perf_counter() - started < START_TIMEOUT:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}:\n{log_tail(log)}")
        try:
            if client.get(f"{url}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"the API did not answer /healthz in {START_TIMEOUT:.0f} s:\n{log_tail(log)}"
    )


def wait_for_log(process: subprocess.Popen[bytes], log: Path, marker: str) -> float:
    """Seconds until `marker` appears in the process's output."""
    started = time.perf_counter()
    while time.perf_counter() - started < START_TIMEOUT:
        if marker in log.read_text(encoding="utf-8", errors="replace"):
            return time.perf_counter() - started
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode}:\n{log_tail(log)}")
        time.sleep(0.1)
    raise RuntimeError(f"no {marker!r} in {START_TIMEOUT:.0f} s:\n{log_tail(log)}")


def event_batches(
    customers: list[str], batches: int, size: int, now: datetime, seed: int = 11
) -> list[bytes]:
    """The request bodies, encoded: logins and purchases with unique ids."""
    rng = random.Random(seed)
    bodies = []
    for batch in range(batches):
        events: list[dict[str, Any]] = []
        for number in range(size):
            occurred = now - timedelta(minutes=rng.randint(1, 120), seconds=rng.randint(0, 59))
            event: dict[str, Any] = {
                "id": f"api-{batch:04d}-{number:04d}",
                "customer_id": rng.choice(customers),
                "type": "login",
                "occurred_at": occurred.isoformat(),
            }
            if rng.random() < PURCHASE_SHARE:
                product, price = rng.choice(PRODUCTS)
                quantity = rng.randint(1, 3)
                event.update(type="purchase", product=product, quantity=quantity)
                event["amount"] = price * quantity
            events.append(event)
        bodies.append(json.dumps(events).encode("utf-8"))
    return bodies


def post_load(
    client: httpx.Client, url: str, key: str, bodies: list[bytes], size: int
) -> dict[str, Any]:
    """Posts every body in turn; wall time, latencies and what the API stored."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    latencies: list[float] = []
    stored = 0
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        response = client.post(f"{url}/events", content=body, headers=headers)
        latencies.append(time.perf_counter() - sent)
        if response.status_code != 200:
            raise RuntimeError(f"POST /events: {response.status_code} {response.text[:500]}")
        result = response.json()
        if result["stored"] != size:
            problems = [r for r in result["results"] if r["status"] != "stored"][:3]
            raise RuntimeError(f"only {result['stored']} of {size} stored: {problems}")
        stored += result["stored"]
    seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "events": stored,
        "seconds": seconds,
        "events_per_second": stored / seconds,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "max_ms": max(latencies) * 1000,
    }


def unreacted_purchases(engine: Engine) -> int:
    with engine.connect() as connection:
        query = (
            select(func.count())
            .select_from(EVENTS)
            .where(EVENTS.c.type == "purchase", EVENTS.c.reacted_at.is_(None))
        )
        return int(connection.scalar(query) or 0)


def posted_events(engine: Engine) -> int:
    """Events stored with the ids this benchmark posts (the rules add `step_due` events)."""
    posted = or_(EVENTS.c.id.like("api-%"), EVENTS.c.id.like("feedback-%"))
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(EVENTS).where(posted)) or 0)


def wait_for_drain(engine: Engine, since: float, timeout: float = 600.0) -> float:
    """Seconds from `since` (a perf_counter reading) until every posted purchase has had
    its reaction."""
    while unreacted_purchases(engine):
        if time.perf_counter() - since > timeout:
            raise RuntimeError(f"reactions not done after {timeout:.0f} s")
        time.sleep(0.1)
    return time.perf_counter() - since


def posted_purchases(engine: Engine) -> int:
    with engine.connect() as connection:
        query = (
            select(func.count())
            .select_from(EVENTS)
            .where(EVENTS.c.type == "purchase", EVENTS.c.id.like("api-%"))
        )
        return int(connection.scalar(query) or 0)


def escalation(
    client: httpx.Client, url: str, keys: dict[Role, str], customer: str, tag: str
) -> float:
    """Seconds from a major feedback's POST response to its management task existing."""
    event = {
        "id": f"feedback-{tag}",
        "customer_id": customer,
        "type": "feedback",
        "occurred_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "level": "major",
        "category": "complaint",
        "text": "A group of customers report the same defect.",
    }
    response = client.post(f"{url}/events", json=event, headers={"X-API-Key": keys["ingest"]})
    accepted = time.perf_counter()
    if response.status_code != 200 or response.json()["stored"] != 1:
        raise RuntimeError(f"feedback not stored: {response.status_code} {response.text[:500]}")
    headers = {"X-API-Key": keys["staff"]}
    while True:
        tasks = client.get(f"{url}/tasks", params={"owner": "management"}, headers=headers)
        tasks.raise_for_status()
        if any(
            t["customer_id"] == customer and t["rule_id"] == ESCALATION_RULE for t in tasks.json()
        ):
            return time.perf_counter() - accepted
        if time.perf_counter() - accepted > ESCALATION_TIMEOUT:
            raise RuntimeError(
                f"no {ESCALATION_RULE} task for {customer} after {ESCALATION_TIMEOUT} s"
            )
        time.sleep(POLL_SECONDS)


def measure(
    url: str, folder: Path, customers_csv: Path, batches: int, size: int, serve: bool
) -> dict[str, Any]:
    """Every figure for one database."""
    engine = fresh_database(url)
    try:
        return measure_on(engine, url, folder, customers_csv, batches, size, serve)
    finally:
        engine.dispose()


def measure_on(
    engine: Engine,
    url: str,
    folder: Path,
    customers_csv: Path,
    batches: int,
    size: int,
    serve: bool,
) -> dict[str, Any]:
    """The figures on a fresh database (`engine` is this process's view of `url`)."""
    customers = load_customers(engine, customers_csv)
    keys, api_keys = minted_keys()
    env = environment(url, api_keys, folder)
    bodies = event_batches(customers, batches, size, datetime.now(UTC))
    rng = random.Random(5)
    escalated = iter(rng.sample(customers, 20))
    port = free_port()
    api_url = f"http://{LOOPBACK}:{port}"
    figures: dict[str, Any] = {"database": engine.dialect.name, "customers": len(customers)}
    api_log = folder / f"api-{engine.dialect.name}.log"
    arguments = ["api", "--host", LOOPBACK, "--port", str(port)]
    with (
        running(arguments, env, api_log) as api,
        httpx.Client(timeout=120, headers={"Connection": "keep-alive"}) as client,
    ):
        figures["api_start_seconds"] = wait_until_healthy(client, api_url, api, api_log)
        load = post_load(client, api_url, keys["ingest"], bodies, size)
        load_end = time.perf_counter()
        backlog = unreacted_purchases(engine)
        after_load = escalation(client, api_url, keys, next(escalated), "after-load")
        drain = wait_for_drain(engine, load_end)
        purchases = posted_purchases(engine)
        figures.update(batches=batches, batch_size=size, **load)
        figures.update(
            purchases=purchases,
            unreacted_purchases_after_load=backlog,
            drain_seconds=drain,
            reacted_purchases_per_second=purchases / (load["seconds"] + drain),
        )
        at_rest = [
            escalation(client, api_url, keys, next(escalated), f"rest-{n}") for n in range(5)
        ]
        figures.update(
            escalation_after_load_seconds=after_load,
            escalation_seconds=at_rest,
            escalation_max_seconds=max([after_load, *at_rest]),
        )
        if serve:
            serve_log = folder / f"serve-{engine.dialect.name}.log"
            with running(["serve", "--embedded"], env, serve_log) as scheduler:
                figures["serve_start_seconds"] = wait_for_log(
                    scheduler, serve_log, "embedded scheduler running"
                )
                figures["escalation_with_serve_seconds"] = [
                    escalation(client, api_url, keys, next(escalated), f"serve-{n}")
                    for n in range(3)
                ]
                if scheduler.poll() is not None:
                    raise RuntimeError(f"serve exited early:\n{log_tail(serve_log)}")
    if api.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"the API exited with {api.returncode}:\n{log_tail(api_log)}")
    in_table = posted_events(engine)
    expected = batches * size + 1 + 5 + (3 if serve else 0)
    if in_table != expected:
        raise RuntimeError(f"the events table holds {in_table} events, expected {expected}")
    figures["events_in_table"] = in_table
    return figures


def run(customers: int, batches: int, size: int, serve: bool) -> dict[str, Any]:
    urls = {"sqlite": ""}
    postgres = os.environ.get("RAPPORT_BENCH_POSTGRES_URL")
    if postgres:
        urls["postgresql"] = postgres
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rapport-bench-api-") as name:
        folder = Path(name)
        urls["sqlite"] = f"sqlite:///{folder / 'api.db'}"
        customers_csv = sample_customers(folder / "sample", customers)
        for url in urls.values():
            results.append(measure(url, folder, customers_csv, batches, size, serve))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    first = results[0]
    return {**first, "databases": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--no-serve", action="store_true", help="Skip `rapport serve --embedded`.")
    args = parser.parse_args()
    print(json.dumps(run(args.customers, args.batches, args.batch_size, not args.no_serve)))


if __name__ == "__main__":
    main()
