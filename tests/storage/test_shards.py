"""Which customers a shard holds, and the figures shards keep, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert

from storage.shards import (
    add_shard_figures,
    finish_shard,
    shard_figures,
    shard_id_batches,
    shard_of,
)
from storage.tables import CUSTOMERS

AT = datetime(2026, 6, 30, 4, 0, tzinfo=UTC)


def customers(engine: Engine, ids: list[str]) -> None:
    rows = [{"id": i, "timezone": "Asia/Shanghai", "attributes": {}} for i in ids]
    with engine.begin() as connection:
        connection.execute(insert(CUSTOMERS), rows)


def test_every_customer_is_in_exactly_one_shard_even_one_added_between_reads(
    engine: Engine,
) -> None:
    customers(engine, [f"c{n:04d}" for n in range(300)])
    with engine.connect() as connection:
        first = shard_id_batches(connection, 0, 3, 50)
    late = next(i for i in (f"late{n}" for n in range(100)) if shard_of(i, 3) != 0)
    customers(engine, [late])  # arrives after shard 0 read its customers, before 1 and 2
    with engine.connect() as connection:
        others = [shard_id_batches(connection, s, 3, 50) for s in (1, 2)]
    held = [i for batches in (first, *others) for batch in batches for i in batch]
    assert sorted(held) == sorted([*(f"c{n:04d}" for n in range(300)), late])
    assert all(len(batch) <= 50 for batches in (first, *others) for batch in batches)
    assert all(batches for batches in (first, *others))  # the hash spreads them


def test_figures_add_up_per_batch_and_the_end_is_set_once(engine: Engine) -> None:
    with engine.begin() as connection:
        add_shard_figures(connection, "run-1", 0, {"welcome": 2}, 2, 1, AT)
        add_shard_figures(connection, "run-1", 0, {"welcome": 1, "winback": 4}, 5, 0, AT)
        add_shard_figures(connection, "run-1", 1, {"winback": 1}, 1, 0, AT)
        add_shard_figures(connection, "run-2", 0, {"welcome": 9}, 9, 9, AT)
        finish_shard(connection, "run-1", 0, 40, AT)
        finish_shard(connection, "run-1", 0, 40, AT)  # a rerun walks the same customers
    with engine.connect() as connection:
        found = shard_figures(connection, "run-1")
    assert found[0].finished and found[0].customers == 40
    assert (found[0].messages, found[0].tasks) == (7, 1)
    assert found[0].firings == {"welcome": 3, "winback": 4}
    assert not found[1].finished and found[1].firings == {"winback": 1}
