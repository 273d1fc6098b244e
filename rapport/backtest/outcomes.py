"""Did the churn signals flag customers who really left? The outcome of each flag.

N is the horizon (`--horizon`, 90 days by default). For every rule tagged `churn_signal`:

- a *flag* is one of its firings for a customer at a moment `t` of the counted period;
  the customer *left after t* when they made no purchase in `(t, t + N]`;
- `precision`: of its flags on current customers (a purchase in the year before `t`,
  the tier year), the share who left after the flag;
- `unflagged_share`: the same share among the current customers it did not flag, over
  every step (a customer counts as flagged at a step when the rule fired for them
  between that step and the next) — precision well above it means the signal tells
  leavers apart;
- `eligible_share`: the same share among the current customers eligible for the signal
  at each step (`eligibility.py`: those who met the rule's other conditions, flagged
  or not) — its fair base rate; `fair_lift` is precision over it, where `lift` is
  precision over `unflagged_share`;
- `recall`: a customer *leaves* at `p + N` when `p` is a purchase followed by N days
  without one; of the customers who left during the period, the share it flagged
  between that last purchase and `p + N`, while there was still time to win them back;
- `late`: flags on customers who had bought nothing for a year; `pending`: flags too
  recent for their outcome to be known.

Only outcomes the history can tell count: a moment `t` (or a departure `p + N`) is known
when `t + N` (`p + N`) is at most the time of the last stored event.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

from rapport.backtest.tally import Tally
from rapport.backtest.timeline import MICROSECOND, Window

CURRENT_US = timedelta(days=365) // MICROSECOND  # a current customer bought within it


class Outcomes:
    """One customer's purchases and the churn flags raised for them."""

    def __init__(self, purchases: list[int], window: Window, history_end: int) -> None:
        self.purchases = purchases  # microseconds, in time order
        self.window = window
        self.horizon = window.horizon_us
        self.known_until = history_end - self.horizon  # moments whose outcome is known
        self.flags: list[tuple[str, int]] = []
        self.eligible_steps: Counter[tuple[str, bool]] = Counter()  # (rule, left after)

    def flag(self, rule_id: str, at: int) -> None:
        self.flags.append((rule_id, at))

    def judged(self, at: int) -> bool:
        """Whether step `at` counts for the base rates: counted, its outcome known and
        the customer current."""
        return self.window.start_us <= at <= self.known_until and self.current(at)

    def eligible(self, rule_ids: list[str], at: int) -> None:
        """The customer was eligible for these signals at (judged) step `at`."""
        left = self.left_after(at)
        for rule_id in rule_ids:
            self.eligible_steps[(rule_id, left)] += 1

    def current(self, at: int) -> bool:
        index = bisect_right(self.purchases, at)
        return index > 0 and self.purchases[index - 1] > at - CURRENT_US

    def left_after(self, at: int) -> bool:
        index = bisect_right(self.purchases, at)
        return index == len(self.purchases) or self.purchases[index] > at + self.horizon

    def count(self, tally: Tally, rule_ids: Iterable[str]) -> None:
        """Adds this customer's outcome figures to `tally`."""
        start, steps = self.window.start_us, self.window.steps_us
        base = tally.outcome_base
        for step in steps:
            if self.judged(step):
                base["current"] += 1
                base["current_left"] += self.left_after(step)
        flagged_steps: set[tuple[str, int]] = set()
        for rule_id, at in self.flags:
            if at < start:
                continue  # the warm-up: only counted for recall
            counts = tally.churn.setdefault(rule_id, Counter())
            if at > self.known_until:
                counts["pending"] += 1
            elif not self.current(at):
                counts["late"] += 1
            else:
                counts["flagged"] += 1
                counts["flagged_left"] += self.left_after(at)
                flagged_steps.add((rule_id, steps[bisect_right(steps, at) - 1]))
        for rule_id, step in flagged_steps:  # the flagged part of each step's population
            if step <= self.known_until and self.current(step):
                tally.churn[rule_id]["flagged_at_step"] += 1
                tally.churn[rule_id]["flagged_at_step_left"] += self.left_after(step)
        for (rule_id, left), count in self.eligible_steps.items():
            counts = tally.churn.setdefault(rule_id, Counter())
            counts["eligible"] += count
            counts["eligible_left"] += count * left
        departures = self._departures()
        base["customers_left"] += bool(departures)
        for rule_id in rule_ids:
            caught = any(
                name == rule_id and bought <= at < bought + self.horizon
                for name, at in self.flags
                for bought in departures
            )
            tally.churn.setdefault(rule_id, Counter())["customers_caught"] += caught

    def _departures(self) -> list[int]:
        """The last purchases before each departure the period saw: purchases followed by
        N days without one, the N days ending within the period and the known history."""
        found = []
        for index, bought in enumerate(self.purchases):
            gone = bought + self.horizon
            following = self.purchases[index + 1] if index + 1 < len(self.purchases) else None
            if following is not None and following <= gone:
                continue
            if (
                self.window.start_us <= gone < self.window.end_us
                and gone <= self.known_until + self.horizon
            ):
                found.append(bought)
        return found
