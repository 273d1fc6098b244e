"""The customer fact vocabulary: every fact a rule may test, declared once.

Each `Fact` carries its type, unit and a one-line description; rule validation, the
JSON Schema and the operations reference are generated from `FACTS`. `derive_facts`
turns one customer's SQL aggregates (see `storage/facts.py`) into a typed snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from engine.care_calendar import CareDay


class FactType(StrEnum):
    """Value types a fact can have; operators in rules are chosen per type."""

    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"


@dataclass(frozen=True)
class Fact:
    """One named value in a customer snapshot."""

    name: str
    type: FactType
    unit: str
    description: str
    nullable: bool = False
    choices: tuple[str, ...] = ()


TIERS = ("high", "mid", "base")
STAGES = ("prospect", "new", "established", "at_risk", "dormant")
SEGMENTS = ("consumer", "enterprise")
# The channels Rapport sends messages on (the online ones), each with its consent;
# declared only here, for facts, rule files, guards and delivery alike.
MESSAGE_CHANNELS = ("email", "sms", "wechat", "app")
PERSONAL_CHANNELS = ("phone", "visit")
CONTACT_CHANNELS = (*MESSAGE_CHANNELS, *PERSONAL_CHANNELS)
FEEDBACK_LEVELS = ("general", "complex", "major")

_I, _N, _S, _B, _D = (
    FactType.INTEGER,
    FactType.NUMBER,
    FactType.STRING,
    FactType.BOOLEAN,
    FactType.DATE,
)

FACTS: tuple[Fact, ...] = (
    Fact("customer_id", _S, "id", "The customer's id from the source system."),
    Fact("segment", _S, "", "Customer segment.", choices=SEGMENTS),
    Fact("locale", _S, "", "Preferred language for messages, e.g. zh-CN or en."),
    Fact("has_account_manager", _B, "", "An account manager is assigned."),
    Fact("consent_email", _B, "", "The customer agreed to email."),
    Fact("consent_sms", _B, "", "The customer agreed to SMS."),
    Fact("consent_wechat", _B, "", "The customer agreed to WeChat messages."),
    Fact("consent_app", _B, "", "The customer agreed to app push."),
    Fact("has_online_consent", _B, "", "At least one of email, SMS, WeChat or app is allowed."),
    Fact("spend_12m", _N, "currency", "Purchases minus refunds over the trailing 365 days."),
    Fact("orders_12m", _I, "orders", "Purchases over the trailing 365 days."),
    Fact("tier", _S, "", "Tier by trailing-12-month spend against the thresholds.", choices=TIERS),
    Fact("lifetime_spend", _N, "currency", "All purchases minus all refunds up to as_of."),
    Fact("lifetime_orders", _I, "orders", "All purchases up to as_of."),
    Fact("lifecycle_stage", _S, "", "Lifecycle stage (definitions in the README).", choices=STAGES),
    Fact("first_purchase_on", _D, "date", "Local date of the first purchase.", nullable=True),
    Fact("last_purchase_on", _D, "date", "Local date of the latest purchase.", nullable=True),
    Fact(
        "days_since_first_purchase",
        _I,
        "days",
        "Whole days since the first purchase.",
        nullable=True,
    ),
    Fact(
        "days_since_last_purchase",
        _I,
        "days",
        "Whole days since the latest purchase.",
        nullable=True,
    ),
    Fact(
        "usual_purchase_gap_days",
        _N,
        "days",
        "Mean gap between the customer's purchases (needs two purchases).",
        nullable=True,
    ),
    Fact(
        "purchase_overdue_ratio",
        _N,
        "ratio",
        "Days since last purchase divided by the usual gap; above 1 means overdue.",
        nullable=True,
    ),
    Fact("purchases_recent", _I, "orders", "Purchases in the recent window."),
    Fact("purchases_previous", _I, "orders", "Purchases in the window before the recent one."),
    Fact(
        "avg_order_value_recent",
        _N,
        "currency",
        "Mean purchase amount in the recent window.",
        nullable=True,
    ),
    Fact(
        "avg_order_value_previous",
        _N,
        "currency",
        "Mean purchase amount in the previous window.",
        nullable=True,
    ),
    Fact("logins_30d", _I, "logins", "Logins in the last 30 days."),
    Fact("logins_prev_30d", _I, "logins", "Logins in the 30 days before those."),
    *(
        Fact(
            f"days_since_contact_{channel}",
            _I,
            "days",
            f"Calendar days (customer's timezone) since the last contact by {channel}.",
            nullable=True,
        )
        for channel in CONTACT_CHANNELS
    ),
    Fact(
        "days_since_online_contact",
        _I,
        "days",
        "Calendar days since the last email, SMS, WeChat or app contact.",
        nullable=True,
    ),
    Fact(
        "days_since_personal_contact",
        _I,
        "days",
        "Calendar days since the last phone call or visit.",
        nullable=True,
    ),
    Fact(
        "days_since_any_contact",
        _I,
        "days",
        "Calendar days since the last contact of any kind.",
        nullable=True,
    ),
    *(
        Fact(
            f"open_feedback_{level}",
            _I,
            "items",
            f"Feedback items of level {level} not yet resolved.",
        )
        for level in FEEDBACK_LEVELS
    ),
    Fact("open_complaints", _I, "items", "Unresolved feedback items of category complaint."),
    Fact("complaints_recent", _I, "items", "Complaints received in the recent window."),
    Fact(
        "days_since_complaint", _I, "days", "Whole days since the latest complaint.", nullable=True
    ),
    Fact(
        "last_survey_score",
        _I,
        "score 0-10",
        "Score of the latest NPS answer (a survey without category, or `nps`).",
        nullable=True,
    ),
    Fact("days_since_survey", _I, "days", "Whole days since the latest NPS answer.", nullable=True),
    Fact("is_birthday", _B, "", "as_of falls on the customer's birthday, in their timezone."),
    Fact("holiday", _S, "", "Name of the calendar holiday as_of falls on, locally.", nullable=True),
    Fact(
        "is_first_purchase_anniversary",
        _B,
        "",
        "as_of falls on an anniversary of the first purchase, in the customer's timezone.",
    ),
    Fact(
        "years_since_first_purchase",
        _I,
        "years",
        "Whole years since the first purchase.",
        nullable=True,
    ),
)

FACTS_BY_NAME: dict[str, Fact] = {fact.name: fact for fact in FACTS}

# Facts a rule names with parameters, e.g. `product_purchases: {product: grinder,
# within: 90d, gte: 2}`. Each distinct use is a fact of its own in the snapshot, keyed
# `product_purchases[grinder,90d]` (`ProductWindow.fact`), computed for the windows the
# rules in force name (`FactParameters.product_windows`).
PRODUCT_PURCHASES = Fact(
    "product_purchases",
    _I,
    "orders",
    "Purchases of one product (its id in the purchase events) within a window before "
    "as_of: `{product: coffee-beans, within: 180d}` with the operators beside them.",
)
PARAMETERISED_FACTS: dict[str, Fact] = {PRODUCT_PURCHASES.name: PRODUCT_PURCHASES}
FACT_PARAMETERS: dict[str, str] = {
    "product": "the product id, as in the purchase events and the affinity table",
    "within": "the window before as_of, in whole days or weeks (30d, 13w)",
}
_PRODUCT_FACT = re.compile(r"^product_purchases\[(?P<product>[^,\[\]]+),(?P<days>[0-9]+)d\]$")


@dataclass(frozen=True, order=True)
class ProductWindow:
    """One product and window a rule counts purchases of (`product_purchases`)."""

    product: str
    days: int

    @property
    def fact(self) -> str:
        """The snapshot key of the count, as rules, explain and rule tests name it."""
        return f"{PRODUCT_PURCHASES.name}[{self.product},{self.days}d]"

    @classmethod
    def of_fact(cls, name: str) -> ProductWindow | None:
        match = _PRODUCT_FACT.match(name)
        return cls(match["product"], int(match["days"])) if match else None


def fact_named(name: str) -> Fact | None:
    """The declared fact a snapshot key stands for: a plain fact, or a parameterised
    fact's instance such as `product_purchases[grinder,90d]`."""
    return FACTS_BY_NAME.get(name) or (PRODUCT_PURCHASES if ProductWindow.of_fact(name) else None)


@dataclass(frozen=True)
class FactParameters:
    """The thresholds facts are computed with; operations set them in `rules/`."""

    high_tier_spend: float = 100_000.0
    mid_tier_spend: float = 10_000.0
    recent_window_days: int = 90
    new_customer_days: int = 90
    dormant_days: int = 180
    dormant_gap_ratio: float = 3.0
    at_risk_gap_ratio: float = 2.0
    at_risk_drop_ratio: float = 0.5
    # A drop compares like with like: one old purchase is not a frequency to drop from.
    at_risk_drop_min_purchases: int = 2
    holidays: tuple[CareDay, ...] = ()
    product_windows: tuple[ProductWindow, ...] = ()  # the ones the rules name

    def __post_init__(self) -> None:
        if not 0 <= self.mid_tier_spend <= self.high_tier_spend:
            raise ValueError("tier thresholds need 0 <= mid_tier_spend <= high_tier_spend")
        if min(self.recent_window_days, self.new_customer_days, self.dormant_days) <= 0:
            raise ValueError("windows must be positive numbers of days")


# FactParameters that are not numbers in `parameters:`: their own section, or the rules.
DERIVED_PARAMETERS = ("holidays", "product_windows")


@dataclass(frozen=True)
class CustomerAggregates:
    """One customer's row from the set-wise fact query: profile plus event aggregates."""

    customer_id: str
    segment: str
    locale: str
    timezone: str
    birthday: date | None
    account_manager: str | None
    consents: dict[str, bool]
    spend_12m: float
    orders_12m: int
    lifetime_spend: float
    lifetime_orders: int
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    purchases_recent: int
    spend_recent: float
    purchases_previous: int
    spend_previous: float
    logins_30d: int
    logins_prev_30d: int
    last_contact_at: dict[str, datetime | None]
    open_feedback: dict[str, int]
    open_complaints: int
    complaints_recent: int
    last_complaint_at: datetime | None
    last_survey_score: int | None
    last_survey_at: datetime | None
    product_purchases: dict[ProductWindow, int] = field(default_factory=dict)


def tier_for(spend_12m: float, params: FactParameters) -> str:
    """high above the high threshold, mid from the mid threshold, base below it."""
    if spend_12m > params.high_tier_spend:
        return "high"
    if spend_12m >= params.mid_tier_spend:
        return "mid"
    return "base"


def lifecycle_stage(
    *,
    days_since_first: int | None,
    days_since_last: int | None,
    usual_gap: float | None,
    purchases_recent: int,
    purchases_previous: int,
    open_complaints: int,
    params: FactParameters,
) -> str:
    """The stage, checked in this order: prospect, dormant, at_risk, new, established."""
    if days_since_first is None or days_since_last is None:
        return "prospect"
    dormant_after = max(float(params.dormant_days), params.dormant_gap_ratio * (usual_gap or 0))
    if days_since_last > dormant_after:
        return "dormant"
    overdue = usual_gap is not None and days_since_last > params.at_risk_gap_ratio * usual_gap
    dropped = purchases_previous >= max(1, params.at_risk_drop_min_purchases) and (
        purchases_recent < params.at_risk_drop_ratio * purchases_previous
    )
    if open_complaints > 0 or overdue or dropped:
        return "at_risk"
    if days_since_first <= params.new_customer_days:
        return "new"
    return "established"


def whole_days(as_of: datetime, then: datetime | None) -> int | None:
    """Whole days elapsed from `then` to `as_of` (None when `then` is unknown)."""
    return None if then is None else (as_of - then) // timedelta(days=1)


def same_day_of_year(day: date, today: date) -> bool:
    """`day`'s month and day fall on `today`; 29 February falls on 28 February otherwise."""
    month, dom = day.month, day.day
    if (month, dom) == (2, 29) and not _is_leap(today.year):
        dom = 28
    return (today.month, today.day) == (month, dom)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _mean(total: float, count: int) -> float | None:
    """Rounded to cents. The sum is rounded to cents first: databases add floats in
    different orders, and the last bit of difference must not tip a half cent."""
    return round(round(total, 2) / count, 2) if count else None


def _min_days(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return min(known) if known else None


def derive_facts(
    agg: CustomerAggregates, as_of: datetime, params: FactParameters
) -> dict[str, Any]:
    """The snapshot of one customer as of `as_of`, keyed by the names in `FACTS`."""
    zone = ZoneInfo(agg.timezone)
    today = as_of.astimezone(zone).date()
    first_local = agg.first_purchase_at.astimezone(zone).date() if agg.first_purchase_at else None
    last_local = agg.last_purchase_at.astimezone(zone).date() if agg.last_purchase_at else None
    days_first = whole_days(as_of, agg.first_purchase_at)
    days_last = whole_days(as_of, agg.last_purchase_at)
    usual_gap = None
    if agg.lifetime_orders >= 2 and agg.first_purchase_at and agg.last_purchase_at:
        span = (agg.last_purchase_at - agg.first_purchase_at) / timedelta(days=1)
        usual_gap = round(span / (agg.lifetime_orders - 1), 2) or None
    spend_12m = round(agg.spend_12m, 2)
    facts: dict[str, Any] = {
        "customer_id": agg.customer_id,
        "segment": agg.segment,
        "locale": agg.locale,
        "has_account_manager": bool(agg.account_manager),
        **{f"consent_{channel}": agg.consents[channel] for channel in MESSAGE_CHANNELS},
        "has_online_consent": any(agg.consents.values()),
        "spend_12m": spend_12m,
        "orders_12m": agg.orders_12m,
        "tier": tier_for(spend_12m, params),
        "lifetime_spend": round(agg.lifetime_spend, 2),
        "lifetime_orders": agg.lifetime_orders,
        "lifecycle_stage": lifecycle_stage(
            days_since_first=days_first,
            days_since_last=days_last,
            usual_gap=usual_gap,
            purchases_recent=agg.purchases_recent,
            purchases_previous=agg.purchases_previous,
            open_complaints=agg.open_complaints,
            params=params,
        ),
        "first_purchase_on": first_local.isoformat() if first_local else None,
        "last_purchase_on": last_local.isoformat() if last_local else None,
        "days_since_first_purchase": days_first,
        "days_since_last_purchase": days_last,
        "usual_purchase_gap_days": usual_gap,
        "purchase_overdue_ratio": overdue_ratio(days_last, usual_gap),
        "purchases_recent": agg.purchases_recent,
        "purchases_previous": agg.purchases_previous,
        "avg_order_value_recent": _mean(agg.spend_recent, agg.purchases_recent),
        "avg_order_value_previous": _mean(agg.spend_previous, agg.purchases_previous),
        "logins_30d": agg.logins_30d,
        "logins_prev_30d": agg.logins_prev_30d,
        **contact_facts(agg.last_contact_at, today, zone),
        **{f"open_feedback_{level}": agg.open_feedback[level] for level in FEEDBACK_LEVELS},
        "open_complaints": agg.open_complaints,
        "complaints_recent": agg.complaints_recent,
        "days_since_complaint": whole_days(as_of, agg.last_complaint_at),
        "last_survey_score": agg.last_survey_score,
        "days_since_survey": whole_days(as_of, agg.last_survey_at),
        **calendar_facts(agg.birthday, first_local, today, holiday_on(today, params)),
        **{w.fact: agg.product_purchases.get(w, 0) for w in params.product_windows},
    }
    return facts


def contact_facts(
    last_contact_at: dict[str, datetime | None], today: date, zone: ZoneInfo
) -> dict[str, int | None]:
    """The cadence counters: local calendar days, in the customer's zone, from each
    channel's latest contact to `today`. Whole elapsed days would call a touch sent at
    10:00 "6 days old" at next week's 08:00 run, and a weekly cadence would drift to
    every 8 days (fortnightly to 15, monthly to 31)."""
    days = {
        channel: None if at is None else (today - at.astimezone(zone).date()).days
        for channel, at in last_contact_at.items()
    }
    return {
        **{f"days_since_contact_{channel}": days[channel] for channel in CONTACT_CHANNELS},
        "days_since_online_contact": _min_days([days[ch] for ch in MESSAGE_CHANNELS]),
        "days_since_personal_contact": _min_days([days[ch] for ch in PERSONAL_CHANNELS]),
        "days_since_any_contact": _min_days(list(days.values())),
    }


def overdue_ratio(days_last: int | None, usual_gap: float | None) -> float | None:
    """Days since the last purchase in usual purchase gaps."""
    return round(days_last / usual_gap, 2) if usual_gap and days_last is not None else None


def holiday_on(today: date, params: FactParameters) -> str | None:
    return next((h.name for h in params.holidays if h.falls_on(today)), None)


def calendar_facts(
    birthday: date | None, first_purchase: date | None, today: date, holiday: str | None
) -> dict[str, Any]:
    """The facts that follow the customer's local date alone (`holiday`: today's name)."""
    return {
        "is_birthday": birthday is not None and same_day_of_year(birthday, today),
        "holiday": holiday,
        "is_first_purchase_anniversary": (
            first_purchase is not None
            and today.year > first_purchase.year
            and same_day_of_year(first_purchase, today)
        ),
        "years_since_first_purchase": whole_years(first_purchase, today),
    }


def whole_years(start: date | None, today: date) -> int | None:
    if start is None:
        return None
    years = today.year - start.year
    return years - 1 if (today.month, today.day) < (start.month, start.day) else years
