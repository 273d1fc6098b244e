"""Customer facts as of a time, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.facts import FACTS, FactParameters, FactType
from storage.facts import iter_customer_facts
from tests.factories import NOW, add_customer, add_events

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def facts_of(engine: Engine, customer_id: str, as_of: datetime = NOW, **params: Any) -> dict:
    with engine.connect() as connection:
        (facts,) = iter_customer_facts(
            connection, as_of, FactParameters(**params), customer_ids=[customer_id]
        )
    return facts


def purchase(at: datetime, amount: float, **extra: Any) -> dict[str, Any]:
    return {"type": "purchase", "occurred_at": at, "amount": amount, **extra}


def test_an_event_one_second_after_as_of_is_invisible(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(
        engine, "c1", purchase(NOW - 10 * DAY, 100.0), purchase(NOW + timedelta(seconds=1), 5e5)
    )
    facts = facts_of(engine, "c1")
    assert facts["lifetime_orders"] == 1
    assert facts["spend_12m"] == 100.0
    assert facts["days_since_last_purchase"] == 10
    later = facts_of(engine, "c1", NOW + timedelta(seconds=1))
    assert later["lifetime_orders"] == 2
    assert later["tier"] == "high"


def test_an_event_exactly_at_as_of_is_visible(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW, 42.0))
    assert facts_of(engine, "c1")["orders_12m"] == 1


def test_spend_is_trailing_365_days_net_of_refunds(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(
        engine,
        "c1",
        purchase(NOW - 400 * DAY, 1_000.0),
        purchase(NOW - 100 * DAY, 20_000.0),
        purchase(NOW - 5 * DAY, 5_000.0),
        {"type": "refund", "occurred_at": NOW - 4 * DAY, "amount": 2_000.0},
    )
    facts = facts_of(engine, "c1")
    assert facts["spend_12m"] == 23_000.0
    assert facts["orders_12m"] == 2
    assert facts["lifetime_spend"] == 24_000.0
    assert facts["lifetime_orders"] == 3
    assert facts["tier"] == "mid"


@pytest.mark.parametrize(
    ("spend", "tier"),
    [(100_000.01, "high"), (100_000.0, "mid"), (10_000.0, "mid"), (9_999.99, "base")],
)
def test_tier_thresholds(engine: Engine, spend: float, tier: str) -> None:
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW - DAY, spend))
    assert facts_of(engine, "c1")["tier"] == tier


def test_tier_thresholds_are_parameters(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW - DAY, 600.0))
    assert facts_of(engine, "c1", high_tier_spend=500.0, mid_tier_spend=100.0)["tier"] == "high"


def test_a_customer_without_events_is_a_prospect(engine: Engine) -> None:
    add_customer(engine, "c1")
    facts = facts_of(engine, "c1")
    assert facts["lifecycle_stage"] == "prospect"
    assert facts["tier"] == "base"
    assert facts["days_since_last_purchase"] is None
    assert facts["avg_order_value_recent"] is None
    assert facts["open_feedback_major"] == 0


def test_new_then_established(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW - 30 * DAY, 80.0), purchase(NOW - 20 * DAY, 90.0))
    assert facts_of(engine, "c1")["lifecycle_stage"] == "new"
    add_events(engine, "c1", purchase(NOW - 200 * DAY, 70.0, id="old"))
    facts = facts_of(engine, "c1")
    assert facts["lifecycle_stage"] == "established"
    assert facts["usual_purchase_gap_days"] == 90.0
    assert facts["purchase_overdue_ratio"] == round(20 / 90, 2)


def test_frequency_drop_makes_a_customer_at_risk(engine: Engine) -> None:
    add_customer(engine, "c1")
    before = [purchase(NOW - (100 + i) * DAY, 50.0) for i in range(6)]
    add_events(engine, "c1", *before, purchase(NOW - 10 * DAY, 50.0))
    facts = facts_of(engine, "c1")
    assert (facts["purchases_recent"], facts["purchases_previous"]) == (1, 6)
    assert facts["lifecycle_stage"] == "at_risk"


def test_one_old_purchase_is_not_a_frequency_drop(engine: Engine) -> None:
    """A drop needs a previous window worth comparing: one purchase 120 days ago and
    none since is a customer who is not (yet) overdue, not one at risk."""
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW - 120 * DAY, 50.0))
    facts = facts_of(engine, "c1")
    assert (facts["purchases_recent"], facts["purchases_previous"]) == (0, 1)
    assert facts["lifecycle_stage"] == "established"


def test_the_drop_minimum_is_a_parameter(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW - 120 * DAY, 50.0))
    assert facts_of(engine, "c1", at_risk_drop_min_purchases=1)["lifecycle_stage"] == "at_risk"


def test_long_silence_makes_a_customer_dormant(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW - 230 * DAY, 50.0), purchase(NOW - 200 * DAY, 50.0))
    facts = facts_of(engine, "c1")
    assert facts["days_since_last_purchase"] == 200
    assert facts["lifecycle_stage"] == "dormant"


def test_an_annual_buyer_is_not_dormant_within_three_usual_gaps(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(engine, "c1", purchase(NOW - 565 * DAY, 50.0), purchase(NOW - 200 * DAY, 50.0))
    assert facts_of(engine, "c1")["lifecycle_stage"] == "established"


def test_a_purchase_overdue_against_the_usual_gap_makes_a_customer_at_risk(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(
        engine,
        "c1",
        purchase(NOW - 130 * DAY, 50.0),
        purchase(NOW - 100 * DAY, 50.0),
        purchase(NOW - 70 * DAY, 50.0),
    )
    facts = facts_of(engine, "c1")
    assert facts["purchase_overdue_ratio"] == round(70 / 30, 2)
    assert facts["lifecycle_stage"] == "at_risk"


def test_an_open_complaint_makes_a_customer_at_risk_until_resolved(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(
        engine,
        "c1",
        purchase(NOW - 20 * DAY, 50.0),
        {
            "id": "fb1",
            "type": "feedback",
            "occurred_at": NOW - 2 * DAY,
            "level": "complex",
            "category": "complaint",
        },
        {
            "id": "fb2",
            "type": "feedback",
            "occurred_at": NOW - DAY,
            "level": "general",
            "category": "inquiry",
        },
        {"id": "fix", "type": "feedback_resolved", "occurred_at": NOW + DAY, "ref": "fb1"},
    )
    facts = facts_of(engine, "c1")
    assert facts["open_complaints"] == 1
    assert (facts["open_feedback_general"], facts["open_feedback_complex"]) == (1, 1)
    assert facts["complaints_recent"] == 1
    assert facts["days_since_complaint"] == 2
    assert facts["lifecycle_stage"] == "at_risk"
    resolved = facts_of(engine, "c1", NOW + 2 * DAY)
    assert resolved["open_complaints"] == 0
    assert resolved["open_feedback_complex"] == 0
    assert resolved["lifecycle_stage"] == "new"


def test_windows_for_orders_and_logins(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(
        engine,
        "c1",
        purchase(NOW - 10 * DAY, 100.0),
        purchase(NOW - 20 * DAY, 300.0),
        purchase(NOW - 120 * DAY, 1_000.0),
        *({"type": "login", "occurred_at": NOW - i * DAY} for i in (1, 2, 29)),
        *({"type": "login", "occurred_at": NOW - i * DAY} for i in (31, 59)),
        {"type": "login", "occurred_at": NOW - 61 * DAY},
    )
    facts = facts_of(engine, "c1")
    assert facts["avg_order_value_recent"] == 200.0
    assert facts["avg_order_value_previous"] == 1_000.0
    assert (facts["logins_30d"], facts["logins_prev_30d"]) == (3, 2)


def test_contacts_per_channel(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(
        engine,
        "c1",
        {"type": "contact", "occurred_at": NOW - 3 * DAY, "channel": "email"},
        {"type": "contact", "occurred_at": NOW - 9 * DAY, "channel": "email"},
        {"type": "contact", "occurred_at": NOW - 40 * DAY, "channel": "phone"},
        {"type": "contact", "occurred_at": NOW - 12 * DAY, "channel": "wechat"},
    )
    facts = facts_of(engine, "c1")
    assert facts["days_since_contact_email"] == 3
    assert facts["days_since_contact_wechat"] == 12
    assert facts["days_since_contact_sms"] is None
    assert facts["days_since_online_contact"] == 3
    assert facts["days_since_personal_contact"] == 40
    assert facts["days_since_any_contact"] == 3


def test_latest_survey_wins(engine: Engine) -> None:
    add_customer(engine, "c1")
    add_events(
        engine,
        "c1",
        {"type": "survey", "occurred_at": NOW - 100 * DAY, "score": 9},
        {"type": "survey", "occurred_at": NOW - 8 * DAY, "score": 4},
        {"type": "survey", "occurred_at": NOW + DAY, "score": 10},
    )
    facts = facts_of(engine, "c1")
    assert (facts["last_survey_score"], facts["days_since_survey"]) == (4, 8)


def test_birthday_and_anniversary_follow_the_customers_timezone(engine: Engine) -> None:
    # 2026-03-01 23:30 UTC is already 2 March in Shanghai, still 1 March in London.
    as_of = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    first = datetime(2024, 3, 2, 1, 0, tzinfo=UTC)
    for customer_id, zone in (("sh", "Asia/Shanghai"), ("ldn", "Europe/London")):
        add_customer(engine, customer_id, timezone=zone, birthday=date(1990, 3, 2))
        add_events(engine, customer_id, purchase(first, 10.0))
    shanghai, london = facts_of(engine, "sh", as_of), facts_of(engine, "ldn", as_of)
    assert shanghai["is_birthday"] and not london["is_birthday"]
    assert shanghai["is_first_purchase_anniversary"] and not london["is_first_purchase_anniversary"]
    assert (shanghai["years_since_first_purchase"], london["years_since_first_purchase"]) == (2, 1)


def test_a_29_february_birthday_is_celebrated_on_28_february(engine: Engine) -> None:
    add_customer(engine, "c1", birthday=date(2000, 2, 29))
    assert facts_of(engine, "c1", datetime(2027, 2, 28, 4, tzinfo=UTC))["is_birthday"]
    assert not facts_of(engine, "c1", datetime(2028, 2, 28, 4, tzinfo=UTC))["is_birthday"]
    assert facts_of(engine, "c1", datetime(2028, 2, 29, 4, tzinfo=UTC))["is_birthday"]


def test_every_declared_fact_is_present_with_its_type(engine: Engine) -> None:
    add_customer(engine, "c1", account_manager="li.na", consent_email=True)
    add_events(engine, "c1", purchase(NOW - 3 * DAY, 10.0), purchase(NOW - DAY, 12.5))
    facts = facts_of(engine, "c1")
    python_types = {
        FactType.INTEGER: int,
        FactType.NUMBER: float,
        FactType.STRING: str,
        FactType.BOOLEAN: bool,
        FactType.DATE: str,
    }
    assert set(facts) == {fact.name for fact in FACTS}
    for fact in FACTS:
        value = facts[fact.name]
        if value is None:
            assert fact.nullable, fact.name
            continue
        assert type(value) is python_types[fact.type], (fact.name, value)
        if fact.choices:
            assert value in fact.choices
    assert facts["has_account_manager"] and facts["consent_email"] and not facts["consent_sms"]


def test_as_of_without_offset_is_refused(engine: Engine) -> None:
    with engine.connect() as connection, pytest.raises(ValueError, match="offset"):
        next(iter_customer_facts(connection, datetime(2026, 1, 1), FactParameters()))


def test_all_customers_stream_in_id_order(engine: Engine) -> None:
    for customer_id in ("b", "a", "c"):
        add_customer(engine, customer_id)
    add_events(engine, "b", purchase(NOW - DAY, 1.0))
    with engine.connect() as connection:
        rows = list(iter_customer_facts(connection, NOW, FactParameters(), batch_size=2))
    assert [row["customer_id"] for row in rows] == ["a", "b", "c"]
    assert [row["lifetime_orders"] for row in rows] == [0, 1, 0]
    assert NOW.tzinfo is UTC


def test_streaming_facts_leaves_the_connection_usable_for_writes(engine: Engine) -> None:
    """The streaming option belongs to the facts query alone: on PostgreSQL, a leftover
    connection option would turn the next UPDATE into a server-side cursor (an error)."""
    add_customer(engine, "c1")
    with engine.connect() as connection:
        assert len(list(iter_customer_facts(connection, NOW, FactParameters(), batch_size=2))) == 1
        updated = connection.execute(
            text("UPDATE customers SET name = 'Renamed' WHERE id = 'c1'")
        ).rowcount
        connection.commit()
    assert updated == 1


def test_contact_days_are_calendar_days_in_the_customers_timezone(engine: Engine) -> None:
    """A touch sent at 10:00 is 7 days old at next week's 08:00 run (local dates in the
    customer's zone), so a weekly cadence is every 7 days, not 8."""
    add_customer(engine, "c1", timezone="Asia/Shanghai")
    sent = datetime(2026, 6, 22, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
    add_events(engine, "c1", {"type": "contact", "occurred_at": sent, "channel": "wechat"})
    next_run = datetime(2026, 6, 29, 0, 0, tzinfo=UTC)  # the next Monday, 08:00 there
    facts = facts_of(engine, "c1", as_of=next_run)
    assert facts["days_since_contact_wechat"] == 7
    assert facts["days_since_online_contact"] == 7
    assert facts_of(engine, "c1", as_of=next_run - 9 * HOUR)["days_since_online_contact"] == 6
