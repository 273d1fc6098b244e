"""What the backtest reads from storage: customers and their events, a chunk at a time.

Read-only: only SELECT statements. Per customer it keeps what the facts, the guards
and the outcome figures need — ids, times, amounts, types, levels, categories, scores,
consents — and never names or free text; addresses are reduced to whether there is one.

Events Rapport raised itself (contacts it delivered, `task_overdue`, `step_due`) are
part of the history only when they were recorded before the replay begins: from then on
the replay raises its own, from the rules under test. Live outputs of the period
therefore never leak into a backtest, and a backtest over a live database starts from
the re-entry history and frequency-cap counts live had reached (`Seeds`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, not_, or_, select
from sqlalchemy.engine import RowMapping

from engine.facts import ONLINE_CHANNELS
from rapport.backtest.timeline import from_us, to_us
from storage.events import FIELDS
from storage.facts import PROFILE_COLUMNS
from storage.models import Customer, Event, OutboxMessage, RuleFiring

C = Customer.__table__.c  # type: ignore[attr-defined]
E = Event.__table__.c  # type: ignore[attr-defined]
F = RuleFiring.__table__.c  # type: ignore[attr-defined]
M = OutboxMessage.__table__.c  # type: ignore[attr-defined]
GENERATED_TYPES = ("task_overdue", "step_due")
CONTACT_PREFIX = "rapport:"  # contacts the dispatcher recorded (storage/outbox.record_contact)
KEPT = tuple(name for name in FIELDS if name != "text")  # no free text


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
            **{f"consent_{ch}": self.consents[ch] for ch in ONLINE_CHANNELS},
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
    (re-entry) and when marketing was delivered within the cap window (the cap)."""

    last_fired: dict[str, dict[str, datetime]] = field(default_factory=dict)  # customer -> rule
    marketing_sent: dict[str, list[int]] = field(default_factory=dict)


def customer_ids(connection: Connection) -> list[str]:
    return list(connection.scalars(select(C.id).order_by(C.id)))


def history_end(connection: Connection) -> datetime | None:
    """The latest moment anything is known about: the last event from outside Rapport."""
    found: datetime | None = connection.scalar(
        select(func.max(E.occurred_at)).where(not_(_generated()))
    )
    return found


def _generated() -> Any:
    return or_(E.type.in_(GENERATED_TYPES), E.id.startswith(CONTACT_PREFIX, autoescape=True))


def load_customers(connection: Connection, ids: Sequence[str], begin: int) -> list[CustomerRecord]:
    """These customers with their history, in id order; events Rapport raised at or after
    `begin` (microseconds) are left out (see the module docstring)."""
    records = {row.id: CustomerRecord(_profile(row)) for row in _profiles(connection, ids)}
    query = (
        select(E.id, E.customer_id, E.type, E.occurred_at, E.attributes, *(E[n] for n in KEPT))
        .where(E.customer_id.in_(list(ids)))
        .where(not_(and_(_generated(), E.imported_at >= from_us(begin))))
        .order_by(E.customer_id, E.occurred_at, E.id)
    )
    for row in connection.execute(query):
        record = records.get(row.customer_id)
        if record is None:
            continue
        record.events.append(
            Happening(
                to_us(row.occurred_at),
                row.occurred_at,
                row.id,
                row.type,
                attributes=row.attributes or None,
                **{name: row._mapping[name] for name in KEPT},
            )
        )
    return [records[key] for key in sorted(records)]


def _profiles(connection: Connection, ids: Sequence[str]) -> Iterator[Any]:
    query = select(
        *PROFILE_COLUMNS,
        C.created_at,
        C.attributes,
        *(C[name] for name in ("email", "phone", "wechat")),
    ).where(C.id.in_(list(ids)))
    yield from connection.execute(query)


def _profile(row: Any) -> Profile:
    consents = {ch: bool(row._mapping[f"consent_{ch}"]) for ch in ONLINE_CHANNELS}
    addresses = {name: row._mapping[name] for name in ("email", "phone", "wechat")}
    reachable = {name: bool(value and value.strip()) for name, value in addresses.items()}
    return Profile(
        id=row.id,
        segment=row.segment,
        locale=row.locale,
        timezone=row.timezone,
        birthday=row.birthday,
        account_manager=row.account_manager,
        consents=consents,
        reachable=reachable,
        preferred_channels=str((row.attributes or {}).get("preferred_channels", "")),
        created_at=to_us(row.created_at) if row.created_at else None,
    )


def feedback_handling(
    connection: Connection, ids: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """For these customers' feedback items: when each was resolved (a `feedback_resolved`
    event referring to it), and when staff first handled it (the earlier of its first
    contact referring to it and its resolution), in microseconds."""
    items = select(E.id).where(E.customer_id.in_(list(ids)), E.type == "feedback")
    query = (
        select(E.ref, E.type, func.min(E.occurred_at))
        .where(E.ref.in_(items.scalar_subquery()), E.type.in_(("contact", "feedback_resolved")))
        .group_by(E.ref, E.type)
    )
    resolved: dict[str, int] = {}
    handled: dict[str, int] = {}
    for ref, kind, at in connection.execute(query):
        moment = to_us(at)
        if kind == "feedback_resolved":
            resolved[ref] = moment
        handled[ref] = min(moment, handled.get(ref, moment))
    return resolved, handled


def load_seeds(
    connection: Connection, ids: Sequence[str], begin: datetime, cap_window_us: int
) -> Seeds:
    """Live re-entry history and recent marketing deliveries before `begin`."""
    seeds = Seeds()
    fired = (
        select(F.customer_id, F.rule_id, func.max(F.as_of))
        .where(F.customer_id.in_(list(ids)), F.as_of < begin)
        .group_by(F.customer_id, F.rule_id)
    )
    found: dict[str, dict[str, datetime]] = defaultdict(dict)
    for customer, rule, at in connection.execute(fired):
        found[customer][rule] = at
    seeds.last_fired = dict(found)
    sent = select(M.customer_id, M.sent_at).where(
        M.customer_id.in_(list(ids)),
        M.status == "sent",
        M.purpose == "marketing",
        M.sent_at < begin,
        M.sent_at > from_us(to_us(begin) - cap_window_us),
    )
    marketing: dict[str, list[int]] = defaultdict(list)
    for customer, at in connection.execute(sent):
        marketing[customer].append(to_us(at))
    seeds.marketing_sent = {key: sorted(value) for key, value in marketing.items()}
    return seeds
