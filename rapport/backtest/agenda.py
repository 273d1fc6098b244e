"""The replay's agenda: what happens next for one customer, in time order.

At one instant the phases run in a fixed order (see `replay.py`): reactions, then the
scheduled evaluation, then dispatch. Items of one instant and phase are handled together
and, within them, in the order they were added.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any

REACT, EVALUATE, DISPATCH = 0, 1, 2  # what happens first at one instant


class Agenda:
    """A priority queue of (moment, phase) with the items due then."""

    def __init__(self) -> None:
        self._queue: list[tuple[int, int, int, Any]] = []
        self._order = itertools.count()  # keeps items of one instant and phase in order

    def add(self, at: int, phase: int, item: Any) -> None:
        heapq.heappush(self._queue, (at, phase, next(self._order), item))

    def until(self, end: int) -> Iterator[tuple[int, int, list[Any]]]:
        """Each (moment, phase, items) before `end`, earliest first; what handling them
        adds to the agenda is taken into account."""
        while self._queue and self._queue[0][0] < end:
            at, phase = self._queue[0][:2]
            yield at, phase, self._take(at, phase)

    def _take(self, at: int, phase: int) -> list[Any]:
        taken = []
        while self._queue and self._queue[0][:2] == (at, phase):
            taken.append(heapq.heappop(self._queue)[3])
        return taken
