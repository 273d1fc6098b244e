"""One measured phase per process, so each peak-memory figure is that phase's own.

Run as `python -m bench.phases PHASE DATABASE_URL [FILE]`; prints one JSON object.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from storage.db import make_engine
from storage.facts import iter_customer_facts
from storage.imports import import_customers, import_events

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def run(phase: str, url: str, path: Path | None) -> dict[str, float]:
    engine = make_engine(url)
    started = time.perf_counter()
    if phase == "import-customers" and path:
        count = import_customers(engine, path, default_timezone="Asia/Shanghai").inserted
    elif phase == "import-events" and path:
        count = import_events(engine, path, imported_at=AS_OF).inserted
    elif phase == "facts":
        with engine.connect() as connection:
            count = sum(1 for _ in iter_customer_facts(connection, AS_OF))
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"count": count, "seconds": seconds, "rate": count / seconds, "peak_mib": peak_mib}


if __name__ == "__main__":
    phase, url, *rest = sys.argv[1:]
    print(json.dumps(run(phase, url, Path(rest[0]) if rest else None)))
