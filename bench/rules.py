"""Rule evaluation pace against raw durable_rules, and memory over repeated runs.

Run as `python -m bench.rules DATABASE_URL RULES_DIR`; prints one JSON object.
"""

from __future__ import annotations

import copy
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from durable import engine as durable

from bench.phases import AS_OF
from engine.evaluate import Evaluator
from engine.loader import load_rules
from storage.db import make_engine
from storage.facts import iter_customer_facts

ROUNDS = 10


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def raw_engine_seconds(count: int) -> float:
    """durable_rules alone: `count` plain facts, one throwaway session each, one trivial rule."""
    host = durable.Host()
    definition = {"trivial": {"all": [{"m": {"kind": "plain"}}], "run": lambda _c: None}}
    host.register_rulesets({"raw_bench": copy.deepcopy(definition)})
    started = time.perf_counter()
    for number in range(count):
        sid = str(number)
        host.assert_fact("raw_bench", {"sid": sid, "id": "f", "kind": "plain", "n": number})
        host.delete_state("raw_bench", sid)
    return time.perf_counter() - started


def run(url: str, rules: Path) -> dict[str, Any]:
    ruleset = load_rules(rules).ruleset
    if ruleset is None:
        raise SystemExit(f"{rules} has invalid rules")
    with make_engine(url).connect() as connection:
        started = time.perf_counter()
        snapshots = list(iter_customer_facts(connection, AS_OF, ruleset.parameters))
        facts_seconds = time.perf_counter() - started
    evaluator = Evaluator(ruleset)
    rounds, rss = [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        firings = sum(len(evaluator.evaluate(facts, AS_OF)) for facts in snapshots)
        rounds.append(time.perf_counter() - started)
        rss.append(rss_mib())
    raw = raw_engine_seconds(len(snapshots))
    best = min(rounds)
    return {
        "customers": len(snapshots),
        "rules": len(ruleset.enabled),
        "firings": firings,
        "facts_seconds": facts_seconds,
        "evaluate_seconds": best,
        "evaluate_rate": len(snapshots) / best,
        "raw_seconds": raw,
        "raw_rate": len(snapshots) / raw,
        "ratio": raw / best,
        "rss_mib": rss,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], Path(sys.argv[2]))))
