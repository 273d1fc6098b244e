"""Customers and their histories as the replay keeps them, read a chunk at a time.

`storage/history.py` reads them (only SELECT statements). Per customer this keeps what
the facts, the guards and the outcome figures need — ids, times, amounts, types, levels,
categories, scores, consents — and never names or free text; addresses are reduced to
whether there is one.

Events Rapport raised itself (contacts it delivered, `task_overdue`, `step_due`) are
part of the history only when they were recorded before the replay begins: from then on
the replay raises its own, from the rules under test. Live outputs of the period
therefore never leak into a backtest, and a backtest over a live database starts from
the re-entry history and frequency-cap counts live had reached (`Seeds`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from engine.facts import MESSAGE_CHANNELS
from rapport.backtest.timeline import from_us, to_us
from storage.events import FIELDS
from storage.firings import last_fired
from storage.history import (
    ADDRESSES,
    HISTORY_FIELDS,
    capped_deliveries,
    customer_events,
    customer_profiles,
    feedback_responses,
)


@dataclass(slots=True)
class Happening:
    """One event of a customer's history, as the replay keeps it."""

    at: int  # microseconds since the epoch
    moment: datetime
    id: str
    type: str
    amount: float | None = None
    quantity: int | None = None
    product: str | None = None
    channel: str | None = None
    level: str | None = None
    category: str | None = None
    score: int | None = None
    ref: str | None = None
    attributes: dict[str, Any] | None = None

    def row(self, customer_id: str) -> RowMapping:
        """The event as `storage.events.event_fields` reads a stored row (by key only)."""
        return {  # type: ignore[return-value]
            **{name: getattr(self, name, None) for name in FIELDS},
            "id": self.id,
            "type": self.type,
            "customer_id": customer_id,
            "occurred_at": self.moment,
            "attributes": self.attributes or {},
        }


@dataclass(frozen=True)
class Profile:
    """A customer's stored profile, without personal data."""

    id: str
    segment: str
    locale: str
    timezone: str
    birthday: date | None
    account_manager: str | None
    consents: dict[str, bool]
    reachable: dict[str, bool]  # channel -> an address is on file
    preferred_channels: str
    created_at: int | None

    def row(self) -> dict[str, Any]:
        """The customer as `actions.dispatch.recipient_for` reads a stored row; an address
        on file is a placeholder (the guards only ask whether there is one)."""
        present = {field: "on file" if self.reachable[field] else None for field in self.reachable}
        return {
            "id": self.id,
            "timezone": self.timezone,
            **{f"consent_{ch}": self.consents[ch] for ch in MESSAGE_CHANNELS},
            **present,
            "attributes": {"preferred_channels": self.preferred_channels},
        }


@dataclass
class CustomerRecord:
    """One customer's profile and whole stored history (events in time order)."""

    profile: Profile
    events: list[Happening] = field(default_factory=list)


@dataclass
class Seeds:
    """Live state at the replay's beginning: when each rule last fired for each customer
    (re-entry) and when messages a cap may count were delivered within the cap window,
    with their purpose (each revision's cap counts its own purposes)."""

    last_fired: dict[str, dict[str, datetime]] = field(default_factory=dict)  # customer -> rule
    capped_sent: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def load_customers(connection: Connection, ids: Sequence[str], begin: int) -> list[CustomerRecord]:
    """These customers with their history, in id order; events Rapport raised at or after
    `begin` (microseconds) are left out (see the module docstring)."""
    records = {
        row["id"]: CustomerRecord(_profile(row)) for row in customer_profiles(connection, ids)
    }
    for row in customer_events(connection, ids, from_us(begin)):
        record = records.get(row["customer_id"])
        if record is None:
            continue
        record.events.append(
            Happening(
                to_us(row["occurred_at"]),
                row["occurred_at"],
                row["id"],
                row["type"],
                attributes=row["attributes"] or None,
                **{name: row[name] for name in HISTORY_FIELDS},
            )
        )
    return [records[key] for key in sorted(records)]


def _profile(row: RowMapping) -> Profile:
    consents = {ch: bool(row[f"consent_{ch}"]) for ch in MESSAGE_CHANNELS}
    reachable = {name: bool(row[name] and row[name].strip()) for name in ADDRESSES}
    return Profile(
        id=row["id"],
        segment=row["segment"],
        locale=row["locale"],
        timezone=row["timezone"],
        birthday=row["birthday"],
        account_manager=row["account_manager"],
        consents=consents,
        reachable=reachable,
        preferred_channels=str((row["attributes"] or {}).get("preferred_channels", "")),
        created_at=to_us(row["created_at"]) if row["created_at"] else None,
    )


def feedback_handling(
    connection: Connection, ids: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """For these customers' feedback items: when each was resolved (a `feedback_resolved`
    event referring to it), and when staff first handled it (the earlier of its first
    contact referring to it and its resolution), in microseconds."""
    resolved: dict[str, int] = {}
    handled: dict[str, int] = {}
    for ref, kind, at in feedback_responses(connection, ids):
        moment = to_us(at)
        if kind == "feedback_resolved":
            resolved[ref] = moment
        handled[ref] = min(moment, handled.get(ref, moment))
    return resolved, handled


def load_seeds(
    connection: Connection, ids: Sequence[str], begin: datetime, cap_window_us: int
) -> Seeds:
    """Live re-entry history and recent deliveries a cap may count before `begin`."""
    seeds = Seeds()
    found: dict[str, dict[str, datetime]] = defaultdict(dict)
    for (rule, customer), at in last_fired(connection, ids, before=begin).items():
        found[customer][rule] = at
    seeds.last_fired = dict(found)
    capped: dict[str, list[tuple[int, str]]] = defaultdict(list)
    cap_start = from_us(to_us(begin) - cap_window_us)
    for customer, at, purpose in capped_deliveries(connection, ids, cap_start, begin):
        capped[customer].append((to_us(at), purpose))
    seeds.capped_sent = {key: sorted(value) for key, value in capped.items()}
    return seeds
