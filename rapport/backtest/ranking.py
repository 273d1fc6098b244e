"""The ranking view: the repeat buyers most overdue on one day, and what they did next.

Operations size a win-back campaign from it (`rapport backtest --top K --at D`). As of
one moment — day D at the evaluation's time of day — every customer's facts come from
`storage.facts.iter_customer_facts`, live evaluation's own, so *overdue* is the
`purchase_overdue_ratio` fact the churn rules test (days since the last purchase ÷ the
usual gap) and is computed in one place only. Ranked are the repeat buyers (two
purchases or more by then, so there is a usual gap) who are not `dormant`: the stage
every churn signal leaves out, as a customer who has already left.

What happened afterwards is judged as `outcomes.py` judges a flag: a customer *left*
when they made no purchase in the N days after the moment (`--horizon`), known only when
the history reaches the moment + N. The moment is the same for everyone, so the whole
day is known or it is not: a customer who came back is shown coming back either way,
but shares are only given for a known day (counted over the returns alone they would
read zero). Beside the precision at K stand each churn signal's precision on the same
day — the backtest replayed over that one step — and the base rate, the leaver share
among all current repeat buyers (a purchase in the year before, as the signals'
precision counts only current customers).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from engine.durations import format_duration
from engine.facts import whole_days
from engine.model import RuleSet
from rapport.backtest.outcomes import CURRENT_US
from rapport.backtest.results import Run, share, summarize
from rapport.backtest.runner import Progress, run_backtest
from rapport.backtest.timeline import DAY, MICROSECOND, Window
from storage.facts import iter_customer_facts
from storage.history import history_end, next_purchases

CURRENT_DAYS = CURRENT_US // (DAY // MICROSECOND)  # a current customer bought within them
RULE_FIGURES = ("flagged", "flagged_left", "precision", "pending", "late")


@dataclass(frozen=True)
class Overdue:
    """One ranked customer as of the moment: the facts the ranking shows (no contact
    details) and what happened in the horizon after it."""

    customer_id: str
    tier: str
    last_purchase_on: str
    usual_gap_days: float
    days_since_last_purchase: int
    overdue_ratio: float
    outcome: str = "pending"  # bought_again, left or pending
    bought_again_on: str | None = None  # the customer's local day of that purchase
    days_after: int | None = None  # whole days from the moment to it


@dataclass
class Leavers:
    """How many of a group left, bought again or cannot be judged yet."""

    known: bool  # the history reaches the moment + the horizon
    counts: dict[str, int] = field(
        default_factory=lambda: {"left": 0, "bought_again": 0, "pending": 0}
    )

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def figures(self) -> dict[str, Any]:
        left, back = self.counts["left"], self.counts["bought_again"]
        return {
            "customers": sum(self.counts.values()),
            **self.counts,
            "share": share(left, left + back) if self.known else None,
        }


class Afterwards:
    """What each customer did in the horizon after the moment (`next_purchases`)."""

    def __init__(
        self, as_of: datetime, returns: dict[str, tuple[datetime, str]], known: bool
    ) -> None:
        self.as_of, self.returns, self.known = as_of, returns, known

    def outcome(self, customer_id: str) -> str:
        if customer_id in self.returns:
            return "bought_again"
        return "left" if self.known else "pending"

    def of(self, candidate: Overdue) -> Overdue:
        found = self.returns.get(candidate.customer_id)
        if found is None:
            return replace(candidate, outcome=self.outcome(candidate.customer_id))
        at, zone = found
        return replace(
            candidate,
            outcome="bought_again",
            bought_again_on=at.astimezone(ZoneInfo(zone)).date().isoformat(),
            days_after=whole_days(at, self.as_of),
        )


class Ranking:
    """The K most overdue, the population they were ranked from and the base rate."""

    def __init__(self, facts: Iterable[dict[str, Any]], top: int, afterwards: Afterwards) -> None:
        """Ranks the repeat buyers who are not dormant by overdue ratio, then days since
        the last purchase, then customer id, streaming `facts` (in id order)."""
        self.afterwards = afterwards
        self.ranked = Leavers(afterwards.known)  # every repeat buyer who is not dormant
        self.base = Leavers(afterwards.known)  # every current repeat buyer, dormant or not
        self.dormant = 0  # repeat buyers left out as dormant
        # nlargest is sorted(reverse=True)[:top]: equal keys stay in id order
        best = heapq.nlargest(top, self._candidates(facts), key=_overdue_order)
        self.listed = [afterwards.of(candidate) for candidate in best]
        self.top = Leavers(afterwards.known)
        for customer in self.listed:
            self.top.add(customer.outcome)

    def _candidates(self, facts: Iterable[dict[str, Any]]) -> Iterator[Overdue]:
        for snapshot in facts:
            ratio = snapshot["purchase_overdue_ratio"]
            if ratio is None:  # fewer than two purchases: no usual gap
                continue
            customer_id, days_since = snapshot["customer_id"], snapshot["days_since_last_purchase"]
            outcome = self.afterwards.outcome(customer_id)
            if days_since < CURRENT_DAYS:
                self.base.add(outcome)
            if snapshot["lifecycle_stage"] == "dormant":
                self.dormant += 1
                continue
            self.ranked.add(outcome)
            yield Overdue(
                customer_id,
                snapshot["tier"],
                snapshot["last_purchase_on"],
                snapshot["usual_purchase_gap_days"],
                days_since,
                ratio,
            )


def _overdue_order(candidate: Overdue) -> tuple[float, int]:
    return (candidate.overdue_ratio, candidate.days_since_last_purchase)


def rank_day(
    engine: Engine,
    rules: tuple[Path, RuleSet],
    moment: tuple[date, time, str],
    top: int,
    horizon: timedelta,
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The ranking on a day at a time of day in a timezone (`moment`), and the churn
    signals' figures over that one step: the `--json` document."""
    day, clock, timezone = moment
    window = Window(day, day, clock, timezone, warmup=timedelta(0), horizon=horizon)
    as_of = window.steps[0]
    directory, ruleset = rules
    with engine.connect() as connection:
        end = history_end(connection)
        known = end is not None and as_of + horizon <= end
        afterwards = Afterwards(as_of, next_purchases(connection, as_of, as_of + horizon), known)
        facts = iter_customer_facts(connection, as_of, ruleset.parameters)
        ranking = Ranking(facts, top, afterwards)
    replayed = run_backtest(engine, [rules], window, workers=workers, progress=progress)
    summary = summarize(Run(directory, ruleset, replayed.tallies[0]), window, replayed.history_end)
    return {
        "rules": summary["rules"],
        "at": as_of.astimezone(ZoneInfo(timezone)).isoformat(),
        "timezone": timezone,
        "horizon": format_duration(horizon),
        "history_end": end.astimezone(UTC).isoformat() if end else None,
        "outcomes_known": known,
        "outcomes_known_until": _known_until(end, horizon, clock, timezone),
        "top": top,
        "customers": [asdict(customer) for customer in ranking.listed],
        "precision_at_k": ranking.top.figures(),
        "ranked": {**ranking.ranked.figures(), "dormant_left_out": ranking.dormant},
        "base_rate": ranking.base.figures(),
        "churn": {
            rule_id: {name: figures[name] for name in RULE_FIGURES}
            for rule_id, figures in summary["churn"].items()
        },
    }


def _known_until(end: datetime | None, horizon: timedelta, clock: time, zone: str) -> str | None:
    """The last day whose moment at `clock` the history judges: moment + horizon ≤ end."""
    if end is None:
        return None
    latest = (end - horizon).astimezone(ZoneInfo(zone))
    day = latest.date()
    return (day if latest.time() >= clock else day - timedelta(days=1)).isoformat()
