"""The backtest's Python aggregates are the SQL's, and its shortcuts change nothing.

- `CustomerHistory` gives the same `CustomerAggregates` as the set-wise SQL of
  `storage/facts.py`, on generated data at several moments, on SQLite and PostgreSQL;
  and they stay the same up to the moment it says they may change.
- `Drift.move` gives the facts `derive_facts` gives, every one of them, days later.
- A replay with the prefilter (remembered outcomes, static conditions, drift) fires
  exactly what a replay asking the engine about every customer at every step fires.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

import storage.facts
from engine.facts import CustomerAggregates, FactParameters, ProductWindow, derive_facts
from engine.loader import load_rules
from rapport.backtest.aggregates import CustomerHistory
from rapport.backtest.drift import DAY_US, MOVING, Drift, Snapshot
from rapport.backtest.history import feedback_handling, load_customers
from rapport.backtest.runner import run_backtest
from rapport.backtest.timeline import Window, from_us, to_us
from rapport.demo.sample import write_sample
from storage.customers import customer_ids
from storage.facts import iter_customer_facts
from storage.imports import import_customers, import_events
from tests.conftest import fresh_engine
from tests.paths import ROOT

END = datetime(2026, 6, 30, tzinfo=UTC)
ROOT = ROOT
MOMENTS = (
    "2026-06-30T00:00:00+00:00",
    "2026-03-15T13:45:10.123456+08:00",
    "2025-11-01T08:00:00+08:00",
    "2025-07-01T00:00:00-04:00",
)
# Per-product counts too, with windows shorter and longer than the recent window.
WINDOWS = (ProductWindow("coffee-beans", 90), ProductWindow("grinder", 400))
PARAMS = FactParameters(product_windows=WINDOWS)


def sampled(engine: Engine, tmp_path: Path, customers: int = 300) -> None:
    files = write_sample(tmp_path / "sample", customers=customers, end=END)
    import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
    import_events(engine, files.events, imported_at=END)


def histories(engine: Engine) -> dict[str, CustomerHistory]:
    with engine.connect() as connection:
        ids = customer_ids(connection)
        records = load_customers(connection, ids, to_us(END))
        resolved, _ = feedback_handling(connection, ids)
    return {r.profile.id: CustomerHistory(r.profile, r.events, resolved, PARAMS) for r in records}


def sql_aggregates(
    engine: Engine, as_of: datetime, monkeypatch: pytest.MonkeyPatch
) -> dict[str, CustomerAggregates]:
    """The SQL's aggregates themselves, caught on their way into `derive_facts`."""
    with monkeypatch.context() as patch:
        patch.setattr(storage.facts, "derive_facts", lambda agg, _at, _params: {"agg": agg})
        with engine.connect() as connection:
            return {
                row["agg"].customer_id: row["agg"]
                for row in iter_customer_facts(connection, as_of, PARAMS)
            }


def same(python: CustomerAggregates, sql: CustomerAggregates) -> bool:
    """Equal field by field; sums of amounts up to the order floats were added in."""
    for field in fields(CustomerAggregates):
        mine, theirs = getattr(python, field.name), getattr(sql, field.name)
        if isinstance(theirs, float):
            if mine != pytest.approx(theirs, rel=1e-12, abs=1e-9):
                return False
        elif mine != theirs:
            return False
    return True


def test_python_aggregates_equal_the_sql_at_any_moment(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampled(engine, tmp_path)
    found = histories(engine)
    counts: Counter[int] = Counter()
    for text in MOMENTS:
        moment = datetime.fromisoformat(text)
        expected = sql_aggregates(engine, moment, monkeypatch)
        assert set(found) == set(expected)
        with engine.connect() as connection:
            facts = {f["customer_id"]: f for f in iter_customer_facts(connection, moment, PARAMS)}
        for customer, history in found.items():
            mine = history.aggregates(to_us(moment))
            assert same(mine, expected[customer]), (customer, text)
            assert derive_facts(mine, moment, PARAMS) == facts[customer], (customer, text)
        counts.update(f["product_purchases[coffee-beans,90d]"] for f in facts.values())
    assert counts[1] and sum(n for c, n in counts.items() if c >= 2), counts  # not all 0


def test_aggregates_hold_until_the_moment_they_may_change(tmp_path: Path) -> None:
    engine = fresh_engine("sqlite", tmp_path)
    sampled(engine, tmp_path, customers=200)
    checked = 0
    for history in histories(engine).values():
        for text in MOMENTS:
            start = to_us(datetime.fromisoformat(text))
            aggregates, until = history._compute(start)
            for probe in (until - 1, (start + until) // 2):
                if start <= probe < min(until, to_us(END)):
                    assert history._compute(probe)[0] == aggregates
                    checked += 1
    assert checked > 500


def test_drift_gives_the_facts_derive_facts_gives_days_later(tmp_path: Path) -> None:
    engine = fresh_engine("sqlite", tmp_path)
    sampled(engine, tmp_path, customers=300)
    ruleset = load_rules(ROOT / "rules").ruleset  # its holidays make the calendar facts move
    assert ruleset is not None
    params, drift = ruleset.parameters, Drift(ruleset.parameters)
    compared, moved = 0, set()
    for history in histories(engine).values():
        history.resolved_at = {}  # keep stretches long; resolution is not what moves here
        start = to_us(datetime(2025, 9, 1, 8, tzinfo=UTC))
        while start < to_us(END):
            aggregates, until = history._compute(start)
            base = derive_facts(aggregates, from_us(start), params)
            snapshot, drifted = Snapshot.of(start, base, aggregates), dict(base)
            day = start + DAY_US
            while day < min(until, start + 120 * DAY_US):
                drift.move(snapshot, day, from_us(day), drifted)
                expected = derive_facts(aggregates, from_us(day), params)
                assert drifted == expected, (history.profile.id, from_us(day))
                moved |= {name for name in MOVING if expected[name] != base[name]}
                compared += 1
                day += DAY_US
            start = until if until < 2**60 else to_us(END)
    assert compared > 10_000
    assert moved == MOVING  # every moving fact moved somewhere in the sample


def test_the_prefilter_changes_nothing(tmp_path: Path) -> None:
    engine = fresh_engine("sqlite", tmp_path)
    sampled(engine, tmp_path, customers=150)
    ruleset = load_rules(ROOT / "rules").ruleset
    assert ruleset is not None
    window = Window(
        date(2026, 1, 20), date(2026, 3, 20), time(8), "Asia/Shanghai", warmup=timedelta(days=10)
    )
    runs: list[Any] = []
    for prefilter in (False, True):
        replayed = run_backtest(
            engine, [(ROOT / "rules", ruleset)], window, prefilter=prefilter, journal=True
        )
        journal = replayed.tallies[0].journal
        assert journal is not None
        runs.append((journal.sorted_firings(), journal.messages, journal.tasks))
    assert runs[0] == runs[1]
    assert len(runs[0][0]) > 500
