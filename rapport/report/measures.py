"""The measures operations track (SPEC §1), for any period and any group of customers.

Plain functions over the rows of `storage/report_data.py`; the definitions are the
ones `rules/README.md` states for operations:

- *active* at a moment: a purchase within `active_window` before it (`[t − w, t)`);
- retention: of the customers active at the period's start, the share active at its
  end; churn is the rest (churn = 1 − retention);
- win-back: of the customers whose win-back window (`winback_window` after a firing of
  a `winback`-tagged rule, held out or not) ended in the period, the share who bought
  within it (after their first such firing): every window counted has run its course;
- NPS: % promoters (9–10) − % detractors (0–6) among NPS answers in the period;
- satisfaction: the mean score (0–10) of each dimension's answers, weighted product fit
  40, response speed 25, resolution quality 20, price 15, brand 10 — the playbook's
  weights sum to 110, so they are divided by their sum (over the dimensions answered)
  — and shown on a 0–100 scale;
- feedback SLA: per level, the share of items answered (resolved) within its target;
  an item still unanswered whose target has not passed by the period's end is pending
  and left out;
- ledger: remediation items as they stood at the period's end;
- lifetime value: net purchases to date per customer who bought; the projection adds
  the trailing-12-month net spend × (r + r² + … + r^H), r being the group's share of
  customers active a year before the end who are still active at it (everyone's share
  for a group with nobody active then, such as new customers), H the horizon;
- return on relationship spend: net revenue from the customers the rules contacted (a
  message sent or a task opened in the period), from their first contact to the end of
  the period, ÷ what those messages and tasks cost.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from statistics import median
from typing import Any

from engine.measure_settings import Measures
from engine.service_levels import ServiceLevels
from storage.report_data import FeedbackItem, LedgerItem, RuleMoment, Sale, Survey, Work

SATISFACTION_WEIGHTS: Mapping[str, int] = {
    "product_fit": 40,
    "response_speed": 25,
    "resolution_quality": 20,
    "price": 15,
    "brand": 10,
}
YEAR = timedelta(days=365)


@dataclass(frozen=True)
class Rate:
    """`part` of `whole`, kept as counts so a table can show both."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class Sla:
    """One feedback level's items against its targets."""

    items: int
    response: Rate  # first response within target, of the items due by the end
    resolution: Rate  # resolved within target, of the items due by the end
    median_response_hours: float | None
    median_resolution_hours: float | None


@dataclass(frozen=True)
class Ledger:
    open: int  # open and not yet due
    overdue: int  # open past its deadline
    closed_accepted: int  # closed in the period with an acceptance note


@dataclass(frozen=True)
class GroupMeasures:
    customers: int
    retention: Rate
    winback: Rate
    nps: float | None
    nps_answers: int
    promoters: int  # answers of 9 or 10
    detractors: int  # answers of 0 to 6
    satisfaction: float | None  # 0–100
    dimensions: dict[str, float | None]  # mean score 0–10 per dimension
    sla: dict[str, Sla]
    ledger: Ledger
    revenue: float  # net, in the period
    clv: float | None  # historical, per customer who bought
    clv_projected: float | None
    spend: float
    contacted_revenue: float
    revenue_squares: float  # Σ revenue² over the customers, for the spread of the mean
    spend_squares: float  # Σ spend² over the customers

    @property
    def revenue_moments(self) -> tuple[int, float, float]:
        return self.customers, self.revenue, self.revenue_squares

    @property
    def spend_moments(self) -> tuple[int, float, float]:
        return self.customers, self.spend, self.spend_squares

    @property
    def churn(self) -> Rate:
        return Rate(self.retention.whole - self.retention.part, self.retention.whole)

    @property
    def contacted_revenue_per_spend(self) -> float | None:
        """Revenue of contacted customers (after their first contact) over the spend:
        all of it, not what the spend brought (see `comparison.incremental_return`)."""
        return self.contacted_revenue / self.spend if self.spend else None

    @property
    def revenue_per_customer(self) -> float | None:
        return self.revenue / self.customers if self.customers else None

    @property
    def spend_per_customer(self) -> float | None:
        return self.spend / self.customers if self.customers else None


@dataclass(frozen=True)
class Standing:
    """One customer's sales figures for the period: computed once, summed per group."""

    active_start: bool
    active_end: bool
    active_year_ago: bool
    bought: bool  # a purchase before the end
    revenue: float  # net, in the period
    historical: float  # net, before the end
    yearly: float  # net, in the 12 months to the end


@dataclass
class ReportData:
    """Everything one report measures, indexed by customer."""

    start: datetime
    end: datetime
    window: timedelta  # the active window
    customers: list[str]
    sales: Mapping[str, list[Sale]]
    surveys: list[Survey]
    feedback: list[FeedbackItem]
    ledger: list[LedgerItem]
    work: list[Work]
    winbacks: list[RuleMoment]
    service_levels: ServiceLevels  # the feedback targets and the calendar they count on
    base_rate: float = 0.0  # everyone's yearly retention, for lifetime-value projections
    by_customer: dict[str, dict[str, list[Any]]] = field(init=False)
    bought_at: dict[str, list[datetime]] = field(init=False)  # purchase times, in order
    standing: dict[str, Standing] = field(init=False)

    def __post_init__(self) -> None:
        index: dict[str, dict[str, list[Any]]] = {}
        for name in ("surveys", "feedback", "ledger", "work", "winbacks"):
            for row in getattr(self, name):
                index.setdefault(row.customer_id, {}).setdefault(name, []).append(row)
        self.by_customer = index
        self.bought_at = {
            c: [sale.at for sale in sales if sale.is_purchase] for c, sales in self.sales.items()
        }
        self.standing = {c: self._standing(c) for c in self.customers}

    def _standing(self, customer: str) -> Standing:
        times, sales = self.bought_at.get(customer, []), self.sales.get(customer, [])
        year_ago = self.end - YEAR
        return Standing(
            active_start=active_at(times, self.start, self.window),
            active_end=active_at(times, self.end, self.window),
            active_year_ago=active_at(times, year_ago, self.window),
            bought=bool(times),
            revenue=_net(sales, self.start, self.end),
            historical=_net(sales, None, self.end),
            yearly=_net(sales, year_ago, self.end),
        )

    def rows(self, customers: Iterable[str], name: str) -> list[Any]:
        """The rows of list `name` (surveys, feedback, ...) of these customers."""
        return [row for c in customers for row in self.by_customer.get(c, {}).get(name, ())]


def active_at(purchases: Sequence[datetime], moment: datetime, window: timedelta) -> bool:
    """A purchase (times in order) in `[moment − window, moment)`."""
    first = bisect_left(purchases, moment - window)
    return first < len(purchases) and purchases[first] < moment


def _net(sales: Sequence[Sale], start: datetime | None, end: datetime) -> float:
    return sum(s.amount for s in sales if (start is None or s.at >= start) and s.at < end)


def measure(
    data: ReportData, customers: Sequence[str], settings: Measures, cost: Callable[[Work], float]
) -> GroupMeasures:
    """Every measure for `customers` over the data's period."""
    start, end = data.start, data.end
    standing = [data.standing[c] for c in customers]
    active_start = [s for s in standing if s.active_start]
    work: list[Work] = data.rows(customers, "work")
    contacted: dict[str, datetime] = {}
    for w in work:
        contacted[w.customer_id] = min(w.at, contacted.get(w.customer_id, w.at))
    spend_of: dict[str, float] = {}
    for w in work:
        spend_of[w.customer_id] = spend_of.get(w.customer_id, 0.0) + cost(w)
    surveys: list[Survey] = data.rows(customers, "surveys")
    nps, answers = net_promoter_score(surveys)
    promoters, detractors = nps_shares(surveys)
    dimensions = dimension_means(surveys)
    feedback: list[FeedbackItem] = data.rows(customers, "feedback")
    ledger: list[LedgerItem] = data.rows(customers, "ledger")
    winbacks: list[RuleMoment] = data.rows(customers, "winbacks")
    historical, projected = lifetime_values(
        [s for s in standing if s.bought], settings.clv_horizon_years, data.base_rate
    )
    return GroupMeasures(
        customers=len(customers),
        retention=Rate(sum(s.active_end for s in active_start), len(active_start)),
        winback=winback_rate(winbacks, data.sales, settings.winback_window),
        nps=nps,
        nps_answers=answers,
        promoters=promoters,
        detractors=detractors,
        satisfaction=satisfaction_index(dimensions),
        dimensions=dimensions,
        sla={
            level: sla_figures([f for f in feedback if f.level == level], data.service_levels, end)
            for level in data.service_levels.targets
        },
        ledger=ledger_status(ledger, start, end),
        revenue=sum(s.revenue for s in standing),
        clv=historical,
        clv_projected=projected,
        spend=sum(spend_of.values()),
        contacted_revenue=sum(_net(data.sales.get(c, ()), at, end) for c, at in contacted.items()),
        revenue_squares=sum(s.revenue * s.revenue for s in standing),
        spend_squares=sum(v * v for v in spend_of.values()),
    )


def net_promoter_score(surveys: Iterable[Survey]) -> tuple[float | None, int]:
    surveys = list(surveys)
    promoters, detractors = nps_shares(surveys)
    answers = sum(s.question == "nps" for s in surveys)
    if not answers:
        return None, 0
    return 100 * (promoters - detractors) / answers, answers


def nps_shares(surveys: Iterable[Survey]) -> tuple[int, int]:
    """Promoters (9-10) and detractors (0-6) among the NPS answers."""
    scores = [s.score for s in surveys if s.question == "nps"]
    return sum(score >= 9 for score in scores), sum(score <= 6 for score in scores)


def dimension_means(surveys: Iterable[Survey]) -> dict[str, float | None]:
    scores: dict[str, list[int]] = {name: [] for name in SATISFACTION_WEIGHTS}
    for survey in surveys:
        if survey.question in scores:
            scores[survey.question].append(survey.score)
    return {name: sum(s) / len(s) if s else None for name, s in scores.items()}


def satisfaction_index(means: Mapping[str, float | None]) -> float | None:
    """0–100: the weighted mean of the answered dimensions, weights normalised to 1."""
    answered = {name: mean for name, mean in means.items() if mean is not None}
    if not answered:
        return None
    weight = sum(SATISFACTION_WEIGHTS[name] for name in answered)
    return 10 * sum(SATISFACTION_WEIGHTS[n] * m for n, m in answered.items()) / weight


def winback_rate(
    moments: Iterable[RuleMoment], sales: Mapping[str, Sequence[Sale]], window: timedelta
) -> Rate:
    """Of the customers with a win-back firing among `moments` (whose windows have all
    ended), the share who bought within `window` after their first one."""
    first: dict[str, datetime] = {}
    for moment in moments:
        first[moment.customer_id] = min(moment.at, first.get(moment.customer_id, moment.at))
    won = sum(
        any(s.is_purchase and at < s.at <= at + window for s in sales.get(c, ()))
        for c, at in first.items()
    )
    return Rate(won, len(first))


def sla_figures(items: Sequence[FeedbackItem], levels: ServiceLevels, end: datetime) -> Sla:
    """Items of one level against its targets, each deadline on the level's clock
    (`ServiceLevels.target`, as the live tasks' and the backtest's)."""

    def within(which: str, done: Callable[[FeedbackItem], datetime | None]) -> Rate:
        deadlines = {i.id: levels.target(i.level, which, i.at) for i in items}
        due = [i for i in items if done(i) is not None or deadlines[i.id] <= end]
        met = sum(1 for i in due if (at := done(i)) is not None and at <= deadlines[i.id])
        return Rate(met, len(due))

    def hours(done: Callable[[FeedbackItem], datetime | None]) -> float | None:
        spans = [(at - i.at).total_seconds() / 3600 for i in items if (at := done(i)) is not None]
        return median(spans) if spans else None

    response, resolution = attrgetter("first_response_at"), attrgetter("resolved_at")
    return Sla(
        items=len(items),
        response=within("first_response", response),
        resolution=within("resolution", resolution),
        median_response_hours=hours(response),
        median_resolution_hours=hours(resolution),
    )


def ledger_status(items: Iterable[LedgerItem], start: datetime, end: datetime) -> Ledger:
    items = list(items)
    open_items = [i for i in items if i.status == "open"]
    return Ledger(
        open=sum(i.due_at >= end for i in open_items),
        overdue=sum(i.due_at < end for i in open_items),
        closed_accepted=sum(
            i.accepted and i.closed_at is not None and i.closed_at >= start for i in items
        ),
    )


def yearly_retention(standing: Iterable[Standing]) -> Rate:
    """Of these customers active a year before the end, how many are active at the end."""
    a_year_ago = [s for s in standing if s.active_year_ago]
    return Rate(sum(s.active_end for s in a_year_ago), len(a_year_ago))


def lifetime_values(
    buyers: Sequence[Standing], horizon_years: int, base_rate: float
) -> tuple[float | None, float | None]:
    """Average historical and projected lifetime value of `buyers` (see the module);
    `base_rate` stands in for a group with nobody active a year ago (new customers)."""
    if not buyers:
        return None, None
    rate = yearly_retention(buyers).value
    rate = base_rate if rate is None else rate
    multiplier = sum(rate**year for year in range(1, horizon_years + 1))
    historical = sum(s.historical for s in buyers)
    yearly = sum(s.yearly for s in buyers)
    return historical / len(buyers), (historical + yearly * multiplier) / len(buyers)
