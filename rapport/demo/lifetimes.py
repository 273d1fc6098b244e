"""The buy-till-you-die process the generated customers follow, so the churn signals have
a ground truth to be judged against.

The process is Pareto/NBD (Schmittlein, Morrison and Colombo, 1987). A customer enters it
with a purchase; while alive they buy at random moments (a Poisson process) at a rate `λ`
(purchases a day) drawn from Gamma(r, α), and they stay alive for an exponential time whose
rate `μ` (a day) is drawn from Gamma(s, β), independently of `λ`. Pareto/NBD rather than
BG/NBD: BG/NBD drops customers out after a purchase, so a customer who buys twice as often
leaves twice as soon, and asking the sample for more events per customer (which raises
every rate) would make more customers leave. Here lifetimes are calendar days, whatever
the rates.

`r`, the mean of `λ` (`r / α`) and the mean of `μ` (`s / β`) depend on the spending tier
(`PURCHASE_RATE`, `DROPOUT_RATE`): big spenders buy often and rarely leave, small ones buy
seldom and leave sooner; enterprise customers leave at `ENTERPRISE_DROPOUT` times their
tier's rate.

Before dropping out a customer fades: over the `fade` days before the dropout (drawn from
`FADE_DAYS`), logins fall linearly from their usual rate to `FADED` of it; after the
dropout the occasional login still comes, at `AFTER_DROPOUT` of the usual rate. Purchases
keep their rate to the end, as the model has it, but for some (`BASKET_FADERS`) each order
is smaller. The sample adds the rest: feedback and surveys while alive (a leaver often
complains and scores low in the fade), the company's own contacts throughout.

Time is days since the window starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import log
from random import Random

# Per tier (big, mid, small yearly spend): Gamma shape and mean of the purchase rate λ
# (a day, at 20 events per customer; rates scale with the events asked for) and of the
# dropout rate μ (a day).
PURCHASE_RATE = ((3.0, 1 / 15), (2.5, 1 / 37), (2.0, 1 / 67))
DROPOUT_RATE = ((1.0, 1 / 2_000), (1.0, 1 / 1_000), (1.0, 1 / 700))
ENTERPRISE_DROPOUT = 0.6
FADE_DAYS = (21.0, 75.0)
FADED = 0.05
AFTER_DROPOUT = 0.03
# A share of the leavers also buy less each time over the last BASKET_FADE_DAYS, down to
# BASKET_FADED of their usual basket at the dropout.
BASKET_FADERS = 0.5
BASKET_FADE_DAYS = 120.0
BASKET_FADED = 0.3


@dataclass(frozen=True, slots=True)
class Life:
    """One customer's draw of the process, in days since the window starts."""

    purchase_rate: float  # λ, purchases a day
    dropout_rate: float  # μ, a day
    start: float  # the first purchase the window shows: the arrival, for a new customer
    dropout: float  # past the window's end for a customer still alive at the end
    fade: float  # days before `dropout` over which logins fall off
    basket_from: float  # orders shrink from then to the dropout (infinite: they never do)

    def fading(self, at: float) -> float:
        """The share of the usual login rate at `at`: 1 until the fade starts, falling to
        `FADED` at the dropout."""
        before = self.dropout - at
        return 1.0 if before >= self.fade else FADED + (1 - FADED) * before / self.fade

    def basket(self, at: float) -> float:
        """The share of the usual order value at `at`."""
        if at <= self.basket_from:
            return 1.0
        return BASKET_FADED + (1 - BASKET_FADED) * (self.dropout - at) / BASKET_FADE_DAYS


def draw_life(rng: Random, tier: int, enterprise: bool, start: float, scale: float) -> Life:
    """λ and μ for a customer of `tier` (0 big, 1 mid, 2 small); `scale` multiplies λ."""
    shape, mean = PURCHASE_RATE[tier]
    purchase_rate = rng.gammavariate(shape, mean / shape) * scale
    shape, mean = DROPOUT_RATE[tier]
    dropout_rate = rng.gammavariate(shape, mean / shape)
    if enterprise:
        dropout_rate *= ENTERPRISE_DROPOUT
    dropout = start + rng.expovariate(dropout_rate)
    fade = rng.uniform(*FADE_DAYS)
    basket_from = dropout - BASKET_FADE_DAYS if rng.random() < BASKET_FADERS else float("inf")
    return Life(purchase_rate, dropout_rate, start, dropout, fade, basket_from)


def arrivals(rng: Random, rate: float, begin: float, until: float) -> list[float]:
    """The moments of a Poisson process of `rate` a day in `(begin, until)`, in order."""
    found: list[float] = []
    if rate <= 0:
        return found
    random_, moment = rng.random, begin
    while True:
        moment -= log(1.0 - random_()) / rate
        if moment >= until:
            return found
        found.append(moment)


def login_times(rng: Random, life: Life, rate: float, until: float) -> list[float]:
    """Logins at `rate` a day while alive, thinned as the customer fades, then at
    `AFTER_DROPOUT` of it until `until`."""
    end_alive = min(life.dropout, until)
    fade_from, random_ = life.dropout - life.fade, rng.random
    found = [
        moment
        for moment in arrivals(rng, rate, life.start, end_alive)
        if moment < fade_from or random_() < life.fading(moment)
    ]
    found += arrivals(rng, rate * AFTER_DROPOUT, life.dropout, until)
    return found
