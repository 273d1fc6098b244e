"""Sharded evaluation in storage: which customers a shard holds, and each shard's figures.

A shard is chosen by a stable hash of the customer id (CRC-32) modulo the number of
shards, so a shard's flow run needs only its index and the count as parameters, never
a customer id, and a customer added while the shards run falls in exactly one of them
whichever moment each shard reads the customers. Ranges of ids would not: boundaries
computed at two moments can leave a new customer in none or in two.

Figures live in the database every worker shares (`evaluation_shard_figures`), not in
Prefect's result storage, which is local to the machine that ran the shard.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, select

from storage.customers import customer_ids
from storage.dialect import dialect_insert
from storage.tables import SHARD_FIGURES

CUSTOMERS, MESSAGES, TASKS = "customers", "messages", "tasks"
FIRINGS_PREFIX = "firings:"  # one figure per rule: `firings:<rule id>`


@dataclass
class ShardFigures:
    """What one shard recorded; `finished` once a run of it walked all its customers."""

    finished: bool = False
    customers: int = 0
    messages: int = 0
    tasks: int = 0
    firings: dict[str, int] = field(default_factory=dict)


def shard_of(customer_id: str, shards: int) -> int:
    """The shard (0 to `shards` - 1) a customer belongs to, the same on every machine."""
    return zlib.crc32(customer_id.encode("utf-8")) % shards


def shard_id_batches(connection: Connection, shard: int, shards: int, size: int) -> list[list[str]]:
    """The ids of the customers in `shard` of `shards`, in id order, in batches of `size`."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0 to {shards - 1}")
    ids = [i for i in customer_ids(connection) if shard_of(i, shards) == shard]
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def add_shard_figures(
    connection: Connection,
    run_id: str,
    shard: int,
    firings: Mapping[str, int],
    messages: int,
    tasks: int,
    at: datetime,
) -> None:
    """Adds to the shard's counts, in the caller's transaction: call it in the same
    transaction as the writes it counts, so a rolled-back batch counts nothing."""
    counts = {MESSAGES: messages, TASKS: tasks} | {
        FIRINGS_PREFIX + rule: count for rule, count in firings.items()
    }
    _upsert(connection, run_id, shard, counts, at, add=True)


def finish_shard(
    connection: Connection, run_id: str, shard: int, customers: int, at: datetime
) -> None:
    """Marks the shard done, with the customers its last run walked (set, not added:
    a run again walks them all again)."""
    _upsert(connection, run_id, shard, {CUSTOMERS: customers}, at, add=False)


def _upsert(
    connection: Connection,
    run_id: str,
    shard: int,
    counts: Mapping[str, int],
    at: datetime,
    *,
    add: bool,
) -> None:
    rows = [
        {"run_id": run_id, "shard": shard, "figure": name, "count": count, "recorded_at": at}
        for name, count in counts.items()
        if count or not add
    ]
    if not rows:
        return
    statement = dialect_insert(connection, SHARD_FIGURES)
    new = statement.excluded["count"]
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "shard", "figure"],
        set_={
            "count": SHARD_FIGURES.c["count"] + new if add else new,
            "recorded_at": statement.excluded.recorded_at,
        },
    )
    connection.execute(statement, rows)


def shard_figures(connection: Connection, run_id: str) -> dict[int, ShardFigures]:
    """The figures each shard of the run recorded, by shard index."""
    table = SHARD_FIGURES.c
    query = select(table.shard, table.figure, table["count"]).where(
        SHARD_FIGURES.c.run_id == run_id
    )
    found: dict[int, ShardFigures] = {}
    for shard, figure, count in connection.execute(query):
        figures = found.setdefault(shard, ShardFigures())
        if figure == CUSTOMERS:
            figures.finished, figures.customers = True, count
        elif figure == MESSAGES:
            figures.messages = count
        elif figure == TASKS:
            figures.tasks = count
        else:
            figures.firings[figure.removeprefix(FIRINGS_PREFIX)] = count
    return found
