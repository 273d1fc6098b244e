"""Holds defer, they do not drop: live operation hour by hour over the shipped rules (or
a small rules folder), as the schedules run it — event reactions, the 08:00 evaluation
in Shanghai, the dispatcher.

A win-back held by an open complaint waits for the complaint's resolution (up to the
policy's `complaint_hold` limit, then it is suppressed with that reason); the remediation
check follows the win-back that went out; a message the frequency cap suppressed gives
its rule's re-entry back; care greetings are not capped."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from actions.dispatch import DispatchSettings, dispatch_once
from actions.templates import Templates
from engine.facts import MESSAGE_CHANNELS
from engine.loader import load_rules
from engine.model import RuleSet
from rapport.services.reactions import react_to_events
from rapport.services.scheduled import evaluate_customers
from storage.outbox import store_messages
from storage.planned import PlannedMessage
from storage.revisions import activate
from storage.tables import EVENTS, MESSAGES
from tests.factories import add_customer, add_events
from tests.paths import ROOT
from tests.senders import AcceptingSender

MONDAY = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
COMPLAINT = "fb-1"


SENDERS = {channel: AcceptingSender() for channel in MESSAGE_CHANNELS}
TEMPLATES = Templates(ROOT / "templates" / "messages")
SETTINGS = DispatchSettings("live", {"name": "R", "service_phone": "1", "website": "w"}, "x", "k")


def operate(engine: Engine, ruleset: RuleSet, start: datetime, end: datetime) -> None:
    """Every hour from `start` to before `end`: reactions (events and steps that came
    due), the scheduled evaluation at 08:00 in Shanghai, then the dispatcher."""
    moment = start
    while moment < end:
        react_to_events(engine, ruleset, moment)
        if moment.hour == 0:
            list(evaluate_customers(engine, ruleset, moment, record=True))
        while asyncio.run(
            dispatch_once(engine, SENDERS, TEMPLATES, ruleset, moment, SETTINGS)
        ).claimed:
            pass
        moment += timedelta(hours=1)


def shipped_rules() -> RuleSet:
    ruleset = load_rules(ROOT / "rules").ruleset
    assert ruleset is not None
    return ruleset


def messages(engine: Engine, rule_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        query = select(MESSAGES).where(MESSAGES.c.rule_id == rule_id).order_by(MESSAGES.c.id)
        return [dict(row) for row in connection.execute(query).mappings()]


def steps(engine: Engine, step: str) -> list[datetime]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(EVENTS.c.occurred_at, EVENTS.c.attributes).where(EVENTS.c.type == "step_due")
        )
        return [at.replace(tzinfo=UTC) for at, attributes in rows if attributes["step"] == step]


def complaining_customer(engine: Engine, ruleset: RuleSet, resolved: datetime | None) -> None:
    """An established customer who complains on Sunday (at risk from then on) and, when
    `resolved` is given, has the complaint resolved then."""
    assert not ruleset.holds_out("at_risk_winback", "c1")
    add_customer(engine, "c1", email="c1@example.cn", consent_email=True)
    events: list[dict[str, Any]] = [
        {"type": "purchase", "occurred_at": datetime(2025, 9, 1, 2, tzinfo=UTC), "amount": 800},
        {"type": "purchase", "occurred_at": datetime(2026, 2, 10, 2, tzinfo=UTC), "amount": 900},
        {
            "id": COMPLAINT,
            "type": "feedback",
            "occurred_at": MONDAY - timedelta(hours=20),
            "level": "general",
            "category": "complaint",
            "channel": "phone",
        },
    ]
    if resolved is not None:
        events.append({"type": "feedback_resolved", "occurred_at": resolved, "ref": COMPLAINT})
    add_events(engine, "c1", *events)


def test_a_winback_held_by_a_complaint_goes_out_when_it_is_resolved(engine: Engine) -> None:
    ruleset = shipped_rules()
    activate(engine, ruleset, MONDAY - timedelta(days=1))
    resolved = MONDAY + timedelta(days=2, hours=7)  # Wednesday 15:00 in Shanghai
    complaining_customer(engine, ruleset, resolved)

    operate(engine, ruleset, MONDAY, resolved)
    (held,) = messages(engine, "at_risk_winback")
    assert held["status"] == "pending", held["reason"]
    assert held["reason"].startswith("open_complaint: ")
    assert "waiting for the resolution" in held["reason"]

    operate(engine, ruleset, resolved, MONDAY + timedelta(days=12))
    (winback,) = messages(engine, "at_risk_winback")
    assert (winback["status"], winback["sent_at"].replace(tzinfo=UTC)) == ("sent", resolved)
    # the remediation check asks a week after the win-back went out, not after the firing
    assert steps(engine, "at_risk_followup") == [resolved + timedelta(days=7)]
    (check,) = messages(engine, "at_risk_remediation_check")
    assert check["sent_at"].replace(tzinfo=UTC) == resolved + timedelta(days=7)


def test_a_hold_past_its_limit_is_suppressed_and_says_so(engine: Engine) -> None:
    ruleset = shipped_rules()
    assert ruleset.policy.complaint_hold_limit == timedelta(days=14)
    activate(engine, ruleset, MONDAY - timedelta(days=1))
    complaining_customer(engine, ruleset, resolved=None)

    operate(engine, ruleset, MONDAY, MONDAY + timedelta(days=14, hours=1))
    (winback,) = messages(engine, "at_risk_winback")
    assert winback["status"] == "suppressed"
    assert winback["reason"].startswith("open_complaint: ")
    assert "14 days" in winback["reason"] and "limit" in winback["reason"]
    # the win-back never went out: no remediation check asks whether it worked
    assert steps(engine, "at_risk_followup") == []
    assert messages(engine, "at_risk_remediation_check") == []


CAPPED_RULES = """
policy:
  frequency_cap: {marketing: 1, window: 7d}
rules:
  - id: promo
    description: An offer, once.
    trigger: schedule
    when: [{lifetime_orders: {gte: 1}}]
    actions: [{send_message: {template: loyalty_offer, purpose: marketing}}]
    reentry: once
    priority: 10
  - id: nudge
    description: Product picks, monthly.
    trigger: schedule
    when: [{lifetime_orders: {gte: 1}}]
    actions: [{send_message: {template: mid_product_picks, purpose: marketing}}]
    reentry: {every: 30d}
    priority: 20
measures:
  control_group: {percent: 0}
"""


def test_a_message_the_cap_suppressed_does_not_spend_its_rules_reentry(
    engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(CAPPED_RULES)
    ruleset = load_rules(tmp_path).ruleset
    assert ruleset is not None
    activate(engine, ruleset, MONDAY - timedelta(days=1))
    add_customer(engine, "c1", email="c1@example.cn", consent_email=True)
    add_events(engine, "c1", {"type": "purchase", "occurred_at": MONDAY - timedelta(days=3)})

    operate(engine, ruleset, MONDAY, MONDAY + timedelta(days=7, hours=1))
    (promo,) = messages(engine, "promo")
    assert promo["sent_at"].replace(tzinfo=UTC) == MONDAY
    (nudge,) = messages(engine, "nudge")  # one message, planned again each day it was held
    assert nudge["status"] == "sent", nudge["reason"]
    # suppressed by the cap on Monday, the nudge was tried again until the cap let it out
    assert (nudge["status"], nudge["sent_at"].replace(tzinfo=UTC)) == (
        "sent",
        MONDAY + timedelta(days=7),
    )


def test_a_birthday_greeting_over_the_marketing_cap_goes_out(engine: Engine) -> None:
    ruleset = shipped_rules()
    activate(engine, ruleset, MONDAY - timedelta(days=1))
    assert not ruleset.holds_out("birthday_greeting", "c1")
    add_customer(engine, "c1", email="c1@example.cn", consent_email=True, birthday=date(1990, 3, 2))
    add_events(engine, "c1", {"type": "purchase", "occurred_at": MONDAY - timedelta(days=20)})
    offers = [
        PlannedMessage(
            f"offer.{n}:c1:once",
            "c1",
            "offer",
            "loyalty_offer",
            (),
            "marketing",
            MONDAY - timedelta(days=n),
            None,
        )
        for n in (1, 2)
    ]
    with engine.begin() as connection:
        store_messages(connection, offers, MONDAY - timedelta(days=3))
        connection.execute(
            update(MESSAGES).values(status="sent", sent_at=MESSAGES.c.due_at, channel="email")
        )

    operate(engine, ruleset, MONDAY, MONDAY + timedelta(hours=1))
    (greeting,) = messages(engine, "birthday_greeting")
    assert greeting["status"] == "sent", greeting["reason"]
