"""The rows planning hands to storage: messages, staff tasks and later steps.

They are storage's types (storage inserts them; `actions.planning` makes them), so
storage never imports from the layer above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OVERDUE_PREFIX = "overdue:"  # task_overdue event ids: the prefix, then the task's id


@dataclass(frozen=True)
class PlannedMessage:
    key: str
    customer_id: str
    rule_id: str
    template: str
    channels: tuple[str, ...]
    purpose: str
    due_at: datetime
    event_id: str | None
    firing_id: int | None = None  # the stored firing that planned it, once recorded


@dataclass(frozen=True)
class PlannedTask:
    key: str
    customer_id: str
    rule_id: str
    kind: str
    owner_role: str
    department: str | None
    due_at: datetime
    acceptance_criteria: str | None
    ledger: bool
    event_id: str | None
    escalates: int | None = None  # the id of the overdue task this one takes over


@dataclass(frozen=True)
class PlannedStep:
    """A `schedule` action: a `step_due` event for the customer, due later."""

    key: str
    customer_id: str
    step: str
    due_at: datetime


Planned = PlannedMessage | PlannedTask | PlannedStep
