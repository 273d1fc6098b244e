"""The backtest at the size its issue names: a year of daily steps over 25,000 customers
and 100,000 events, the default rules, as `rapport backtest` runs it (worker processes,
one per CPU, and the default 30-day warm-up); and its memory as the steps grow.

Run as `python -m bench.backtest run DATABASE_URL`,
`python -m bench.backtest memory DATABASE_URL DAYS CUSTOMERS` or
`python -m bench.backtest sweep DATABASE_URL`; each prints one JSON object.
`memory` replays DAYS daily steps for the first CUSTOMERS customers in this one process:
its peak memory, next to the same run over fewer days, shows whether steps cost memory.
`sweep` times `--sweep` at five values against one plain backtest in the same process:
a rule that only tags (replayed alone) and one that sends messages (with every rule).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import date, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from bench.rules import rss_mib
from engine.loader import load_rules
from rapport.backtest.runner import default_workers, run_backtest
from rapport.backtest.sweep import Sweep
from rapport.backtest.timeline import Window
from storage.customers import customer_ids
from storage.db import make_engine

RULES = Path(__file__).resolve().parent.parent / "rules"
LAST_DAY = date(2026, 10, 31)  # the sample ends on 1 November 2026 (bench.__main__.END)
ZONE = "Asia/Shanghai"


def peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _window(days: int) -> Window:
    return Window(LAST_DAY - timedelta(days=days - 1), LAST_DAY, clock(8), ZONE)


def run(url: str) -> dict[str, Any]:
    """The whole year, as `rapport backtest --from 2025-11-01 --to 2026-10-31` runs it."""
    ruleset = load_rules(RULES).ruleset
    assert ruleset is not None
    window = _window(365)
    workers = default_workers()
    started = time.perf_counter()
    replayed = run_backtest(make_engine(url), [(RULES, ruleset)], window, workers=workers)
    seconds = time.perf_counter() - started
    tally = replayed.tallies[0]
    return {
        "seconds": seconds,
        "workers": workers,
        "customers": tally.customers,
        "events": tally.events,
        "steps": window.counted_steps,
        "steps_replayed": len(window.steps),
        "customer_steps_per_second": tally.customers * len(window.steps) / seconds,
        "firings": sum(sum(weeks) for weeks in tally.firings.values()),
        "messages_sent": sum(n for (_, outcome), n in tally.messages.items() if outcome == "sent"),
        "tasks": sum(tally.rule_tasks.values()),
        "peak_mib_main": peak_mib(resource.RUSAGE_SELF),
        "peak_mib_worker": peak_mib(resource.RUSAGE_CHILDREN),
    }


def memory(url: str, days: int, customers: int) -> dict[str, Any]:
    """`days` daily steps for the first `customers` customers, in this process."""
    ruleset = load_rules(RULES).ruleset
    assert ruleset is not None
    engine = make_engine(url)
    with engine.connect() as connection:
        chosen = customer_ids(connection)[:customers]
    window = _window(days)
    before = rss_mib()  # libraries and the compiled rules, before any replay
    started = time.perf_counter()
    run_backtest(engine, [(RULES, ruleset)], window, workers=1, customers=chosen)
    return {
        "before_mib": before,
        "days": days,
        "steps_replayed": len(window.steps),
        "customers": len(chosen),
        "seconds": time.perf_counter() - started,
        "peak_mib": peak_mib(resource.RUSAGE_SELF),
    }


SWEEPS = {  # five values each
    "alone": "churn_purchase_overdue.purchase_overdue_ratio=1.5..3.5:0.5",
    "all_rules": "churn_login_drop.logins_30d=0.3..0.7:0.1",
}


def sweep(url: str) -> dict[str, Any]:
    """One plain backtest of the year, then each of `SWEEPS`, timed in this one run."""
    ruleset = load_rules(RULES).ruleset
    assert ruleset is not None
    engine, window, workers = make_engine(url), _window(365), default_workers()

    def timed(swept: Sweep | None) -> float:
        started = time.perf_counter()
        run_backtest(engine, [(RULES, ruleset)], window, workers=workers, sweep=swept)
        return time.perf_counter() - started

    found: dict[str, Any] = {"single_seconds": timed(None), "workers": workers}
    for name, spec in SWEEPS.items():
        parsed = Sweep.parse(spec)
        found[f"{name}_values"] = len(parsed.values)
        found[f"{name}_seconds"] = timed(parsed)
    return found


if __name__ == "__main__":
    mode, url, *rest = sys.argv[1:]
    if mode == "run":
        print(json.dumps(run(url)))
    elif mode == "sweep":
        print(json.dumps(sweep(url)))
    else:
        print(json.dumps(memory(url, int(rest[0]), int(rest[1]))))
