"""`make bench`: storage and rule-evaluation figures, printed (never asserted).

Generates (once, cached under var/bench/) a base of customers and events, loads it
into a fresh SQLite file and, when `RAPPORT_BENCH_POSTGRES_URL` is set, a fresh
PostgreSQL database: import throughput (against a raw load of the same events without
checks, see `bench.phases`), facts-as-of time and peak memory for each
(`--imports-only` stops there).
Then evaluates the default rules over every customer's facts ten times, against raw
durable_rules taking the same number of facts through a trivial rule; and dispatches
5,000 messages to a loopback SMTP sink in another process, against plain aiosmtplib.
Then the HTTP API's intake (see `bench.api`), the relationship report over the whole
base (see `bench.report`). Last, Prefect's share: evaluate +
dispatch over every customer as Prefect flows against the same functions called
directly (see `bench.prefect_share`). With PostgreSQL, scale-out on the work pool: a
sharded evaluation on 1 worker against 2, 2 dispatch runs against 1 (see
`bench.cluster`; `--cluster-customers`). Then the backtest: a year of daily steps over
25,000 customers and 100,000 events, and its memory as the steps grow (see
`bench.backtest`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.databases import fresh_database
from rapport.demo.sample import SampleFiles, write_sample
from storage.imports import import_customers, import_events

console = Console()
END = datetime(2026, 11, 1, tzinfo=UTC)


def sample(customers: int, events_per_customer: float) -> SampleFiles:
    directory = Path("var/bench") / f"{customers}x{events_per_customer:g}"
    marker = directory / "counts.json"
    if marker.exists():
        counts = json.loads(marker.read_text())
        return SampleFiles(
            directory / "customers.csv",
            directory / "events.jsonl",
            counts["customers"],
            counts["events"],
        )
    console.print(f"generating {customers} customers into {directory} …")
    files = write_sample(
        directory, customers=customers, events_per_customer=events_per_customer, end=END
    )
    marker.write_text(json.dumps({"customers": files.customer_count, "events": files.event_count}))
    return files


def measured(module: str, *arguments: str) -> dict[str, Any]:
    """Runs `python -m module arguments` and reads the JSON figures it prints last."""
    command = [sys.executable, "-m", module, *arguments]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


IMPORT_GOALS = {"sqlite": 50_000, "postgresql": 100_000}  # events/s on this machine


def storage_benchmark(files: SampleFiles, databases: dict[str, str], facts: bool = True) -> None:
    table = Table(
        title=f"Rapport storage benchmark: {files.customer_count:,} customers, "
        f"{files.event_count:,} events"
    )
    for column in ("database", "phase", "rows", "seconds", "rows/s", "peak MiB"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    phases = [
        ("import customers", "import-customers", files.customers),
        ("raw load of the events, no checks (baseline)", "load-events-raw", files.events),
        ("import events", "import-events", files.events),
    ]
    if facts:
        phases.append(("facts as of T, all customers", "facts", None))
    for name, url in databases.items():
        fresh_database(url).dispose()
        rates = {}
        for label, step, path in phases:
            figures = measured("bench.phases", step, url, *([str(path)] if path else []))
            rates[step] = figures["rate"]
            table.add_row(
                name,
                label,
                f"{figures['count']:,.0f}",
                f"{figures['seconds']:.1f}",
                f"{figures['rate']:,.0f}",
                f"{figures['peak_mib']:.0f}",
            )
            console.print(f"{name}: {label} done in {figures['seconds']:.1f} s")
        goal = IMPORT_GOALS.get(name, 0)
        ratio = rates["import-events"] / rates["load-events-raw"]
        table.add_row(
            name, f"import events ÷ raw load (goal ≥ {goal:,} events/s)", "", "", f"{ratio:.2f}", ""
        )
    console.print(table)


def rules_benchmark(url: str) -> None:
    figures = measured("bench.rules", url, "rules")
    table = Table(
        title=f"Rule evaluation: {figures['rules']} default rules over "
        f"{figures['customers']:,} customers' facts (best of 10 rounds)"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    rss = figures["rss_mib"]
    for label, value in (
        ("facts as of T, loaded into memory", f"{figures['facts_seconds']:.1f} s"),
        ("Rapport evaluation", f"{figures['evaluate_seconds']:.1f} s"),
        ("Rapport evaluation rate", f"{figures['evaluate_rate']:,.0f} customers/s"),
        ("firings per round", f"{figures['firings']:,}"),
        ("raw durable_rules, trivial rule, same count", f"{figures['raw_seconds']:.1f} s"),
        ("raw durable_rules rate", f"{figures['raw_rate']:,.0f} facts/s"),
        ("Rapport ÷ raw throughput (goal ≥ 0.5)", f"{figures['ratio']:.2f}"),
        ("RSS after rounds 1..10 (MiB)", " ".join(f"{v:.0f}" for v in rss)),
        ("RSS growth round 1 → 10", f"{rss[-1] - rss[0]:+.1f} MiB"),
        ("peak memory", f"{figures['peak_mib']:.0f} MiB"),
    ):
        table.add_row(label, value)
    console.print(table)


def dispatch_benchmark() -> None:
    figures = measured("bench.dispatch")
    table = Table(
        title=f"Dispatch: {figures['messages']:,} emails to a loopback SMTP sink, "
        f"{figures['connections']} connections (best of {figures['rounds']} rounds)"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    rates, seconds = figures["rates"], figures["seconds"]
    for label, side in (
        (f"Rapport dispatch (SQLite, batches of {figures['batch']})", "rapport"),
        ("plain aiosmtplib send_message, same messages (stdlib MIME)", "plain"),
        ("plain aiosmtplib sendmail, Rapport's MIME bytes (the wire alone)", "plain_bytes"),
    ):
        table.add_row(label, f"{min(seconds[side]):.2f} s, {rates[side]:,.0f} messages/s")
    for label, value in (
        ("Rapport ÷ plain send_message (goal ≥ 0.8)", f"{figures['ratio']:.2f}"),
        ("Rapport ÷ plain sendmail of bytes", f"{figures['ratio_to_bytes']:.2f}"),
    ):
        table.add_row(label, value)
    console.print(table)


def prefect_benchmark() -> None:
    figures = measured("bench.prefect_share")
    limit = figures["max_batches"]
    table = Table(
        title=f"Prefect's share: evaluate + dispatch over {figures['customers']:,} customers, "
        "as flows and as the same functions called directly "
        f"(best of {figures['rounds']} rounds"
        + (f"; dispatch stopped after {limit} batches)" if limit else ")")
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    best, seconds = figures["best"], figures["seconds"]

    def phase(name: str, ratio: float) -> str:
        return f"{best['direct'][name]:.1f} s / {best['flows'][name]:.1f} s (× {ratio:.3f})"

    totals = {side: iter(values["total"]) for side, values in seconds.items()}
    in_order = ", ".join(f"{side} {next(totals[side]):.1f}" for side in figures["order"])

    outcomes = ", ".join(f"{name} {count:,}" for name, count in sorted(figures["outcomes"].items()))
    for label, value in (
        (
            f"evaluate, {figures['evaluate_tasks']} tasks of {figures['customer_batch']:,} "
            "customers: direct / flows",
            phase("evaluate", figures["evaluate_ratio"]),
        ),
        (
            f"dispatch, {figures['dispatch_tasks']} tasks of {figures['dispatch_batch']:,} "
            "messages: direct / flows",
            phase("dispatch", figures["dispatch_ratio"]),
        ),
        ("total: direct / flows", phase("total", figures["ratio"])),
        ("totals in run order (s)", in_order),
        ("flows ÷ direct (goal < 1.10)", f"{figures['ratio']:.3f}"),
        ("Prefect adds", f"{figures['adds_percent']:+.1f} %"),
        ("Prefect's added time ÷ task runs", f"{figures['overhead_ms_per_task']:,.0f} ms"),
        ("firings admitted (the same on every run)", f"{figures['firings']:,}"),
        (
            "messages planned / tasks opened",
            f"{figures['messages_planned']:,} / {figures['tasks_opened']:,}",
        ),
        (f"messages claimed: {outcomes}", f"{figures['claimed']:,}"),
        (
            "Prefect server start + warm-up flow (not counted)",
            f"{max(figures['warm_up_seconds']):.1f} s",
        ),
    ):
        table.add_row(label, value)
    console.print(table)


def api_benchmark() -> None:
    figures = measured("bench.api")
    for run in figures["databases"]:
        table = Table(
            title=f"HTTP API on {run['database']}: POST /events, {run['batches']} batches of "
            f"{run['batch_size']} from a second process ({run['customers']:,} customers)"
        )
        table.add_column("measure")
        table.add_column("value", justify="right")
        for label, value in (
            ("events accepted per second", f"{run['events_per_second']:,.0f}"),
            ("request latency p50 / p99", f"{run['p50_ms']:.0f} ms / {run['p99_ms']:.0f} ms"),
            (
                "major feedback accepted → its task exists, right after the load",
                f"{run['escalation_after_load_seconds']:.2f} s",
            ),
            (
                "the same at rest (max of 5; goal < 60 s)",
                f"{max(run['escalation_seconds']):.2f} s",
            ),
        ):
            table.add_row(label, value)
        console.print(table)


def report_benchmark() -> None:
    figures = measured("bench.report")
    rows = figures["rows"]
    table = Table(
        title=f"Relationship report: {figures['weeks']} weeks over {rows['customers']:,} "
        f"customers and {rows['events']:,} events (best of {len(figures['rounds'])} rounds)"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        (
            "work in the database (two evaluation runs)",
            f"{rows['rule_firings']:,} firings, {rows['outbox_messages']:,} messages, "
            f"{rows['staff_tasks']:,} tasks",
        ),
        ("read storage and measure", f"{figures['measure_seconds']:.1f} s"),
        ("write the HTML page with its charts", f"{figures['html_seconds']:.2f} s"),
        ("total (goal < 30 s)", f"{figures['seconds']:.1f} s"),
        ("rounds (s)", " ".join(f"{v:.1f}" for v in figures["rounds"])),
        ("peak memory", f"{figures['peak_mib']:.0f} MiB"),
        ("page size", f"{figures['page_kib']:.0f} KiB"),
    ):
        table.add_row(label, value)
    console.print(table)


def cluster_benchmark(customers: int) -> None:
    """A sharded evaluation on 1 worker against 2, and 2 dispatch runs against 1 (see
    `bench.cluster`): on PostgreSQL, through a Prefect server and process workers."""
    console.print(f"cluster: {customers:,} customers on PostgreSQL, 1 then 2 workers …")
    figures = measured("bench.cluster", "--customers", str(customers))
    table = Table(
        title=f"Scale-out on the work pool: {figures['customers']:,} customers, "
        f"{figures['events']:,} events, {figures['shards']} shards (PostgreSQL)"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    evaluation, dispatch = figures["evaluation_seconds"], figures["dispatch_seconds"]
    for label, value in (
        ("evaluate-rules, 1 worker", f"{evaluation['1 worker']:.1f} s"),
        ("evaluate-rules, 2 workers", f"{evaluation['2 workers']:.1f} s"),
        ("1 worker ÷ 2 workers", f"{figures['evaluation_ratio']:.2f}"),
        (f"dispatch-outbox, {figures['messages']:,} emails, 1 run", f"{dispatch['1 run']:.1f} s"),
        ("the same, 2 runs at once", f"{dispatch['2 runs']:.1f} s"),
        ("1 run ÷ 2 runs", f"{figures['dispatch_ratio']:.2f}"),
    ):
        table.add_row(label, value)
    console.print(table)


BACKTEST_DB = "sqlite:///var/bench/backtest.db"
BACKTEST_MEMORY_CUSTOMERS = 5_000


def backtest_benchmark() -> None:
    """`rapport backtest` over a year, on its own generated base (imported once)."""
    files = sample(25_000, 3.75)  # about 100,000 events
    marker = Path("var/bench/backtest.imported")  # which sample the database holds
    imported = marker.read_text() if marker.exists() else ""
    if imported != str(files.events) or not Path("var/bench/backtest.db").exists():
        engine = fresh_database(BACKTEST_DB)
        import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
        import_events(engine, files.events, imported_at=END)
        engine.dispose()
        marker.write_text(str(files.events))
    console.print("backtest: replaying a year …")
    figures = measured("bench.backtest", "run", BACKTEST_DB)
    memory = [
        measured("bench.backtest", "memory", BACKTEST_DB, str(days), str(BACKTEST_MEMORY_CUSTOMERS))
        for days in (30, 120, 365)
    ]
    console.print("backtest: sweeping five values …")
    swept = measured("bench.backtest", "sweep", BACKTEST_DB)
    warmup = figures["steps_replayed"] - figures["steps"]
    table = Table(
        title=f"Backtest: {figures['steps']} daily steps (+{warmup} "
        f"warm-up) over {figures['customers']:,} customers and {figures['events']:,} events, "
        f"{figures['workers']} worker processes"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("wall time (goal < 300 s)", f"{figures['seconds']:.1f} s"),
        ("customer-steps per second", f"{figures['customer_steps_per_second']:,.0f}"),
        (
            "firings / messages sent / tasks",
            f"{figures['firings']:,} / {figures['messages_sent']:,} / {figures['tasks']:,}",
        ),
        (
            "peak memory: main process / largest worker",
            f"{figures['peak_mib_main']:.0f} MiB / {figures['peak_mib_worker']:.0f} MiB",
        ),
        *(
            (
                f"peak memory, one process, {run['customers']:,} customers × "
                f"{run['steps_replayed']} steps",
                f"{run['peak_mib']:.0f} MiB, {run['before_mib']:.0f} before replaying "
                f"({run['seconds']:.1f} s)",
            )
            for run in memory
        ),
        *(
            (
                f"--sweep, {swept[f'{name}_values']} values, {what} (vs one plain backtest)",
                f"{swept[f'{name}_seconds']:.1f} s, "
                f"{swept[f'{name}_seconds'] / swept['single_seconds']:.2f}× "
                f"({swept['single_seconds']:.1f} s)",
            )
            for name, what in (("alone", "rule replayed alone"), ("all_rules", "every rule"))
        ),
    ):
        table.add_row(label, value)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument(
        "--skip-storage", action="store_true", help="reuse var/bench/bench.db from a past run"
    )
    parser.add_argument("--backtest-only", action="store_true", help="only the backtest figures")
    parser.add_argument(
        "--imports-only", action="store_true", help="only the import figures, with their baseline"
    )
    parser.add_argument(
        "--cluster-customers",
        type=int,
        default=100_000,
        help="customers of the scale-out figures (1,000,000 takes hours here)",
    )
    parser.add_argument("--cluster-only", action="store_true", help="only the scale-out figures")
    args = parser.parse_args()
    if args.backtest_only:
        backtest_benchmark()
        return
    if args.cluster_only:
        cluster_benchmark(args.cluster_customers)
        return
    files = sample(args.customers, args.events_per_customer)
    databases = {"sqlite": "sqlite:///var/bench/bench.db"}
    if postgres := os.environ.get("RAPPORT_BENCH_POSTGRES_URL"):
        databases["postgresql"] = postgres
    else:
        console.print("PostgreSQL skipped: RAPPORT_BENCH_POSTGRES_URL is not set")
    if args.imports_only:
        storage_benchmark(files, databases, facts=False)
        return
    if not args.skip_storage:
        storage_benchmark(files, databases)
    rules_benchmark(databases["sqlite"])
    dispatch_benchmark()
    api_benchmark()
    report_benchmark()
    prefect_benchmark()
    if postgres:
        cluster_benchmark(args.cluster_customers)
    backtest_benchmark()


if __name__ == "__main__":
    main()
