"""`make bench`: import throughput, facts-as-of time and peak memory on each database.

Generates (once, cached under var/bench/) a base of customers and events, loads it
into a fresh SQLite file and, when `RAPPORT_BENCH_POSTGRES_URL` is set, a fresh
PostgreSQL database, and prints one row of figures per database and phase.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

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


def phase(name: str, url: str, path: Path | None = None) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.phases", name, url, *([str(path)] if path else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    args = parser.parse_args()
    files = sample(args.customers, args.events_per_customer)
    databases = {"sqlite": "sqlite:///var/bench/bench.db"}
    if postgres := os.environ.get("RAPPORT_BENCH_POSTGRES_URL"):
        databases["postgresql"] = postgres
    else:
        console.print("PostgreSQL skipped: RAPPORT_BENCH_POSTGRES_URL is not set")
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
            figures = phase(step, url, path)
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


if __name__ == "__main__":
    main()
