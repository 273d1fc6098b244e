"""One customer's aggregates as of any moment, computed in Python from their events.

It builds the same `CustomerAggregates` the set-wise SQL of `storage/facts.py` builds,
window for window and edge for edge (an event at `T` is seen as of `T`; one exactly a
window's length before `T` is out of it), so `engine.facts.derive_facts` turns them into
the facts a live evaluation would see. `tests/test_backtest_aggregates.py` holds it to
that on generated data at several moments, on SQLite and PostgreSQL.

It also knows how long aggregates stay as they are: until the customer's next event or
until an event leaves one of the windows. Between those moments only the facts that
count days since something move, so the replay computes aggregates once per change,
not once per step.
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime, timedelta

from engine.facts import (
    CONTACT_CHANNELS,
    FEEDBACK_LEVELS,
    CustomerAggregates,
    FactParameters,
)
from rapport.backtest.history import Happening, Profile
from rapport.backtest.timeline import MICROSECOND

YEAR_US = timedelta(days=365) // MICROSECOND
MONTH_US = timedelta(days=30) // MICROSECOND
NEVER = 2**62


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
        """Mirrors `storage.facts._event_aggregates` and `_open_feedback` for one customer;
        also returns the first moment after `at` at which the result can differ."""
        year, recent = at - YEAR_US, at - self.recent_us
        previous, month, two_months = recent - self.recent_us, at - MONTH_US, at - 2 * MONTH_US
        purchases_12m = refunds_12m = purchases_all = refunds_all = 0.0
        spend_recent = spend_previous = 0.0
        orders_12m = orders = recent_count = previous_count = logins = logins_before = 0
        complaints_recent = open_complaints = 0
        first: datetime | None = None
        last: datetime | None = None
        last_complaint: datetime | None = None
        survey_at: datetime | None = None
        survey_score: int | None = None
        contacts: dict[str, datetime | None] = dict.fromkeys(CONTACT_CHANNELS)
        open_items = dict.fromkeys(FEEDBACK_LEVELS, 0)
        changes = NEVER
        for event in self.events:
            when = event.at
            if when > at:
                changes = min(changes, when)
                break
            kind = event.type
            if kind == "purchase":
                amount = event.amount or 0.0
                purchases_all += amount
                orders += 1
                first = first or event.moment
                last = event.moment
                if when > year:
                    purchases_12m += amount
                    orders_12m += 1
                    changes = min(changes, when + YEAR_US)
                if when > recent:
                    recent_count += 1
                    spend_recent += amount
                    changes = min(changes, when + self.recent_us)
                elif when > previous:
                    previous_count += 1
                    spend_previous += amount
                    changes = min(changes, when + 2 * self.recent_us)
            elif kind == "refund":
                amount = event.amount or 0.0
                refunds_all += amount
                if when > year:
                    refunds_12m += amount
                    changes = min(changes, when + YEAR_US)
            elif kind == "login":
                if when > month:
                    logins += 1
                    changes = min(changes, when + MONTH_US)
                elif when > two_months:
                    logins_before += 1
                    changes = min(changes, when + 2 * MONTH_US)
            elif kind == "contact":
                if event.channel in contacts:
                    contacts[event.channel] = event.moment
            elif kind == "feedback":
                complaint = event.category == "complaint"
                if complaint:
                    last_complaint = event.moment
                    if when > recent:
                        complaints_recent += 1
                        changes = min(changes, when + self.recent_us)
                resolved = self.resolved_at.get(event.id, NEVER)
                if resolved > at:
                    changes = min(changes, resolved)
                    if event.level in open_items:
                        open_items[event.level] += 1
                    open_complaints += complaint
            elif (
                kind == "survey"
                and event.score is not None
                and event.category in (None, "nps")
                and (survey_at is None or event.moment >= survey_at)
            ):
                best = survey_score if event.moment == survey_at else None
                survey_at = event.moment
                survey_score = event.score if best is None else max(best, event.score)
        profile = self.profile
        aggregates = CustomerAggregates(
            customer_id=profile.id,
            segment=profile.segment,
            locale=profile.locale,
            timezone=profile.timezone,
            birthday=profile.birthday,
            account_manager=profile.account_manager,
            consents=profile.consents,
            spend_12m=purchases_12m - refunds_12m,
            orders_12m=orders_12m,
            lifetime_spend=purchases_all - refunds_all,
            lifetime_orders=orders,
            first_purchase_at=first,
            last_purchase_at=last,
            purchases_recent=recent_count,
            spend_recent=spend_recent,
            purchases_previous=previous_count,
            spend_previous=spend_previous,
            logins_30d=logins,
            logins_prev_30d=logins_before,
            last_contact_at=contacts,
            open_feedback=open_items,
            open_complaints=open_complaints,
            complaints_recent=complaints_recent,
            last_complaint_at=last_complaint,
            last_survey_score=survey_score,
            last_survey_at=survey_at,
        )
        return aggregates, changes
