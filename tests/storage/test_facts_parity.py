"""The same data gives the same facts on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.facts import FactParameters
from rapport.demo.sample import write_sample
from storage.facts import iter_customer_facts
from storage.imports import import_customers, import_events
from tests.conftest import fresh_engine

END = datetime(2026, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("as_of", ["2026-06-30T00:00:00+00:00", "2026-01-15T13:45:10+08:00"])
def test_facts_are_identical_on_sqlite_and_postgresql(tmp_path: Path, as_of: str) -> None:
    files = write_sample(tmp_path / "sample", customers=400, end=END)
    results = []
    for backend in ("sqlite", "postgresql"):
        engine = fresh_engine(backend, tmp_path)
        import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
        import_events(engine, files.events, imported_at=END)
        with engine.connect() as connection:
            results.append(
                list(
                    iter_customer_facts(connection, datetime.fromisoformat(as_of), FactParameters())
                )
            )
        engine.dispose()
    sqlite_facts, postgres_facts = results
    assert len(sqlite_facts) == files.customer_count
    assert sqlite_facts == postgres_facts
    stages = {facts["lifecycle_stage"] for facts in sqlite_facts}
    assert {"new", "established", "at_risk", "dormant"} <= stages
