"""One customer's facts during a replay: exact ones for the engine and the guards, and
the prefilter's cheaper foresight of whether any scheduled rule may fire at a step."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from engine.facts import FactParameters, derive_facts
from engine.model import Rule
from rapport.backtest.aggregates import CustomerHistory
from rapport.backtest.drift import Drift, Snapshot
from rapport.backtest.history import Happening
from rapport.backtest.prefilter import Prefilter, Remembered
from rapport.backtest.timeline import from_us


class CustomerFacts:
    """The customer's facts as of any moment, as `storage.facts.iter_customer_facts`
    gives them; derived again only when the moment or the history changed."""

    def __init__(self, history: CustomerHistory, params: FactParameters) -> None:
        self.history = history
        self.params = params
        self._version = 0  # counts the contacts added, which change the history
        self._cached: tuple[int, int, dict[str, Any]] | None = None

    def as_of(self, at: int) -> dict[str, Any]:
        if self._cached is None or self._cached[:2] != (at, self._version):
            facts = derive_facts(self.history.aggregates(at), from_us(at), self.params)
            self._cached = (at, self._version, facts)
        return self._cached[2]

    def add_contact(self, contact: Happening) -> None:
        """A contact the replay delivered: later facts see it."""
        self.history.add(contact)
        self._version += 1


class Foresight:
    """The prefilter's view of one customer. Facts are derived when the aggregates
    changed (then the rules whose static conditions fail are set aside), else moved
    forward by `Drift` from the last derived snapshot."""

    def __init__(self, prefilter: Prefilter, drift: Drift, facts: CustomerFacts) -> None:
        self.prefilter, self.drift, self.facts = prefilter, drift, facts
        self._snapshot: Snapshot | None = None
        self._drifted: dict[str, Any] = {}
        self._alive: list[tuple[Rule, Remembered]] = []
        self._moving: frozenset[str] = frozenset()

    def holding(self, at: int, moment: datetime) -> Iterator[Rule]:
        """The scheduled rules whose conditions hold as of `at`, found lazily (the caller
        stops at the first it can use)."""
        foreseen = self._foresee(at, moment)
        return (rule for rule, holds in self._alive if holds(foreseen))

    def _foresee(self, at: int, moment: datetime) -> dict[str, Any]:
        aggregates = self.facts.history.aggregates(at)
        if self._snapshot is None or not self._snapshot.reaches(at, aggregates):
            facts = self.facts.as_of(at)
            self._snapshot = Snapshot.of(at, facts, aggregates)
            self._drifted = dict(facts)
            self._alive, self._moving = self.prefilter.alive(facts)
            return facts
        self.drift.move(self._snapshot, at, moment, self._drifted, self._moving)
        return self._drifted
