"""Which scheduled rules may fire for a snapshot, answered without the engine.

The engine is the authority, but asking it about every customer at every step is most
of a year's replay. `engine.trace.holds` evaluates conditions in Python with the
compiler's semantics (the test suite holds it equal to the engine), so a step whose
snapshot satisfies no rule's conditions can be skipped; a step where some rule may fire
goes to the engine, whose answer is the one used. Two things make it cheap:

- a rule's outcome depends only on the values it reads, so it is remembered per
  combination of those values (a few thousand per rule);
- the conditions of a rule that read only `STATIC` facts (tier, consent, counts in the
  windows, ...) cannot change while the customer's aggregates stay the same, so a rule
  whose static conditions fail is set aside until they change.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from engine.compile import message_key
from engine.evaluate import referenced
from engine.model import AllOf, Condition, Rule
from engine.trace import holds
from rapport.backtest.drift import MOVING, STATIC

MEMO_LIMIT = 50_000  # remembered outcomes per rule; past it they are forgotten and relearnt


class Remembered:
    """`holds(condition, facts)`, remembered per combination of the values it reads."""

    def __init__(self, condition: Condition) -> None:
        self.condition = condition
        names = [message_key(name) for name in referenced(condition)]
        self.reads: Callable[[dict[str, Any]], Any] = itemgetter(*names)
        self.known: dict[Any, bool] = {}

    def __call__(self, facts: dict[str, Any]) -> bool:
        key = self.reads(facts)
        found = self.known.get(key)
        if found is None:
            if len(self.known) >= MEMO_LIMIT:
                self.known.clear()
            found = self.known[key] = holds(self.condition, facts)
        return found


class Prefilter:
    """The exact, engine-free first look at a snapshot for one revision's scheduled rules."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._outcome = {rule.id: Remembered(rule.when) for rule in rules}
        self._static: dict[str, Remembered] = {}
        self._moving = {rule.id: frozenset(referenced(rule.when)) & MOVING for rule in rules}
        for rule in rules:
            fixed = tuple(item for item in rule.when.items if set(referenced(item)) <= STATIC)
            if fixed:
                self._static[rule.id] = Remembered(AllOf(fixed))

    def alive(self, facts: dict[str, Any]) -> tuple[list[tuple[Rule, Remembered]], frozenset[str]]:
        """The rules whose conditions on static facts hold for this snapshot, each with its
        remembered outcome, and the moving facts they read."""
        alive = [
            (rule, self._outcome[rule.id])
            for rule in self.rules
            if rule.id not in self._static or self._static[rule.id](facts)
        ]
        return alive, frozenset().union(*(self._moving[rule.id] for rule, _ in alive))
