"""Event rules at work: each event is reacted to once, inside the reaction window, and
what the rules plan (messages, later steps, tasks, escalations) lands in storage."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.loader import load_rules
from engine.model import RuleSet
from rapport.services.reactions import react_to_events
from storage.revisions import activate
from storage.tables import EVENTS, MESSAGES, TASKS
from storage.tasks import list_tasks, raise_overdue_events
from tests.factories import NOW, add_customer, add_events
from tests.paths import ROOT


def default_rules() -> RuleSet:
    """The rules Rapport ships with, as every deployment starts."""
    ruleset = load_rules(ROOT / "rules").ruleset
    assert ruleset is not None
    return ruleset


RULESET = default_rules()
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def customer(engine: Engine, customer_id: str = "c1") -> None:
    """A customer who may be emailed; firings need the revision they came from stored."""
    activate(engine, RULESET, NOW)
    add_customer(engine, customer_id, email=f"{customer_id}@example.com", consent_email=True)


def purchase(event_id: str, occurred_at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "purchase",
        "occurred_at": occurred_at,
        "amount": 120.0,
        "quantity": 1,
        "product": "espresso-machine",
    }


def events(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        return {row["id"]: dict(row) for row in connection.execute(select(EVENTS)).mappings()}


def messages(engine: Engine) -> list[tuple[str, str]]:
    query = select(MESSAGES.c.rule_id, MESSAGES.c.template).order_by(MESSAGES.c.id)
    with engine.connect() as connection:
        return [(rule, template) for rule, template in connection.execute(query)]


def test_a_first_purchase_is_thanked_once_and_plans_day_seven(engine: Engine) -> None:
    """The thank-you and the day-7 step are planned once; a second run is a no-op."""
    customer(engine)
    add_events(engine, "c1", purchase("p1", NOW - HOUR))

    first = react_to_events(engine, RULESET, NOW, event_ids=["p1"])
    assert first.firings == {"new_customer_thank_you": 1}
    assert first.messages == 1
    assert messages(engine) == [("new_customer_thank_you", "thank_you_guide")]
    stored = events(engine)
    assert stored["p1"]["reacted_at"] == NOW
    (step_id,) = [i for i in stored if i != "p1"]
    step = stored[step_id]
    assert step_id.startswith("step:")
    assert step["type"] == "step_due"
    assert step["occurred_at"] == NOW + 6 * DAY
    assert step["attributes"] == {"step": "new_customer_day7"}
    assert step["reacted_at"] is None

    second = react_to_events(engine, RULESET, NOW + HOUR, event_ids=["p1"])
    assert second.firings == {}
    assert second.messages == 0
    assert len(messages(engine)) == 1
    assert events(engine).keys() == {"p1", step_id}
    assert events(engine)["p1"]["reacted_at"] == NOW


def test_pending_mode_skips_events_older_than_the_window(engine: Engine) -> None:
    """History loaded late shapes the facts but triggers nothing, and stays unmarked;
    a recent event is reacted to. The old feedback would fire rules if it were taken."""
    customer(engine, "old")
    customer(engine, "new")
    add_events(
        engine,
        "old",
        purchase("old-p", NOW - 10 * DAY),
        {
            "id": "old-fb",
            "type": "feedback",
            "occurred_at": NOW - 4 * DAY,
            "level": "general",
            "category": "inquiry",
        },
    )
    add_events(engine, "new", purchase("new-p", NOW - HOUR))

    summary = react_to_events(engine, RULESET, NOW)

    assert summary.firings == {"new_customer_thank_you": 1}
    stored = events(engine)
    assert stored["old-p"]["reacted_at"] is None
    assert stored["old-fb"]["reacted_at"] is None
    assert stored["new-p"]["reacted_at"] == NOW
    assert messages(engine) == [("new_customer_thank_you", "thank_you_guide")]


def test_the_day_seven_step_fires_only_once_due(engine: Engine) -> None:
    """The planned step is an event like any other: picked up when its time comes."""
    customer(engine)
    add_events(engine, "c1", purchase("p1", NOW - HOUR))
    react_to_events(engine, RULESET, NOW, event_ids=["p1"])
    (step_id,) = [i for i in events(engine) if i.startswith("step:")]

    early = react_to_events(engine, RULESET, NOW + 5 * DAY)
    assert early.firings == {}
    assert events(engine)[step_id]["reacted_at"] is None

    due = NOW + 6 * DAY + timedelta(minutes=1)
    on_time = react_to_events(engine, RULESET, due)
    assert on_time.firings == {"new_customer_needs_followup": 1}
    assert events(engine)[step_id]["reacted_at"] == due
    assert messages(engine) == [
        ("new_customer_thank_you", "thank_you_guide"),
        ("new_customer_needs_followup", "new_customer_followup"),
    ]


@pytest.mark.parametrize(
    ("level", "category", "first_role", "escalation", "next_role", "ledger"),
    [
        (
            "general",
            "inquiry",
            "customer_service",
            "feedback_overdue_to_business",
            "business",
            False,
        ),
        ("complex", "delivery", "business", "feedback_overdue_to_management", "management", True),
    ],
)
def test_an_overdue_feedback_task_escalates_to_the_next_owner(
    engine: Engine,
    level: str,
    category: str,
    first_role: str,
    escalation: str,
    next_role: str,
    ledger: bool,
) -> None:
    """SLA watch → task_overdue event → escalation: the next owner takes the item over,
    with its ledger flag and acceptance criteria, and the late task is marked escalated."""
    customer(engine)
    feedback = {"id": "fb1", "type": "feedback", "occurred_at": NOW - HOUR}
    add_events(engine, "c1", {**feedback, "level": level, "category": category})
    react_to_events(engine, RULESET, NOW, event_ids=["fb1"])
    with engine.connect() as connection:
        (original,) = list_tasks(connection, NOW)
    assert original.owner_role == first_role
    assert original.ledger is ledger
    assert original.acceptance_criteria

    later = original.due_at + HOUR
    with engine.begin() as connection:
        assert raise_overdue_events(connection, original.due_at) == []  # not late yet
        ids = raise_overdue_events(connection, later)
    assert ids == [f"overdue:{original.id}"]

    summary = react_to_events(engine, RULESET, later, event_ids=ids)

    assert summary.firings == {escalation: 1}
    assert summary.tasks == 1
    with engine.connect() as connection:
        (task,) = list_tasks(connection, later)
        status, closed_at = connection.execute(
            select(TASKS.c.status, TASKS.c.closed_at).where(TASKS.c.id == original.id)
        ).one()
    assert (status, closed_at) == ("escalated", later)
    assert task.owner_role == next_role
    assert task.rule_id == escalation
    assert task.ledger is ledger
    assert task.acceptance_criteria is not None
    assert task.acceptance_criteria.startswith(original.acceptance_criteria + "\nEscalated: ")
    assert events(engine)[ids[0]]["reacted_at"] == later


def overdue_now(engine: Engine, at: datetime) -> list[str]:
    with engine.begin() as connection:
        return raise_overdue_events(connection, at)


def test_an_escalated_first_response_escalates_again_to_management(engine: Engine) -> None:
    """The chain the feedback rules promise: customer service → business → management.
    The business task keeps the item's kind, so its own lapse is escalated too."""
    customer(engine)
    feedback = {"id": "fb1", "type": "feedback", "occurred_at": NOW - HOUR}
    add_events(engine, "c1", {**feedback, "level": "general", "category": "inquiry"})
    react_to_events(engine, RULESET, NOW, event_ids=["fb1"])
    with engine.connect() as connection:
        (first,) = list_tasks(connection, NOW)
    first_lapse = first.due_at + HOUR
    react_to_events(engine, RULESET, first_lapse, event_ids=overdue_now(engine, first_lapse))
    with engine.connect() as connection:
        (business,) = list_tasks(connection, first_lapse)
    assert business.kind == "feedback_first_response"

    second_lapse = business.due_at + HOUR
    summary = react_to_events(
        engine, RULESET, second_lapse, event_ids=overdue_now(engine, second_lapse)
    )
    assert summary.firings == {"feedback_overdue_to_management": 1}
    with engine.connect() as connection:
        (management,) = list_tasks(connection, second_lapse)
    assert management.owner_role == "management"
    # Both lapses carry the item's level, the second through the escalation.
    raised = events(engine)
    lapses = [raised[e] for e in raised if e.startswith("overdue:")]
    assert [lapse["level"] for lapse in lapses] == ["general", "general"]
    with engine.connect() as connection:  # each task names the event it answers
        answers = connection.execute(
            select(TASKS.c.id, TASKS.c.event_id).order_by(TASKS.c.id)
        ).all()
    first, second, _ = answers
    assert [event for _, event in answers] == ["fb1", f"overdue:{first.id}", f"overdue:{second.id}"]


def test_an_old_event_handed_over_by_id_is_history_too(engine: Engine) -> None:
    """One reaction window for every path: a complaint from 9 days ago posted to the API
    (reacted to by id) opens no task, as the ingest flow's sweep would not either; a
    fresh one does."""
    customer(engine)
    complaint = {"type": "feedback", "level": "major", "category": "complaint"}
    add_events(
        engine,
        "c1",
        {**complaint, "id": "old", "occurred_at": NOW - 9 * DAY},
        {**complaint, "id": "new", "occurred_at": NOW - HOUR},
    )
    old = react_to_events(engine, RULESET, NOW, event_ids=["old"])
    assert old.firings == {} and old.tasks == 0
    fresh = react_to_events(engine, RULESET, NOW, event_ids=["new"])
    assert fresh.tasks == 1
    with engine.connect() as connection:
        assert [t.rule_id for t in list_tasks(connection, NOW)] == ["feedback_major_to_management"]
