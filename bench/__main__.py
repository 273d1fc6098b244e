"""`make bench`: storage and rule-evaluation figures, printed (never asserted).

Generates (once, cached under var/bench/) a base of customers and events, loads it
into a fresh SQLite file and, when `RAPPORT_BENCH_POSTGRES_URL` is set, a fresh
PostgreSQL database: import throughput, facts-as-of time and peak memory for each.
Then evaluates the default rules over every customer's facts ten times, against raw
durable_rules taking the same number of facts through a trivial rule; and dispatches
5,000 messages to a loopback SMTP sink in another process, against plain aiosmtplib.
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
from sqlalchemy import text

from rapport.sample import SampleFiles, write_sample
from storage.db import make_engine
from storage.migrate import upgrade_database

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


def fresh_database(url: str) -> None:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    else:
        Path(engine.url.database or "").unlink(missing_ok=True)
    upgrade_database(engine)
    engine.dispose()


def measured(module: str, *arguments: str) -> dict[str, Any]:
    """Runs `python -m module arguments` and reads the JSON figures it prints last."""
    command = [sys.executable, "-m", module, *arguments]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def storage_benchmark(files: SampleFiles, databases: dict[str, str]) -> None:
    table = Table(
        title=f"Rapport storage benchmark: {files.customer_count:,} customers, "
        f"{files.event_count:,} events"
    )
    for column in ("database", "phase", "rows", "seconds", "rows/s", "peak MiB"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    for name, url in databases.items():
        fresh_database(url)
        for label, step, path in (
            ("import customers", "import-customers", files.customers),
            ("import events", "import-events", files.events),
            ("facts as of T, all customers", "facts", None),
        ):
            figures = measured("bench.phases", step, url, *([str(path)] if path else []))
            table.add_row(
                name,
                label,
                f"{figures['count']:,.0f}",
                f"{figures['seconds']:.1f}",
                f"{figures['rate']:,.0f}",
                f"{figures['peak_mib']:.0f}",
            )
            console.print(f"{name}: {label} done in {figures['seconds']:.1f} s")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument(
        "--skip-storage", action="store_true", help="reuse var/bench/bench.db from a past run"
    )
    args = parser.parse_args()
    files = sample(args.customers, args.events_per_customer)
    databases = {"sqlite": "sqlite:///var/bench/bench.db"}
    if postgres := os.environ.get("RAPPORT_BENCH_POSTGRES_URL"):
        databases["postgresql"] = postgres
    else:
        console.print("PostgreSQL skipped: RAPPORT_BENCH_POSTGRES_URL is not set")
    if not args.skip_storage:
        storage_benchmark(files, databases)
    rules_benchmark(databases["sqlite"])
    dispatch_benchmark()


if __name__ == "__main__":
    main()
