"""A sharded evaluation: how many shards, what each is told, reruns, and the sum.

One evaluation is cut into shards that run as separate flow runs, on as many workers
as there are (`flows.evaluate`). Every shard evaluates as of the parent's moment with
the parent's rules revision, so the shards together are exactly one evaluation; a
shard is told only its index, the count, that moment and that revision (which
customers it holds follows from a hash of their ids, `storage.shards`).

A failed shard is run again: re-entry and the outbox and task keys make a repeat add
nothing, and its figures grow only with what its batches committed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from rapport.services.scheduled import RunSummary
from storage.shards import ShardFigures

SHARD_SIZE = 50_000  # customers per shard when the count is left to Rapport
MAX_SHARDS = 8
RERUNS = 2  # a failed shard runs at most this many times again

log = logging.getLogger("rapport.shards")


def shard_count(requested: int, customers: int) -> int:
    """`requested` shards when above 0; else one per SHARD_SIZE customers, 1 to MAX_SHARDS."""
    if requested > 0:
        return requested
    return max(1, min(MAX_SHARDS, math.ceil(customers / SHARD_SIZE)))


@dataclass(frozen=True)
class ShardPlan:
    """What every shard of one evaluation shares: no customer id, nothing personal."""

    run_id: str  # the parent flow run, which the shards' figures are filed under
    shards: int
    as_of: str  # ISO 8601, with its offset: the parent's moment
    revision: str  # the hash of the rules revision the parent recorded
    batch_size: int

    def parameters(self, shard: int) -> dict[str, object]:
        """The flow parameters of shard `shard`."""
        return {"shard": shard, **asdict(self)}


class ShardsFailed(RuntimeError):
    """Shards still failed after their reruns (or finished without their figures)."""

    def __init__(self, failures: Mapping[int, str]) -> None:
        self.failures = dict(failures)
        super().__init__(
            "; ".join(f"shard {shard} failed: {why}" for shard, why in sorted(failures.items()))
        )


# Runs these shards (attempt 0 is the first) and returns why each one that failed did.
RunRound = Callable[[list[int], int], dict[int, str]]


def run_shards(shards: int, run_round: RunRound, reruns: int = RERUNS) -> None:
    """Runs every shard, then reruns the failed ones up to `reruns` times; raises
    `ShardsFailed` naming those that failed every time."""
    pending = list(range(shards))
    for attempt in range(reruns + 1):
        failures = run_round(pending, attempt)
        if not failures:
            return
        for shard, why in sorted(failures.items()):
            log.warning("shard %d of %d failed (attempt %d): %s", shard, shards, attempt + 1, why)
        pending = sorted(failures)
    raise ShardsFailed(failures)


def summed(figures: Mapping[int, ShardFigures], shards: int) -> RunSummary:
    """The evaluation's figures: its shards' added up. A shard that never recorded its
    end is a failure, even if Prefect says its run completed."""
    missing = [s for s in range(shards) if not (s in figures and figures[s].finished)]
    if missing:
        raise ShardsFailed({s: "its run ended without recording its figures" for s in missing})
    total = RunSummary()
    for shard in range(shards):
        found = figures[shard]
        total.add(RunSummary(found.customers, 0, dict(found.firings), found.messages, found.tasks))
    return total
