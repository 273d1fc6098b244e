"""Databases for benchmarks: a fresh one (SQLite file and its WAL files removed, or the
PostgreSQL `public` schema dropped, then migrated), or a cleared copy of the storage
benchmark's base."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from storage.db import make_engine
from storage.migrate import upgrade_database


def fresh_database(url: str) -> Engine:
    """An empty database at the current schema."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    else:
        path = Path(engine.url.database or "")
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
    upgrade_database(engine)
    return engine


# What an earlier run planned, and the events Rapport itself writes: `rapport:` contacts,
# `step:` steps, `overdue:` task events.
CLEARED = (
    "DELETE FROM outbox_journal",
    "DELETE FROM outbox_messages",
    "DELETE FROM staff_tasks",
    "DELETE FROM rule_firings",
    "DELETE FROM events WHERE id LIKE 'rapport:%' OR id LIKE 'step:%' OR id LIKE 'overdue:%'",
)


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of `source` (with whatever its WAL holds) through the backup API."""
    for suffix in ("", "-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as reader,
        closing(sqlite3.connect(target)) as writer,
    ):
        reader.backup(writer)


def prepare_base(source: Path, target: Path) -> datetime:
    """Copies, migrates and clears the benchmark database; returns the fixed `as_of`:
    04:00 UTC on the day after the last event."""
    if not source.exists():
        raise SystemExit(f"{source} is missing: run `make bench` once without --skip-storage")
    sqlite_copy(source, target)
    engine = make_engine(f"sqlite:///{target}")
    try:
        upgrade_database(engine)
        with engine.begin() as connection:
            for statement in CLEARED:
                connection.execute(text(statement))
            last = connection.execute(text("SELECT max(occurred_at) FROM events")).scalar_one()
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    last_day = datetime.fromisoformat(str(last)).date()
    return datetime.combine(last_day + timedelta(days=1), time(4), UTC)
