"""A customer's history, as operations read it: one complaint from arrival to closing,
with every decision the dispatcher took on its acknowledgement (the quiet-hours
deferral, then the delivery), the escalation and the closing note; personal data
masked or left out."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from actions.dispatch import DispatchSettings, dispatch_once
from actions.templates import Templates
from engine.facts import MESSAGE_CHANNELS
from engine.loader import load_rules
from rapport.services.history import HistoryEntry, customer_history
from rapport.services.reactions import react_to_events
from storage.revisions import activate
from storage.tables import TASKS
from storage.tasks import close_task, raise_overdue_events
from tests.factories import add_customer, add_events
from tests.paths import ROOT
from tests.senders import AcceptingSender

ZONE = "Asia/Shanghai"
RULESET = load_rules(ROOT / "rules").ruleset
assert RULESET is not None


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(ZONE))


def a_complaint_handled_late(engine: Engine) -> None:
    """Friday 23:00 a complaint; its acknowledgement waits for the quiet hours to end;
    nobody answers by Monday 10:00, so it escalates; business closes it with a note."""
    activate(engine, RULESET, local("2026-01-01T00:00"))
    add_customer(engine, "c1", name="Wang Fang", email="wang.fang@example.cn", consent_email=True)
    text = "Wang Fang here, call me on +86 138 8183 6553 or wang.fang@example.cn"
    add_events(
        engine,
        "c1",
        {
            "id": "fb1",
            "type": "feedback",
            "occurred_at": local("2026-11-27T23:00"),
            "level": "general",
            "category": "inquiry",
            "channel": "email",
            "text": text,
        },
    )
    react_to_events(engine, RULESET, local("2026-11-27T23:02"), event_ids=["fb1"])
    settings = DispatchSettings(
        "w1", {"name": "Rapport", "service_phone": "400", "website": "x"}, "http://x", "k"
    )
    templates = Templates(ROOT / "templates" / "messages")
    senders = dict.fromkeys(MESSAGE_CHANNELS, AcceptingSender())
    for at in ("2026-11-27T23:02", "2026-11-28T08:00"):
        asyncio.run(dispatch_once(engine, senders, templates, RULESET, local(at), settings))
    with engine.begin() as connection:
        (overdue,) = raise_overdue_events(connection, local("2026-11-30T10:01"))
    react_to_events(engine, RULESET, local("2026-11-30T10:01"), event_ids=[overdue])
    with engine.begin() as connection:
        escalated = connection.scalar(select(func.max(TASKS.c.id)))
        note = "Called Wang Fang, wang.fang@example.cn: sorted"
        close_task(connection, escalated, note, local("2026-11-30T11:00"))


def lines(entries: list[HistoryEntry]) -> list[str]:
    return [f"{e.at.astimezone(ZoneInfo(ZONE)):%m-%d %H:%M} {e.kind}: {e.what}" for e in entries]


def steps(entries: list[HistoryEntry]) -> list[tuple[str, str, str]]:
    """(local time, kind, what it was: an event's type, a firing's rule, a step)."""
    found = []
    for entry in entries:
        details = entry.details
        what = details.get("step") or details.get("type") or details.get("rule")
        found.append((f"{entry.at.astimezone(ZoneInfo(ZONE)):%m-%d %H:%M}", entry.kind, what))
    return found


def test_one_complaint_from_arrival_to_closing(engine: Engine) -> None:
    a_complaint_handled_late(engine)
    entries = customer_history(engine, "c1", ZONE)
    assert entries is not None

    assert steps(entries) == [
        ("11-27 23:00", "event", "feedback"),
        ("11-27 23:02", "firing", "feedback_acknowledgement"),
        ("11-27 23:02", "firing", "feedback_general_to_customer_service"),
        ("11-27 23:02", "task", "opened"),
        ("11-27 23:02", "message", "planned"),
        ("11-27 23:02", "message", "deferred"),  # the quiet hours
        ("11-28 08:00", "event", "contact"),
        ("11-28 08:00", "message", "sent"),
        ("11-30 10:00", "event", "task_overdue"),
        ("11-30 10:01", "firing", "feedback_overdue_to_business"),
        ("11-30 10:01", "task", "escalated"),
        ("11-30 10:01", "task", "opened"),
        ("11-30 11:00", "task", "closed"),
    ]
    text = lines(entries)
    assert "deferred: quiet_hours" in text[5]
    assert "sent on email (attempt 2)" in text[7]
    assert "due 2026-11-30 10:00" in text[3]  # local time, as staff read it
    assert "feedback_first_response for business, due 2026-12-01 10:00" in text[11]
    firing = entries[2].details
    assert firing["values"] == {"event.level": "general", "event.category": "inquiry"}
    assert firing["revision"] == RULESET.revision


def test_personal_data_stays_out_or_masked(engine: Engine) -> None:
    a_complaint_handled_late(engine)
    plain = customer_history(engine, "c1", ZONE)
    shown = customer_history(engine, "c1", ZONE, with_text=True)
    assert plain is not None and shown is not None

    assert "text" not in plain[0].details  # the complaint's words need with_text
    assert "Wang" not in " ".join(e.what for e in plain)
    complaint = str(shown[0].details["text"])
    assert "call me on" in complaint
    everything = repr(shown)
    for personal in ("Wang Fang", "wang.fang@example.cn", "8183 6553", "81836553"):
        assert personal not in everything
    assert "6553" in complaint  # masked the way every log masks: the last digits stay


def test_since_keeps_what_happened_from_then_on(engine: Engine) -> None:
    a_complaint_handled_late(engine)
    since = local("2026-11-30T00:00")
    entries = customer_history(engine, "c1", ZONE, since=since)
    assert entries is not None
    assert [e.at >= since for e in entries] == [True] * len(entries)
    assert steps(entries)[0] == ("11-30 10:00", "event", "task_overdue")
    assert steps(entries)[-1] == ("11-30 11:00", "task", "closed")


def test_an_unknown_customer_has_no_history(engine: Engine) -> None:
    activate(engine, RULESET, local("2026-01-01T00:00"))
    assert customer_history(engine, "nobody", ZONE) is None
