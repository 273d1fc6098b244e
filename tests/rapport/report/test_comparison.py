"""Treated against control with its uncertainty: the intervals against published values
and direct computations, the sample warning, the incremental return on spend."""

from __future__ import annotations

from dataclasses import replace
from statistics import mean, pvariance, variance

import pytest

from rapport.report.comparison import (
    MIN_SAMPLE,
    incremental_return,
    mean_difference,
    nps_difference,
    rate_difference,
    wilson,
)
from rapport.report.measures import GroupMeasures, Ledger, Rate


def test_wilson_matches_newcombes_table() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 → 0.2553 to 0.3662
    low, high = wilson(Rate(81, 263))
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_rate_difference_matches_newcombes_method_10() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 − 48/80 → 0.0524 to
    # 0.3339 by the hybrid score method (10)
    found = rate_difference(Rate(56, 70), Rate(48, 80))
    assert found is not None
    assert found.value == pytest.approx(0.2)
    assert (round(found.low, 4), round(found.high, 4)) == (0.0524, 0.3339)
    assert found.clear  # the interval excludes 0
    assert found.few == f"few: treated 70, control 80 (under {MIN_SAMPLE})"


def test_a_small_group_is_named() -> None:
    found = rate_difference(Rate(850, 1000), Rate(60, 73))
    assert found is not None and found.few == f"few: control 73 (under {MIN_SAMPLE})"
    assert not found.clear  # 85% against 82%: 73 customers cannot tell them apart
    assert rate_difference(Rate(8500, 10000), Rate(6000, 7300)) is not None
    assert rate_difference(Rate(1, 2), Rate(0, 0)) is None


def moments(values: list[float]) -> tuple[int, float, float]:
    return len(values), sum(values), sum(v * v for v in values)


def test_mean_difference_is_welchs_normal_interval() -> None:
    treated = [120.0, 0.0, 35.5, 800.0, 0.0, 42.0] * 30
    control = [0.0, 310.0, 15.0, 0.0] * 30
    found = mean_difference(moments(treated), moments(control))
    assert found is not None
    spread = (variance(treated) / len(treated) + variance(control) / len(control)) ** 0.5
    assert found.value == pytest.approx(mean(treated) - mean(control))
    assert found.high - found.value == pytest.approx(1.959964 * spread, rel=1e-6)
    assert mean_difference(moments([1.0]), moments(control)) is None


def group(**figures: object) -> GroupMeasures:
    empty = Rate(0, 0)
    base = GroupMeasures(
        customers=0,
        retention=empty,
        winback=empty,
        nps=None,
        nps_answers=0,
        promoters=0,
        detractors=0,
        satisfaction=None,
        dimensions={},
        sla={},
        ledger=Ledger(0, 0, 0),
        revenue=0.0,
        clv=None,
        clv_projected=None,
        spend=0.0,
        contacted_revenue=0.0,
        revenue_squares=0.0,
        spend_squares=0.0,
    )
    return replace(base, **figures)  # type: ignore[arg-type]


def nps_group(scores: list[int]) -> GroupMeasures:
    promoters, detractors = sum(s >= 9 for s in scores), sum(s <= 6 for s in scores)
    nps = 100 * (promoters - detractors) / len(scores)
    return group(nps=nps, nps_answers=len(scores), promoters=promoters, detractors=detractors)


def test_nps_difference_has_the_variance_of_its_answers() -> None:
    """Each answer counts +100 (promoter), 0 or −100 (detractor); NPS is their mean."""
    treated_scores = [10, 9, 8, 7, 3, 10, 6, 9, 9, 2] * 20
    control_scores = [10, 5, 8, 6, 9, 1, 7] * 20

    def points(scores: list[int]) -> list[int]:
        return [100 if s >= 9 else -100 if s <= 6 else 0 for s in scores]

    found = nps_difference(nps_group(treated_scores), nps_group(control_scores))
    assert found is not None
    expected = sum(
        pvariance(points(scores)) / len(scores) for scores in (treated_scores, control_scores)
    )
    assert found.value == pytest.approx(mean(points(treated_scores)) - mean(points(control_scores)))
    assert found.high - found.value == pytest.approx(1.959964 * expected**0.5, rel=1e-6)


def test_incremental_return_is_what_the_spend_brought() -> None:
    """Treated customers made 50 more each than control's revenue per customer says
    they would have; 1,000 of them, on a spend of 10,000: 5:1."""
    treated = [150.0, 50.0] * 500  # mean 100
    control = [75.0, 25.0] * 100  # mean 50
    found = incremental_return(
        group(
            customers=1000,
            revenue=sum(treated),
            revenue_squares=sum(v * v for v in treated),
            spend=10_000.0,
        ),
        group(customers=200, revenue=sum(control), revenue_squares=sum(v * v for v in control)),
    )
    assert found is not None and found.ratio == pytest.approx(5.0)
    assert found.revenue.value == pytest.approx(50_000)
    assert found.low is not None and found.high is not None
    assert found.low < 5.0 < found.high and found.low > 0  # clearly positive here
