"""One customer's aggregates as of any moment, computed in Python from their events.

It builds the same `CustomerAggregates` the set-wise SQL of `storage/facts.py` builds,
window for window and edge for edge (an event at `T` is seen as of `T`; one exactly a
window's length before `T` is out of it), so `engine.facts.derive_facts` turns them into
the facts a live evaluation would see. `tests/rapport/backtest/test_backtest_aggregates.py`
holds it to that on generated data at several moments, on SQLite and PostgreSQL.

It also knows how long aggregates stay as they are: until the customer's next event or
until an event leaves one of the windows. Between those moments only the facts that
count days since something move, so the replay computes aggregates once per change,
not once per step.
"""

from __future__ import annotations

from bisect import insort
from datetime import timedelta

from engine.facts import CustomerAggregates, FactParameters
from rapport.backtest.history import Happening, Profile
from rapport.backtest.timeline import MICROSECOND
from rapport.backtest.totals import NEVER, Accumulator


class CustomerHistory:
    """A customer's events in time order (stored ones, plus the contacts the replay
    delivers), and their aggregates as of any moment."""

    def __init__(
        self,
        profile: Profile,
        events: list[Happening],
        resolved_at: dict[str, int],
        params: FactParameters,
    ) -> None:
        self.profile = profile
        self.events = events
        self.resolved_at = resolved_at  # feedback id -> its first resolution
        self.recent_us = timedelta(days=params.recent_window_days) // MICROSECOND
        self.product_windows = params.product_windows
        self._cached: CustomerAggregates | None = None
        self._valid = (NEVER, -NEVER)  # the cached aggregates hold on [from, until)

    def add(self, happening: Happening) -> None:
        """A contact the replay delivered: part of the history from its moment on."""
        insort(self.events, happening, key=lambda event: event.at)
        if happening.at < self._valid[1]:
            self._cached = None

    def aggregates(self, at: int) -> CustomerAggregates:
        """The aggregates as of `at` (microseconds), reused while nothing changes."""
        start, until = self._valid
        if self._cached is None or not start <= at < until:
            self._cached, until = self._compute(at)
            self._valid = (at, until)
        return self._cached

    def _compute(self, at: int) -> tuple[CustomerAggregates, int]:
        """Mirrors `storage.facts._event_aggregates` and `_open_feedback` for one customer
        (see `totals.py`); also returns the first moment after `at` at which the result
        can differ."""
        accumulator = Accumulator(at, self.recent_us, self.resolved_at, self.product_windows)
        for event in self.events:
            if event.at > at:
                accumulator.changes_at(event.at)
                break
            accumulator.add(event)
        return accumulator.totals.aggregates(self.profile), accumulator.changes
