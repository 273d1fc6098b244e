"""The tables. Times are timezone-aware in Python and stored as UTC in either database.

Unique constraints carry idempotency: an event id is imported once, and every outbox
message and staff task has a deterministic key that can exist only once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Customer(SQLModel, table=True):
    """A customer as imported; unknown import columns land in `attributes`."""

    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    wechat: str | None = Field(default=None, max_length=100)
    segment: str = Field(default="consumer", max_length=20)
    birthday: date | None = None
    locale: str = Field(default="zh-CN", max_length=10)
    timezone: str = Field(max_length=64)
    account_manager: str | None = Field(default=None, max_length=100)
    consent_email: bool = False
    consent_sms: bool = False
    consent_wechat: bool = False
    consent_app: bool = False
    created_at: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Event(SQLModel, table=True):
    """Something that happened to a customer; `id` comes from the source system."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_time", "customer_id", "occurred_at"),
        Index("ix_events_type_time", "type", "occurred_at"),
        Index("ix_events_ref", "ref"),
    )

    id: str = Field(primary_key=True, max_length=100)
    customer_id: str = Field(foreign_key="customers.id", max_length=64)
    type: str = Field(max_length=40)
    occurred_at: datetime
    amount: float | None = None
    quantity: int | None = None
    product: str | None = Field(default=None, max_length=100)
    channel: str | None = Field(default=None, max_length=20)
    level: str | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=40)
    score: int | None = None
    ref: str | None = Field(default=None, max_length=100)
    text: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    imported_at: datetime
    reacted_at: datetime | None = None  # when the event rules acted on it (see reactions)


class RulesetRevision(SQLModel, table=True):
    """One validated version of `rules/`, identified by the hash of its content."""

    __tablename__ = "ruleset_revisions"

    hash: str = Field(primary_key=True, max_length=64)
    loaded_at: datetime
    files: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    active: bool = False


class RuleFiring(SQLModel, table=True):
    """Audit of one rule matching one customer (or event) as of a time."""

    __tablename__ = "rule_firings"
    __table_args__ = (
        UniqueConstraint("revision", "rule_id", "customer_id", "as_of", "event_id"),
        Index("ix_rule_firings_customer", "customer_id", "as_of"),
    )

    id: int | None = Field(default=None, primary_key=True)
    revision: str = Field(foreign_key="ruleset_revisions.hash", max_length=64)
    rule_id: str = Field(max_length=100)
    customer_id: str = Field(foreign_key="customers.id", max_length=64)
    as_of: datetime
    event_id: str = Field(default="", max_length=100)
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    held_out: bool = False  # the control group kept the customer out of this marketing rule
    suppressed: bool = False  # a hold stopped all it planned: it does not count for re-entry
    created_at: datetime


class OutboxMessage(SQLModel, table=True):
    """A message to deliver; `key` makes planning and delivery idempotent."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    customer_id: str = Field(foreign_key="customers.id", max_length=64)
    rule_id: str = Field(max_length=100)
    firing_id: int | None = Field(default=None, foreign_key="rule_firings.id")
    channels: str = Field(default="", max_length=100)  # the rule's preference, comma-separated
    channel: str | None = Field(default=None, max_length=20)  # chosen by the guards
    template: str = Field(max_length=100)
    purpose: str = Field(default="marketing", max_length=20)
    event_id: str | None = Field(default=None, max_length=100)
    status: str = Field(default="pending", max_length=20)
    reason: str | None = None  # the guard decision or failure that explains the status
    due_at: datetime
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    held_since: datetime | None = None  # when an open complaint first held it (the hold's limit)
    created_at: datetime


class OutboxJournal(SQLModel, table=True):
    """Every decision the dispatcher took on a message, in order: the outbox row keeps
    only the latest, and a customer's history must show each deferral, attempt and
    result with its reason (reasons are masked before they are stored)."""

    __tablename__ = "outbox_journal"
    __table_args__ = (Index("ix_outbox_journal_message", "message_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outbox_messages.id")
    at: datetime
    status: str = Field(max_length=20)  # sent, pending (deferred or retrying), suppressed, failed
    channel: str | None = Field(default=None, max_length=20)
    reason: str | None = None
    attempt: int = 0
    due_at: datetime | None = None  # when a deferred or retried message is due again


class StaffTask(SQLModel, table=True):
    """Work for a person; complex and major feedback items are remediation-ledger tasks."""

    __tablename__ = "staff_tasks"
    __table_args__ = (Index("ix_staff_tasks_open", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    customer_id: str = Field(foreign_key="customers.id", max_length=64)
    rule_id: str = Field(max_length=100)
    firing_id: int | None = Field(default=None, foreign_key="rule_firings.id")
    event_id: str | None = Field(default=None, max_length=100)  # the event it answers
    kind: str = Field(max_length=40)
    owner_role: str = Field(max_length=60)
    owner: str | None = Field(default=None, max_length=100)
    department: str | None = Field(default=None, max_length=100)
    ledger: bool = False
    acceptance_criteria: str | None = None
    status: str = Field(default="open", max_length=20)
    due_at: datetime
    closed_at: datetime | None = None
    acceptance_note: str | None = None
    created_at: datetime


class ShardFigure(SQLModel, table=True):
    """One figure of one shard of a sharded evaluation (`customers`, `messages`, `tasks`
    or `firings:<rule>`), kept in the database every worker shares, so the parent run
    sums its shards' figures whichever machine ran them. Counts grow in the same
    transaction as the rows they count, so a shard that failed half-way and ran again
    counts each firing, message and task once."""

    __tablename__ = "evaluation_shard_figures"

    run_id: str = Field(primary_key=True, max_length=64)  # the parent flow run
    shard: int = Field(primary_key=True)
    figure: str = Field(primary_key=True, max_length=120)
    count: int = 0
    recorded_at: datetime
