"""A fresh database for a benchmark: SQLite file (and its WAL files) removed, or the
PostgreSQL `public` schema dropped, then migrated to the current schema."""

from __future__ import annotations

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
