"""How a customer's facts move while their aggregates stay the same — for the prefilter.

Between two changes of a customer's aggregates (an event, or an event leaving one of
the windows), `engine.facts.derive_facts` gives other facts at other moments only
through the clock: the `days_since_*` counters grow by one a day (the contact ones
follow the customer's local date, recomputed with the engine's helper), the purchase-overdue
ratio and the lifecycle stage follow the counters, and the calendar facts follow the
customer's local date. Every other fact (`STATIC`) is a function of the aggregates.
`Drift.move` moves a snapshot forward by whole days with the engine's own helpers, so the
replay need not derive all facts again at every step to learn that no rule can fire.

Only the prefilter uses it: a step that may fire reaches the engine with facts
recomputed by `derive_facts`. `tests/rapport/backtest/test_backtest_aggregates.py` holds it equal to
`derive_facts`, fact for fact, on generated customers over a year, so a new fact that
depends on the time cannot slip into `STATIC` unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.facts import (
    FACTS,
    CustomerAggregates,
    FactParameters,
    calendar_facts,
    contact_facts,
    holiday_on,
    lifecycle_stage,
    overdue_ratio,
)
from rapport.backtest.timeline import DAY, MICROSECOND

DAY_US = DAY // MICROSECOND
COUNTERS = tuple(fact.name for fact in FACTS if fact.name.startswith("days_since_"))
CONTACTS = frozenset(name for name in COUNTERS if "contact" in name)  # local calendar days
ELAPSED = tuple(name for name in COUNTERS if name not in CONTACTS)  # whole 24 h days
FOLLOWERS = ("purchase_overdue_ratio", "lifecycle_stage")
CALENDAR = ("is_birthday", "holiday", "is_first_purchase_anniversary", "years_since_first_purchase")
MOVING = frozenset((*COUNTERS, *FOLLOWERS, *CALENDAR))
STATIC = frozenset(fact.name for fact in FACTS) - MOVING


@dataclass(frozen=True)
class Snapshot:
    """Facts derived at one moment, with what moving them forward needs."""

    at: int  # microseconds
    facts: dict[str, Any]
    aggregates: CustomerAggregates
    zone: ZoneInfo
    first_purchase: date | None

    @classmethod
    def of(cls, at: int, facts: dict[str, Any], aggregates: CustomerAggregates) -> Snapshot:
        first = facts["first_purchase_on"]
        zone = ZoneInfo(aggregates.timezone)
        return cls(at, facts, aggregates, zone, date.fromisoformat(first) if first else None)

    def reaches(self, at: int, aggregates: CustomerAggregates) -> bool:
        """Whether `Drift.move` reaches `at`: whole days later, the same aggregates."""
        return aggregates is self.aggregates and at >= self.at and (at - self.at) % DAY_US == 0


class Drift:
    """Moves snapshots forward for one revision's fact parameters."""

    def __init__(self, params: FactParameters) -> None:
        self.params = params
        self._holidays: dict[date, str | None] = {}

    def holiday_on(self, today: date) -> str | None:
        """The `holiday` fact on a local date (remembered: a few hundred dates a year)."""
        if today not in self._holidays:
            self._holidays[today] = holiday_on(today, self.params)
        return self._holidays[today]

    def move(
        self,
        snapshot: Snapshot,
        at: int,
        moment: datetime,
        into: dict[str, Any],
        needed: frozenset[str] = MOVING,
    ) -> None:
        """Writes the moving facts of `needed` as of `at` (`moment`) into `into`, a copy of
        the snapshot's facts: what `derive_facts` gives for them then."""
        base, days = snapshot.facts, (at - snapshot.at) // DAY_US
        for name in ELAPSED:
            if name in needed:
                value = base[name]
                into[name] = None if value is None else value + days
        if not needed.isdisjoint(CONTACTS):  # calendar days: a 24 h step across a DST
            today = moment.astimezone(snapshot.zone).date()  # change need not add one
            into.update(contact_facts(snapshot.aggregates.last_contact_at, today, snapshot.zone))
        if not needed.isdisjoint(FOLLOWERS):
            last, first = base["days_since_last_purchase"], base["days_since_first_purchase"]
            last = None if last is None else last + days
            gap = base["usual_purchase_gap_days"]
            into["purchase_overdue_ratio"] = overdue_ratio(last, gap)
            into["lifecycle_stage"] = lifecycle_stage(
                days_since_first=None if first is None else first + days,
                days_since_last=last,
                usual_gap=gap,
                purchases_recent=base["purchases_recent"],
                purchases_previous=base["purchases_previous"],
                open_complaints=base["open_complaints"],
                params=self.params,
            )
        if needed.isdisjoint(CALENDAR):
            return
        today = moment.astimezone(snapshot.zone).date()
        birthday, started = snapshot.aggregates.birthday, snapshot.first_purchase
        into.update(calendar_facts(birthday, started, today, self.holiday_on(today)))
