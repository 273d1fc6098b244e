"""Twelve weeks of live operation, as the schedules run it: the 08:00 evaluation every
day and the dispatcher five minutes later. The cadence rules of rules/cadence.yaml then
touch high-tier customers exactly every 7 days, mid-tier every 14 and base-tier every
30 — not 8, 15 and 31, as whole elapsed days once made them."""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from actions.dispatch import DispatchSettings, dispatch_once
from actions.templates import Templates
from engine.facts import MESSAGE_CHANNELS
from engine.loader import load_rules
from rapport.services.scheduled import evaluate_customers
from storage.revisions import activate
from storage.tables import MESSAGES
from tests.factories import add_customer, add_events
from tests.paths import ROOT
from tests.senders import AcceptingSender

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # a Monday, 08:00 in Shanghai
CADENCE = {
    "high_weekly_online_touch": 7,
    "mid_biweekly_message": 14,
    "base_monthly_service_reminder": 30,
}


def test_twelve_weeks_of_cadence_are_exactly_on_rhythm(engine: Engine, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("cadence.yaml", "tiers.yaml", "policy.yaml"):
        shutil.copy(ROOT / "rules" / name, rules / name)
    (rules / "measures.yaml").write_text("measures:\n  control_group: {percent: 0}\n")
    ruleset = load_rules(rules).ruleset
    assert ruleset is not None
    activate(engine, ruleset, START)
    for customer_id, spend in (("high", 150_000.0), ("mid", 20_000.0), ("base", 900.0)):
        add_customer(
            engine,
            customer_id,
            email=f"{customer_id}@example.com",
            wechat=f"wx-{customer_id}",
            consent_email=True,
            consent_wechat=True,
        )
        bought = {"type": "purchase", "occurred_at": START - timedelta(days=40), "amount": spend}
        add_events(engine, customer_id, bought)
    senders = {channel: AcceptingSender() for channel in MESSAGE_CHANNELS}
    templates = Templates(ROOT / "templates" / "messages")
    settings = DispatchSettings(
        "sim", {"name": "R", "service_phone": "1", "website": "w"}, "x", "k"
    )
    for day in range(84):
        morning = START + timedelta(days=day)
        list(evaluate_customers(engine, ruleset, morning, record=True))
        dispatch_at = morning + timedelta(minutes=5)
        asyncio.run(dispatch_once(engine, senders, templates, ruleset, dispatch_at, settings))
    sent: dict[str, list[datetime]] = defaultdict(list)
    with engine.connect() as connection:
        query = select(MESSAGES.c.rule_id, MESSAGES.c.sent_at).where(MESSAGES.c.status == "sent")
        for rule_id, sent_at in connection.execute(query.order_by(MESSAGES.c.sent_at)):
            sent[rule_id].append(sent_at)
    gaps = {
        rule: {(b - a).days for a, b in zip(times, times[1:], strict=False)}
        for rule, times in sent.items()
        if rule in CADENCE
    }
    assert gaps == {rule: {days} for rule, days in CADENCE.items()}
    assert len(sent["high_weekly_online_touch"]) == 12
