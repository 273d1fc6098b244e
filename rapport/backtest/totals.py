"""One pass over a customer's events as of a moment: the sums, counts and latest moments
the SQL of `storage/facts.py` computes (`_event_aggregates`, `_open_feedback`).

Each kind of event adds to them in its own method, so one piece can be read (and held
to its SQL column) at a time. Window edges are the SQL's: an event at `at` is in, one
exactly a window's length before `at` is out. The pass also notes the first moment
after `at` at which the totals can differ, so `aggregates.CustomerHistory` knows how
long to reuse them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.facts import CONTACT_CHANNELS, FEEDBACK_LEVELS, CustomerAggregates, ProductWindow
from rapport.backtest.history import Happening, Profile
from rapport.backtest.timeline import MICROSECOND

YEAR_US = timedelta(days=365) // MICROSECOND
MONTH_US = timedelta(days=30) // MICROSECOND
NEVER = 2**62


def _no_contacts() -> dict[str, datetime | None]:
    return dict.fromkeys(CONTACT_CHANNELS)


def _no_open_items() -> dict[str, int]:
    return dict.fromkeys(FEEDBACK_LEVELS, 0)


@dataclass
class Totals:
    """What the events up to a moment add up to. Purchases and refunds are summed apart,
    as the SQL sums them, so the floats are added in the same order."""

    purchases_12m: float = 0.0
    refunds_12m: float = 0.0
    purchases_all: float = 0.0
    refunds_all: float = 0.0
    orders_12m: int = 0
    lifetime_orders: int = 0
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    purchases_recent: int = 0
    spend_recent: float = 0.0
    purchases_previous: int = 0
    spend_previous: float = 0.0
    logins_30d: int = 0
    logins_prev_30d: int = 0
    last_contact_at: dict[str, datetime | None] = field(default_factory=_no_contacts)
    open_feedback: dict[str, int] = field(default_factory=_no_open_items)
    open_complaints: int = 0
    complaints_recent: int = 0
    last_complaint_at: datetime | None = None
    last_survey_score: int | None = None
    last_survey_at: datetime | None = None
    product_purchases: dict[ProductWindow, int] = field(default_factory=dict)

    def aggregates(self, profile: Profile) -> CustomerAggregates:
        """The row `storage.facts._aggregates` builds for this customer."""
        return CustomerAggregates(
            customer_id=profile.id,
            segment=profile.segment,
            locale=profile.locale,
            timezone=profile.timezone,
            birthday=profile.birthday,
            account_manager=profile.account_manager,
            consents=profile.consents,
            spend_12m=self.purchases_12m - self.refunds_12m,
            orders_12m=self.orders_12m,
            lifetime_spend=self.purchases_all - self.refunds_all,
            lifetime_orders=self.lifetime_orders,
            first_purchase_at=self.first_purchase_at,
            last_purchase_at=self.last_purchase_at,
            purchases_recent=self.purchases_recent,
            spend_recent=self.spend_recent,
            purchases_previous=self.purchases_previous,
            spend_previous=self.spend_previous,
            logins_30d=self.logins_30d,
            logins_prev_30d=self.logins_prev_30d,
            last_contact_at=self.last_contact_at,
            open_feedback=self.open_feedback,
            open_complaints=self.open_complaints,
            complaints_recent=self.complaints_recent,
            last_complaint_at=self.last_complaint_at,
            last_survey_score=self.last_survey_score,
            last_survey_at=self.last_survey_at,
            product_purchases=self.product_purchases,
        )


class Accumulator:
    """Adds a customer's events, in time order, into `totals` as of `at` (microseconds);
    `changes` is the first moment after `at` at which the totals can differ."""

    def __init__(
        self,
        at: int,
        recent_us: int,
        resolved_at: dict[str, int],
        product_windows: tuple[ProductWindow, ...] = (),
    ) -> None:
        self.at, self.recent_us, self.resolved_at = at, recent_us, resolved_at
        self.product_windows = [
            (window, timedelta(days=window.days) // MICROSECOND) for window in product_windows
        ]
        self.year, self.recent = at - YEAR_US, at - recent_us
        self.previous = self.recent - recent_us
        self.month, self.two_months = at - MONTH_US, at - 2 * MONTH_US
        self.totals = Totals(product_purchases=dict.fromkeys(product_windows, 0))
        self.changes = NEVER
        self._by_type: dict[str, Callable[[Happening], None]] = {
            "purchase": self._purchase,
            "refund": self._refund,
            "login": self._login,
            "contact": self._contact,
            "feedback": self._feedback,
            "survey": self._survey,
        }

    def add(self, event: Happening) -> None:
        """An event at or before `at`; kinds no aggregate counts are passed over."""
        add = self._by_type.get(event.type)
        if add is not None:
            add(event)

    def changes_at(self, moment: int) -> None:
        """The totals can differ from `moment` on (an event arrives, one leaves a window)."""
        self.changes = min(self.changes, moment)

    def _purchase(self, event: Happening) -> None:
        sums, when, amount = self.totals, event.at, event.amount or 0.0
        sums.purchases_all += amount
        sums.lifetime_orders += 1
        sums.first_purchase_at = sums.first_purchase_at or event.moment
        sums.last_purchase_at = event.moment
        if when > self.year:
            sums.purchases_12m += amount
            sums.orders_12m += 1
            self.changes_at(when + YEAR_US)
        if when > self.recent:
            sums.purchases_recent += 1
            sums.spend_recent += amount
            self.changes_at(when + self.recent_us)
        elif when > self.previous:
            sums.purchases_previous += 1
            sums.spend_previous += amount
            self.changes_at(when + 2 * self.recent_us)
        for window, length in self.product_windows:
            if event.product == window.product and when > self.at - length:
                sums.product_purchases[window] += 1
                self.changes_at(when + length)

    def _refund(self, event: Happening) -> None:
        amount = event.amount or 0.0
        self.totals.refunds_all += amount
        if event.at > self.year:
            self.totals.refunds_12m += amount
            self.changes_at(event.at + YEAR_US)

    def _login(self, event: Happening) -> None:
        if event.at > self.month:
            self.totals.logins_30d += 1
            self.changes_at(event.at + MONTH_US)
        elif event.at > self.two_months:
            self.totals.logins_prev_30d += 1
            self.changes_at(event.at + 2 * MONTH_US)

    def _contact(self, event: Happening) -> None:
        if event.channel in self.totals.last_contact_at:
            self.totals.last_contact_at[event.channel] = event.moment

    def _feedback(self, event: Happening) -> None:
        sums, complaint = self.totals, event.category == "complaint"
        if complaint:
            sums.last_complaint_at = event.moment
            if event.at > self.recent:
                sums.complaints_recent += 1
                self.changes_at(event.at + self.recent_us)
        resolved = self.resolved_at.get(event.id, NEVER)
        if resolved > self.at:  # still open as of `at`
            self.changes_at(resolved)
            if event.level in sums.open_feedback:
                sums.open_feedback[event.level] += 1
            sums.open_complaints += complaint

    def _survey(self, event: Happening) -> None:
        """The latest NPS answer; answers at the same moment give the best score, as the
        SQL's `max(score)` at the latest time does."""
        sums = self.totals
        if (
            event.score is None
            or event.category not in (None, "nps")
            or (sums.last_survey_at is not None and event.moment < sums.last_survey_at)
        ):
            return
        best = sums.last_survey_score if event.moment == sums.last_survey_at else None
        sums.last_survey_at = event.moment
        sums.last_survey_score = event.score if best is None else max(best, event.score)
