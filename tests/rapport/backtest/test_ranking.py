"""The ranking view on a small hand-made history, every figure worked out by hand.

Ranked on 1 March 2026 at 08:00 in Shanghai (00:00 UTC), with a 30-day horizon; a login
on 1 May ends the history, so that day's outcomes are known (1 March + 30 days is 31
March) and those of 20 April are not (20 May is past the end). Purchases are at 08:00
Shanghai, whole days before the moment, unless a line says otherwise.

customer | purchases (2025-26)        | on 1 March: gap, since, ratio | afterwards
a        | 1 Dec, 11 Dec              | 10 d, 80 d, 8.0 (at_risk)     | left
b        | 1 Nov, 1 Dec; 11 Mar 10:00 | 30 d, 90 d, 3.0               | bought again 11 Mar
c        | 1 Jan, 1 Feb; 25 Apr 10:00 | 31 d, 28 d, 0.9               | left (25 Apr > 31 Mar)
d        | 1 Jun, 1 Jul               | 30 d, 243 d, 8.1: dormant     | left (base rate only)
e        | 1 Jun                      | one purchase: no ratio        | in neither

On 1 March the K = 2 most overdue are a then b: precision at 2 = 1/2. Ranked from a, b,
c (2 of 3 left); the current repeat buyers are a, b, c, d (3 of 4 left). The signal
below (ratio >= 2, not dormant) flags a and b that step: precision 1/2.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from rapport.backtest.ranking import rank_day
from storage.facts import facts_of
from tests.factories import add_customer, add_events
from tests.rapport.backtest.test_backtest import rules

SHANGHAI = "Asia/Shanghai"
MARCH_1 = (date(2026, 3, 1), time(8), SHANGHAI)
HORIZON = timedelta(days=30)
OVERDUE_SIGNAL = """
rules:
  - id: overdue_signal
    description: Two usual gaps since the last purchase.
    trigger: schedule
    when:
      - lifecycle_stage: {ne: dormant}
      - purchase_overdue_ratio: {gte: 2}
    actions:
      - tag: {tag: churn_risk}
    reentry: {every: 30d}
    tags: [churn_signal]
"""


def _purchases(customer_id: str, *days: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{customer_id}-p{n}",
            "type": "purchase",
            "occurred_at": datetime.fromisoformat(day if "T" in day else f"{day}T08:00+08:00"),
            "amount": 100.0,
        }
        for n, day in enumerate(days)
    ]


def build_history(engine: Engine) -> None:
    """The customers of the module docstring."""
    history = {
        "a": _purchases("a", "2025-12-01", "2025-12-11"),
        "b": _purchases("b", "2025-11-01", "2025-12-01", "2026-03-11T10:00+08:00"),
        "c": _purchases("c", "2026-01-01", "2026-02-01", "2026-04-25T10:00+08:00"),
        "d": _purchases("d", "2025-06-01", "2025-07-01"),
        "e": [
            *_purchases("e", "2025-06-01"),
            {"id": "e-login", "type": "login", "occurred_at": datetime(2026, 5, 1, tzinfo=UTC)},
        ],
    }
    for customer_id, events in history.items():
        add_customer(engine, customer_id, created_at=datetime(2024, 1, 1, tzinfo=UTC))
        add_events(engine, customer_id, *events)


def test_the_most_overdue_repeat_buyers_and_what_they_did_next(
    engine: Engine, tmp_path: Path
) -> None:
    build_history(engine)
    signal = rules(tmp_path, OVERDUE_SIGNAL)

    found = rank_day(engine, signal, MARCH_1, 2, HORIZON)

    assert found["at"] == "2026-03-01T08:00:00+08:00" and found["outcomes_known"]
    assert [
        (c["customer_id"], c["usual_gap_days"], c["days_since_last_purchase"], c["overdue_ratio"])
        for c in found["customers"]
    ] == [("a", 10.0, 80, 8.0), ("b", 30.0, 90, 3.0)]
    a, b = found["customers"]
    assert (a["tier"], a["last_purchase_on"], a["outcome"]) == ("base", "2025-12-11", "left")
    assert (b["outcome"], b["bought_again_on"], b["days_after"]) == (
        "bought_again",
        "2026-03-11",
        10,
    )
    assert found["precision_at_k"] == {
        "customers": 2,
        "left": 1,
        "bought_again": 1,
        "pending": 0,
        "share": 0.5,
    }
    assert found["ranked"] == {
        "customers": 3,
        "left": 2,
        "bought_again": 1,
        "pending": 0,
        "share": 2 / 3,
        "dormant_left_out": 1,
    }
    assert (found["base_rate"]["customers"], found["base_rate"]["share"]) == (4, 0.75)
    signal_figures = found["churn"]["overdue_signal"]
    assert (signal_figures["flagged"], signal_figures["flagged_left"]) == (2, 1)
    assert signal_figures["precision"] == 0.5


def test_the_ratio_is_the_engine_fact_of_the_same_customer_and_moment(
    engine: Engine, tmp_path: Path
) -> None:
    """c's 28 days over a 31-day gap is 0.9 in both: one definition, not two."""
    build_history(engine)
    directory, ruleset = rules(tmp_path, OVERDUE_SIGNAL)

    found = rank_day(engine, (directory, ruleset), MARCH_1, 3, HORIZON)

    moment = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.connect() as connection:
        for shown in found["customers"]:
            facts = facts_of(connection, moment, ruleset.parameters, shown["customer_id"])
            assert facts is not None
            assert shown["overdue_ratio"] == facts["purchase_overdue_ratio"]
            assert shown["usual_gap_days"] == facts["usual_purchase_gap_days"]
    assert [c["customer_id"] for c in found["customers"]] == ["a", "b", "c"]
    assert found["customers"][2]["overdue_ratio"] == 0.9
    assert found["customers"][2]["outcome"] == "left"  # 25 April is past the horizon


def test_a_day_the_history_cannot_judge_yet_shows_returns_and_no_shares(
    engine: Engine, tmp_path: Path
) -> None:
    """On 20 April (08:00) a is 130 days past a 10-day gap (13.0), c 78 past 31 (2.52), b
    39 past a 65.04-day gap (0.6). c bought again on 25 April, within the history; a and
    b did not, but the history ends before 20 May: pending, and no share is given
    (counted over the returns alone it would read zero)."""
    build_history(engine)
    signal = rules(tmp_path, OVERDUE_SIGNAL)

    found = rank_day(engine, signal, (date(2026, 4, 20), time(8), SHANGHAI), 3, HORIZON)

    assert not found["outcomes_known"] and found["outcomes_known_until"] == "2026-04-01"
    assert [
        (c["customer_id"], c["overdue_ratio"], c["outcome"], c["days_after"])
        for c in found["customers"]
    ] == [("a", 13.0, "pending", None), ("c", 2.52, "bought_again", 5), ("b", 0.6, "pending", None)]
    assert found["precision_at_k"]["share"] is None and found["base_rate"]["share"] is None
    assert found["churn"]["overdue_signal"]["pending"] == 2
