"""One measured phase per process, so each peak-memory figure is that phase's own.

Run as `python -m bench.phases PHASE DATABASE_URL [FILE]`; prints one JSON object.

`load-events-raw` is the imports' baseline: the same events file parsed and loaded in
the same batches the fastest plain way each database takes (COPY on PostgreSQL,
executemany on SQLite), with no check at all; the events are deleted again afterwards.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic_core import from_json
from sqlalchemy import Engine, text

from storage.db import make_engine
from storage.event_staging import COLUMNS, sqlite_time, staged_attributes
from storage.facts import iter_customer_facts
from storage.imports import EVENT_BATCH_SIZE, import_customers, import_events

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def run(phase: str, url: str, path: Path | None) -> dict[str, float]:
    engine = make_engine(url)
    started = time.perf_counter()
    if phase == "import-customers" and path:
        count = import_customers(engine, path, default_timezone="Asia/Shanghai").inserted
    elif phase == "import-events" and path:
        count = import_events(engine, path, imported_at=AS_OF).inserted
    elif phase == "load-events-raw" and path:
        count = load_raw(engine, path)
    elif phase == "facts":
        with engine.connect() as connection:
            count = sum(1 for _ in iter_customer_facts(connection, AS_OF))
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    seconds = time.perf_counter() - started
    if phase == "load-events-raw":
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM events"))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"count": count, "seconds": seconds, "rate": count / seconds, "peak_mib": peak_mib}


def load_raw(engine: Engine, path: Path) -> int:
    """Every line as a row of `COLUMNS`, unchecked, in batches of EVENT_BATCH_SIZE."""
    postgres = engine.dialect.name == "postgresql"
    fields, listed = COLUMNS[:-1], ", ".join((*COLUMNS, "imported_at"))
    count, batch = 0, []
    with path.open("rb") as handle:
        for line in handle:
            values = from_json(line)
            moment = datetime.fromisoformat(values["occurred_at"])
            given = [values.get(name) for name in fields]
            given[COLUMNS.index("occurred_at")] = moment if postgres else sqlite_time(moment)
            batch.append((*given, staged_attributes({}), AS_OF if postgres else sqlite_time(AS_OF)))
            if len(batch) >= EVENT_BATCH_SIZE:
                count += _write_raw(engine, batch, listed)
                batch = []
    return count + _write_raw(engine, batch, listed)


def _write_raw(engine: Engine, rows: list[tuple[object, ...]], listed: str) -> int:
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        if engine.dialect.name == "postgresql":
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY events ({listed}) FROM STDIN") as copy,
            ):  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * (len(COLUMNS) + 1))
            driver.executemany(f"INSERT INTO events ({listed}) VALUES ({marks})", rows)  # type: ignore[union-attr]
    return len(rows)


if __name__ == "__main__":
    phase, url, *rest = sys.argv[1:]
    print(json.dumps(run(phase, url, Path(rest[0]) if rest else None)))
