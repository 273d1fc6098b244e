"""A customer's history: what happened to them and what Rapport did, in time order.

Operations ask "why did (or didn't) this customer get that message?" and "who had
their complaint, and when was it answered?". The answer is spread over five tables;
this puts it into one list of entries, each a moment, a kind, one readable line and
the details as plain values, for the terminal, JSON and the API alike.

Free text is personal data: an event's `text` (a complaint as the customer wrote it)
is shown only when the caller may see it (`with_text`), and then masked like every
staff note: addresses, phone numbers and the customer's own name never appear.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import RowMapping

from actions.dispatch import personal_values
from actions.privacy import mask
from rapport.services.clock import local_time
from storage.customer_history import StoredHistory, stored_history
from storage.customers import customer_rows
from storage.tasks import holder

# Within one moment: what happened first, then the rule, what it planned, and its fate.
_ORDER = {"event": 0, "firing": 1, "task": 2, "message": 3}


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str  # event, firing, message, task
    what: str  # one line, e.g. "message care_checkin sent on email"
    details: dict[str, Any] = field(default_factory=dict)


def customer_history(
    engine: Engine,
    customer_id: str,
    zone: str,
    since: datetime | None = None,
    with_text: bool = False,
) -> list[HistoryEntry] | None:
    """Every entry of the customer's history from `since` on, oldest first; None when
    there is no such customer. Times in the lines are local to `zone`."""
    with engine.connect() as connection:
        customer = customer_rows(connection, [customer_id]).get(customer_id)
        if customer is None:
            return None
        stored = stored_history(connection, customer_id, since, with_text)
    personal = personal_values(customer)
    entries = [
        *_events(stored, personal),
        *_firings(stored),
        *_messages(stored, zone),
        *_tasks(stored, personal, zone),
    ]
    if since is not None:
        entries = [e for e in entries if e.at >= since]
    return sorted(entries, key=lambda e: (e.at, _ORDER[e.kind]))


def _events(stored: StoredHistory, personal: tuple[str, ...]) -> Iterator[HistoryEntry]:
    for row in stored.events:
        fields = {
            name: value
            for name, value in row.items()
            if value is not None and name not in ("id", "type", "occurred_at", "attributes")
        }
        if "text" in fields:
            fields["text"] = mask(str(fields["text"]), personal)
        shown = " ".join(f"{name}={value}" for name, value in fields.items() if name != "text")
        raised = {k: v for k, v in row["attributes"].items() if k in RAISED_ATTRIBUTES}
        line = f"{row['type']}" + (f" {shown}" if shown else "") + _raised(row["type"], raised)
        if "text" in fields:
            line += f": {fields['text']!r}"
        yield HistoryEntry(
            row["occurred_at"],
            "event",
            line,
            {"id": row["id"], "type": row["type"], **fields, **raised},
        )


# What Rapport writes on the events it raises itself: the message a contact delivered,
# the task that went overdue, the step that came due. Imported attributes stay out:
# they may hold anything a source system sends.
RAISED_ATTRIBUTES = ("outbox_key", "task_id", "task_kind", "hours_overdue", "step")


def _raised(kind: str, attributes: dict[str, Any]) -> str:
    if kind == "task_overdue" and "task_id" in attributes:
        return f": task {attributes['task_id']} ({attributes.get('task_kind')}) was not done"
    if kind == "step_due" and "step" in attributes:
        return f": {attributes['step']}"
    if "outbox_key" in attributes:
        return f" (delivery of {attributes['outbox_key']})"
    return ""


def _firings(stored: StoredHistory) -> Iterator[HistoryEntry]:
    for row in stored.firings:
        note = ""
        if row["held_out"]:
            note = " (held out: control group, nothing planned)"
        elif row["suppressed"]:
            note = " (a hold suppressed what it planned)"
        yield HistoryEntry(
            row["as_of"],
            "firing",
            f"{row['rule_id']} fired, rules revision {row['revision'][:12]}{note}; saw "
            + ", ".join(f"{name}={value}" for name, value in row["values"].items()),
            {
                "rule": row["rule_id"],
                "revision": row["revision"],
                "event_id": row["event_id"] or None,
                "values": row["values"],
                "held_out": row["held_out"],
                "suppressed": row["suppressed"],
            },
        )


def _messages(stored: StoredHistory, zone: str) -> Iterator[HistoryEntry]:
    for row in stored.messages:
        name = f"message {row['template']} ({row['rule_id']})"
        yield HistoryEntry(
            row["created_at"],
            "message",
            f"{name} planned, {row['purpose']}, on {row['channels'] or 'any channel'}; "
            f"now {row['status']}",
            {
                "message_id": row["id"],
                "key": row["key"],
                "step": "planned",
                "rule": row["rule_id"],
                "template": row["template"],
                "purpose": row["purpose"],
                "status_now": row["status"],
            },
        )
        for entry in stored.journal.get(row["id"], []):
            yield HistoryEntry(
                entry["at"],
                "message",
                f"{name} {_decision(entry, zone)}",
                {
                    "message_id": row["id"],
                    "step": _step(entry),
                    "status": entry["status"],
                    "channel": entry["channel"],
                    "reason": entry["reason"],
                    "attempt": entry["attempt"],
                    "due_again": entry["due_at"],
                },
            )


def _step(entry: RowMapping) -> str:
    if entry["status"] != "pending":
        return str(entry["status"])
    return "retrying" if (entry["reason"] or "").startswith("retry:") else "deferred"


def _decision(entry: RowMapping, zone: str) -> str:
    step, reason = _step(entry), entry["reason"] or ""
    if step == "sent":
        return f"sent on {entry['channel']} (attempt {entry['attempt']}): {reason}"
    if step == "retrying":
        return f"retrying at {local_time(entry['due_at'], zone)}: {reason}"
    on = f" on {entry['channel']}" if entry["channel"] else ""
    return f"{step}{on}: {reason}"


def _tasks(stored: StoredHistory, personal: tuple[str, ...], zone: str) -> Iterator[HistoryEntry]:
    for row in stored.tasks:
        who = holder(row["owner"], row["owner_role"])
        details = {
            "task_id": row["id"],
            "rule": row["rule_id"],
            "kind": row["kind"],
            "owner": row["owner"],
            "owner_role": row["owner_role"],
            "ledger": row["ledger"],
            "event_id": row["event_id"],
        }
        yield HistoryEntry(
            row["created_at"],
            "task",
            f"task {row['id']} opened: {row['kind']} for {who}, "
            f"due {local_time(row['due_at'], zone)}"
            + (" (remediation ledger)" if row["ledger"] else ""),
            {**details, "step": "opened", "due_at": row["due_at"]},
        )
        if row["closed_at"] is None:
            continue
        if row["status"] == "escalated":
            yield HistoryEntry(
                row["closed_at"],
                "task",
                f"task {row['id']} escalated: overdue, taken over by the next level",
                {**details, "step": "escalated"},
            )
        else:
            note = mask(row["acceptance_note"] or "", personal)
            yield HistoryEntry(
                row["closed_at"],
                "task",
                f"task {row['id']} closed" + (f": {note}" if note else ""),
                {**details, "step": "closed", "note": note or None},
            )
