"""The relationship report's time over the benchmark base (100,000 customers, ~2M events).

Run as `python -m bench.report [--rounds R]`; prints one JSON object last.

Method. The storage benchmark's `var/bench/bench.db` is copied and cleared as for
Prefect's share (`bench.databases.prepare_base`). The default rules then run as of two
weeks before the clock and as of the clock (04:00 UTC the day after the data ends),
recording firings, messages and tasks; the planned messages are then marked sent at
their due time on their first preferred channel (email when the rule names none):
delivering them is not what is measured, and the report reads only what was sent.
Then `rapport report` is timed for the 12 weeks to the clock, in a fresh process per
round (so peak memory is the report's own): reading storage and measuring
(`build_report`), then writing the HTML page with its charts. Best of `--rounds` (2).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.databases import prepare_base
from engine.loader import load_rules
from rapport.report.build import build_report
from rapport.report.html import report_html
from rapport.services.rules import rules_in_force
from rapport.services.scheduled import evaluate_customers
from storage.db import make_engine

SOURCE = Path("var/bench/bench.db")
TARGET = Path("var/bench/report.db")
PAGE = Path("var/bench/report.html")
WEEKS = 12
TABLES = ("customers", "events", "rule_firings", "outbox_messages", "staff_tasks")
SENT = (
    "UPDATE outbox_messages SET status = 'sent', sent_at = due_at, "
    "channel = CASE WHEN channels = '' THEN 'email' "
    "ELSE substr(channels, 1, instr(channels || ',', ',') - 1) END"
)


def prepare() -> tuple[datetime, int]:
    """The base with two evaluation runs' work in it; returns the clock and the firings."""
    as_of = prepare_base(SOURCE, TARGET)
    engine = make_engine(f"sqlite:///{TARGET}")
    try:
        ruleset, _ = rules_in_force(engine, Path("rules"), Path("templates/messages"), as_of)
        firings = sum(
            1
            for moment in (as_of - timedelta(weeks=2), as_of)
            for _ in evaluate_customers(engine, ruleset, moment, record=True)
        )
        with engine.begin() as connection:
            connection.execute(text(SENT))
    finally:
        engine.dispose()
    return as_of, firings


def measure(as_of: datetime) -> dict[str, float]:
    """One round, in this process: the report for the 12 weeks to `as_of`."""
    ruleset = load_rules(Path("rules")).ruleset
    assert ruleset is not None
    engine = make_engine(f"sqlite:///{TARGET}")
    started = time.perf_counter()
    report = build_report(
        engine, ruleset, as_of - timedelta(weeks=WEEKS), as_of, timezone="UTC", currency="CNY"
    )
    measured = time.perf_counter()
    PAGE.write_text(report_html(report), encoding="utf-8")
    written = time.perf_counter()
    engine.dispose()
    return {
        "customers": report.overall.customers,
        "measure_seconds": measured - started,
        "html_seconds": written - measured,
        "seconds": written - started,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "page_kib": PAGE.stat().st_size / 1024,
    }


def counts() -> dict[str, int]:
    engine = make_engine(f"sqlite:///{TARGET}")
    try:
        with engine.connect() as connection:
            return {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in TABLES
            }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one round (the child process)
    arguments = parser.parse_args()
    if arguments.measure:
        print(json.dumps(measure(datetime.fromisoformat(arguments.measure))))
        return
    started = time.perf_counter()
    as_of, firings = prepare()
    preparation = time.perf_counter() - started
    rounds: list[dict[str, Any]] = []
    for _ in range(arguments.rounds):
        command = [sys.executable, "-m", "bench.report", "--measure", as_of.isoformat()]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rounds.append(json.loads(output.strip().splitlines()[-1]))
    best = min(rounds, key=lambda r: r["seconds"])
    print(
        json.dumps(
            {
                **best,
                "weeks": WEEKS,
                "rounds": [r["seconds"] for r in rounds],
                "rows": counts(),
                "preparation_seconds": preparation,
                "firings": firings,
            }
        )
    )


if __name__ == "__main__":
    main()
