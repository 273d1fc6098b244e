"""Treated against control with the uncertainty the samples leave: a difference is shown
with its 95% confidence interval, and a group too small to say much is named.

A control group of a few percent is small: 73 customers hold out of 3,000 in the demo,
and a retention gap of 3 points between 2,927 and 73 customers is noise. Operations
read the interval (does it exclude zero?) and the sample warning before the point value.

Intervals: Newcombe's hybrid score interval for a difference of two rates (it stays
inside [-1, 1] and behaves for rates near 0 or 1, where the textbook Wald interval
fails); the normal interval for a difference of means (Welch's standard error) and of
NPS (its variance as a difference of two shares of one multinomial). Hand-written, a
dozen lines: scipy or statsmodels would bring numpy and scipy, which nothing else here
needs, for two formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from statistics import NormalDist

from rapport.report.measures import GroupMeasures, Rate
from rapport.services.staff_language import _, format_number

CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)  # 1.96
MIN_SAMPLE = 100
"""Fewer customers (or answers) than this in either group, and a comparison is flagged:
with 100 per group a 95% interval on a rate near 50% is still about ±14 points."""


@dataclass(frozen=True)
class Difference:
    """treated − control, with its 95% interval; `few` names a group under MIN_SAMPLE."""

    value: float
    low: float
    high: float
    few: str | None = None

    @property
    def clear(self) -> bool:
        """The interval excludes zero: the data show a difference either way."""
        return self.low > 0 or self.high < 0


def wilson(rate: Rate) -> tuple[float, float]:
    """Wilson's score interval of one rate (the whole must not be 0)."""
    n, p = rate.whole, rate.part / rate.whole
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def rate_difference(treated: Rate, control: Rate) -> Difference | None:
    """Newcombe's hybrid score interval (method 10) of treated − control."""
    if not treated.whole or not control.whole:
        return None
    p1, p2 = treated.part / treated.whole, control.part / control.whole
    (l1, u1), (l2, u2) = wilson(treated), wilson(control)
    low = p1 - p2 - sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = p1 - p2 + sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(p1 - p2, low, high, few(treated.whole, control.whole))


def mean_difference(
    treated: tuple[int, float, float], control: tuple[int, float, float]
) -> Difference | None:
    """Of two means given as (count, sum, sum of squares): Welch's normal interval."""
    (n1, s1, q1), (n2, s2, q2) = treated, control
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = s1 / n1, s2 / n2
    v1 = max(q1 - n1 * m1 * m1, 0.0) / (n1 - 1)
    v2 = max(q2 - n2 * m2 * m2, 0.0) / (n2 - 1)
    half = Z * sqrt(v1 / n1 + v2 / n2)
    return Difference(m1 - m2, m1 - m2 - half, m1 - m2 + half, few(n1, n2))


def nps_difference(treated: GroupMeasures, control: GroupMeasures) -> Difference | None:
    """NPS is 100 × (promoters − detractors) / answers; its variance per group is
    100² × (p₊ + p₋ − (p₊ − p₋)²) / n."""
    groups = []
    for group in (treated, control):
        n = group.nps_answers
        if not n or group.nps is None:
            return None
        promoters, detractors = group.promoters / n, group.detractors / n
        spread = promoters + detractors - (promoters - detractors) ** 2
        groups.append((group.nps, 100 * 100 * spread / n))
    (nps1, var1), (nps2, var2) = groups
    half = Z * sqrt(var1 + var2)
    value = nps1 - nps2
    return Difference(
        value, value - half, value + half, few(treated.nps_answers, control.nps_answers)
    )


def few(treated: int, control: int) -> str | None:
    """Which group is under MIN_SAMPLE, in words, or None."""
    groups = ((_("treated"), treated), (_("control"), control))
    small = [f"{name} {format_number(n)}" for name, n in groups if n < MIN_SAMPLE]
    if not small:
        return None
    return _("few: {groups} (under {minimum})").format(
        groups=_(", ").join(small), minimum=MIN_SAMPLE
    )


@dataclass(frozen=True)
class IncrementalReturn:
    """What the relationship spend brought: the revenue treated customers made beyond
    what the control group's revenue per customer says they would have made anyway,
    over the spend. The playbook judges it: 3:1 good, 1:1 average."""

    revenue: Difference  # incremental revenue, in currency, with its interval
    spend: float
    ratio: float | None  # revenue.value / spend
    low: float | None
    high: float | None


def incremental_return(treated: GroupMeasures, control: GroupMeasures) -> IncrementalReturn | None:
    per_customer = mean_difference(treated.revenue_moments, control.revenue_moments)
    if per_customer is None:
        return None
    n = treated.customers
    revenue = Difference(
        per_customer.value * n, per_customer.low * n, per_customer.high * n, per_customer.few
    )
    spend = treated.spend
    if not spend:
        return IncrementalReturn(revenue, spend, None, None, None)
    return IncrementalReturn(
        revenue, spend, revenue.value / spend, revenue.low / spend, revenue.high / spend
    )
