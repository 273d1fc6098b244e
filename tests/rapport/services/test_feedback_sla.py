"""Feedback SLA clocks as the shipped rules and policy keep them, live: deadlines count
from when the item happened, in business hours (China's public holidays and adjusted
working days included) or around the clock for a major item; a logged answer stops the
escalation; the acknowledgement promises the deadline the task has."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from actions.dispatch import DispatchSettings, dispatch_once
from actions.templates import Templates
from engine.facts import MESSAGE_CHANNELS
from engine.loader import load_rules
from engine.model import RuleSet
from rapport.services.reactions import react_to_events
from storage.revisions import activate
from storage.tables import TASKS
from storage.tasks import raise_overdue_events
from tests.factories import add_customer, add_events
from tests.paths import ROOT
from tests.senders import AcceptingSender

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULESET = load_rules(ROOT / "rules").ruleset
assert RULESET is not None


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def feedback(event_id: str, at: str, level: str, category: str = "inquiry") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "feedback",
        "occurred_at": local(at),
        "level": level,
        "category": category,
        "channel": "email",
    }


def customer(engine: Engine, ruleset: RuleSet = RULESET, **fields: Any) -> None:
    activate(engine, ruleset, local("2026-01-01T00:00"))
    add_customer(engine, "c1", email="c1@example.com", consent_email=True, **fields)


def react(engine: Engine, at: str, *event_ids: str) -> None:
    react_to_events(engine, RULESET, local(at), event_ids=list(event_ids))


def tasks(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(TASKS).order_by(TASKS.c.id)).mappings()
        return [dict(row) for row in rows]


def watch(engine: Engine, at: str) -> list[str]:
    with engine.begin() as connection:
        return raise_overdue_events(connection, local(at))


def test_an_inquiry_at_23h_on_a_friday_is_due_at_10h_on_monday(engine: Engine) -> None:
    customer(engine)
    add_events(engine, "c1", feedback("fb1", "2026-11-27T23:00", "general"))
    react(engine, "2026-11-27T23:02", "fb1")

    (task,) = tasks(engine)
    assert task["due_at"] == local("2026-11-30T10:00")  # one working hour: Monday 09:00-10:00
    assert watch(engine, "2026-11-28T00:05") == []  # no escalation overnight
    assert watch(engine, "2026-11-30T10:01") == [f"overdue:{task['id']}"]
    react(engine, "2026-11-30T10:01", f"overdue:{task['id']}")
    escalated = tasks(engine)[-1]
    # business gets 24h on the business clock from the missed deadline: a working day
    assert (escalated["owner_role"], escalated["due_at"]) == ("business", local("2026-12-01T10:00"))


def test_the_deadline_counts_from_the_feedback_not_from_the_reaction(engine: Engine) -> None:
    customer(engine)
    add_events(engine, "c1", feedback("fb1", "2026-11-30T10:00", "general"))
    react(engine, "2026-11-30T10:40", "fb1")
    assert [t["due_at"] for t in tasks(engine)] == [local("2026-11-30T11:00")]


def test_an_item_answered_by_phone_stops_its_escalation(engine: Engine) -> None:
    customer(engine)
    add_events(engine, "c1", feedback("fb1", "2026-11-30T10:00", "general"))
    react(engine, "2026-11-30T10:01", "fb1")
    phone = {
        "id": "call1",
        "type": "contact",
        "occurred_at": local("2026-11-30T10:30"),
        "channel": "phone",
        "ref": "fb1",
    }
    add_events(engine, "c1", phone)

    assert watch(engine, "2026-11-30T11:05") == []
    (task,) = tasks(engine)
    assert (task["status"], task["closed_at"]) == ("closed", local("2026-11-30T10:30"))
    assert task["acceptance_note"] == "Answered: contact call1"


def test_an_answered_ledger_item_stops_escalating_but_stays_open_for_its_note(
    engine: Engine,
) -> None:
    customer(engine)
    add_events(engine, "c1", feedback("fb1", "2026-11-30T10:00", "complex", "delivery"))
    react(engine, "2026-11-30T10:01", "fb1")
    answer = {
        "id": "mail1",
        "type": "contact",
        "occurred_at": local("2026-11-30T16:00"),
        "channel": "email",
        "ref": "fb1",
    }
    add_events(engine, "c1", answer)

    (task,) = tasks(engine)
    assert task["ledger"] and task["due_at"] == local("2026-12-01T10:00")
    assert watch(engine, "2026-12-01T10:05") == []
    assert tasks(engine)[0]["status"] == "open"  # closed only with an acceptance note


def test_public_holidays_and_adjusted_working_days_follow_china(engine: Engine) -> None:
    customer(engine)
    add_events(
        engine,
        "c1",
        # the eve of the National Day week (1–7 October 2026 off)
        feedback("fb1", "2026-09-30T17:30", "general"),
        # a Saturday before Sunday 20 September, a working day moved for the holiday
        feedback("fb2", "2026-09-19T15:00", "general"),
    )
    react(engine, "2026-09-30T17:31", "fb1")
    react(engine, "2026-09-19T15:01", "fb2")
    due = {t["event_id"]: t["due_at"] for t in tasks(engine)}
    assert due == {"fb1": local("2026-10-08T09:30"), "fb2": local("2026-09-20T10:00")}


def test_a_major_item_counts_around_the_clock(engine: Engine) -> None:
    customer(engine)
    add_events(engine, "c1", feedback("fb1", "2026-11-27T23:00", "major", "complaint"))
    react(engine, "2026-11-28T01:00", "fb1")
    (task,) = tasks(engine)
    assert (task["owner_role"], task["due_at"]) == ("management", local("2026-11-29T23:00"))


def test_the_acknowledgement_promises_the_deadline_its_task_has(engine: Engine) -> None:
    customer(engine, locale="en")
    add_events(engine, "c1", feedback("fb1", "2026-11-27T23:00", "general"))
    react(engine, "2026-11-27T23:02", "fb1")
    sender = AcceptingSender()
    settings = DispatchSettings(
        "w1", {"name": "Rapport", "service_phone": "400", "website": "x"}, "http://x", "k"
    )
    templates = Templates(ROOT / "templates" / "messages")
    senders = dict.fromkeys(MESSAGE_CHANNELS, sender)
    # held by the quiet hours until 08:00 on Saturday, then sent
    for at in ("2026-11-27T23:02", "2026-11-28T08:00"):
        asyncio.run(dispatch_once(engine, senders, templates, RULESET, local(at), settings))

    (envelope,) = sender.sent
    assert "by Monday 30 November, 10:00" in envelope.text
    assert tasks(engine)[0]["due_at"] == local("2026-11-30T10:00")
