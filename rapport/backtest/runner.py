"""Running a backtest: customers in chunks, each chunk read and replayed for every
revision under test, in this process or in worker processes.

A chunk is the unit of memory: its customers' histories are read, replayed through
every step and reduced to counts (`Tally`) before the next chunk is read, so memory
stays flat however many steps or customers there are. Workers are started with
`spawn` (durable_rules' host is not fork-safe) and load the rules themselves; the
revision hash proves they replay the same rules as the caller. A sweep (`sweep.py`)
replays its variants of the first revision instead, all from one read of each chunk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import Engine

from engine.loader import load_rules
from engine.model import RuleSet
from rapport.backtest.history import feedback_handling, load_customers, load_seeds
from rapport.backtest.replay import Replay
from rapport.backtest.revision import Rules
from rapport.backtest.sweep import Sweep
from rapport.backtest.tally import Journal, Tally
from rapport.backtest.timeline import Window, from_us, to_us
from storage.customers import customer_ids
from storage.db import make_engine
from storage.history import history_end

CHUNK = 250
Progress = Callable[[int, int], None]  # (customers done, customers in all)


@dataclass(frozen=True)
class Plan:
    """What a worker needs to replay chunks; plain values, so it crosses processes."""

    database_url: str
    rules_dirs: tuple[str, ...]
    revisions: tuple[str, ...]
    window: Window
    history_end: int
    prefilter: bool
    journal: bool
    sweep: Sweep | None = None

    def replayed(self, rulesets: Sequence[RuleSet]) -> list[Rules]:
        """What is replayed: each revision, or the sweep's variants of the first."""
        if self.sweep is None:
            return [Rules(ruleset, self.prefilter) for ruleset in rulesets]
        rule_id, alone = self.sweep.rule_id, self.sweep.target(rulesets[0]).isolated
        return [  # a rule replayed alone: its eligible population is the same every time
            Rules(
                variant.ruleset, self.prefilter, {rule_id: variant.threshold}, not alone or n == 0
            )
            for n, variant in enumerate(self.sweep.variants(rulesets[0]))
        ]


class Chunks:
    """Replays chunks of customers for every revision of a plan."""

    def __init__(self, plan: Plan, engine: Engine, rulesets: Sequence[RuleSet]) -> None:
        self.plan = plan
        self.engine = engine
        self.rules = plan.replayed(rulesets)

    def replay(self, ids: list[str]) -> list[Tally]:
        """One tally per revision for these customers."""
        window, begin = self.plan.window, self.plan.window.begin_us
        cap = max(rules.cap_window_us for rules in self.rules)
        with self.engine.connect() as connection:
            records = load_customers(connection, ids, begin)
            handling = feedback_handling(connection, ids)
            seeds = load_seeds(connection, ids, from_us(begin), cap)
        tallies = []
        for rules in self.rules:
            tally = Tally(len(window.weeks_us), journal=Journal() if self.plan.journal else None)
            for record in records:
                customer = record.profile.id
                sent = seeds.capped_sent.get(customer, [])
                counted = rules.ruleset.policy.cap_counts
                Replay(
                    rules,
                    window,
                    record,
                    handling,
                    self.plan.history_end,
                    tally,
                    seeds.last_fired.get(customer),
                    [at for at, why in sent if at > begin - rules.cap_window_us and why in counted],
                ).run()
            tallies.append(tally)
        return tallies


_WORKER: Chunks | None = None


def _start_worker(plan: Plan) -> None:
    """Worker set-up: its own database engine and its own compiled rules."""
    global _WORKER
    rulesets = []
    for directory, revision in zip(plan.rules_dirs, plan.revisions, strict=True):
        ruleset = load_rules(Path(directory)).ruleset
        if ruleset is None or ruleset.revision != revision:
            raise RuntimeError(f"the rules in {directory} changed while the backtest started")
        rulesets.append(ruleset)
    _WORKER = Chunks(plan, make_engine(plan.database_url), rulesets)


def _replay_in_worker(ids: list[str]) -> list[Tally]:
    assert _WORKER is not None
    return _WORKER.replay(ids)


@dataclass(frozen=True)
class Replayed:
    """One merged tally per revision, in the order given, and the end of the history."""

    tallies: list[Tally]
    history_end: datetime | None


def run_backtest(
    engine: Engine,
    rules: Sequence[tuple[Path, RuleSet]],
    window: Window,
    *,
    workers: int = 1,
    chunk: int = CHUNK,
    progress: Progress | None = None,
    prefilter: bool = True,
    journal: bool = False,
    customers: Sequence[str] | None = None,
    sweep: Sweep | None = None,
) -> Replayed:
    """Replays every customer (or these `customers`) through `window` under each revision
    (or each of the `sweep`'s variants). Reads the database, never writes to it."""
    with engine.connect() as connection:
        ids = sorted(customers) if customers is not None else customer_ids(connection)
        end = history_end(connection)
    plan = Plan(
        database_url=engine.url.render_as_string(hide_password=False),
        rules_dirs=tuple(str(directory) for directory, _ in rules),
        revisions=tuple(ruleset.revision for _, ruleset in rules),
        window=window,
        history_end=to_us(end) if end is not None else window.begin_us,
        prefilter=prefilter,
        journal=journal,
        sweep=sweep,
    )
    replayed = len(sweep.values) if sweep is not None else len(rules)
    batches = [ids[start : start + chunk] for start in range(0, len(ids), chunk)]
    totals = [
        Tally(len(window.weeks_us), journal=Journal() if journal else None) for _ in range(replayed)
    ]
    done = 0

    def add(tallies: list[Tally], size: int) -> None:
        nonlocal done
        for total, tally in zip(totals, tallies, strict=True):
            total.merge(tally)
        done += size
        if progress is not None:
            progress(done, len(ids))

    if progress is not None:
        progress(0, len(ids))
    workers = max(1, min(workers, len(batches)))
    if workers == 1:
        local = Chunks(plan, engine, [ruleset for _, ruleset in rules])
        for batch in batches:
            add(local.replay(batch), len(batch))
        return Replayed(totals, end)
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, context, _start_worker, (plan,)) as pool:
        futures = {pool.submit(_replay_in_worker, batch): len(batch) for batch in batches}
        for future in as_completed(futures):
            add(future.result(), futures[future])
    return Replayed(totals, end)


def default_workers() -> int:
    """One worker per CPU this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
