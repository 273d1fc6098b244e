"""Turning firings into outbox rows, each with a deterministic idempotency key.

The key is derived from the rule, the action's place in it, the customer and the
re-entry scope: the triggering event, the whole customer lifetime (`once`), or the
numbered re-entry period the firing falls in. Planning the same firings twice, or a
crash and a retry, produces the same keys, and the unique constraints on
`outbox_messages.key` and `staff_tasks.key` turn repeats into no-ops.

A task's deadline counts from when its triggering event happened (a feedback item's
`occurred_at`; for an escalation, the deadline that was missed), or from the firing
for scheduled rules, on the clock of the feedback level it serves
(`ServiceLevels.due`): the same planned rows whenever and wherever the firing is
planned, live or in the backtest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.evaluate import Firing
from engine.model import Action, Reentry, Rule
from engine.service_levels import ServiceLevels
from storage.planned import (
    OVERDUE_PREFIX,
    Planned,
    PlannedMessage,
    PlannedStep,
    PlannedTask,
)

EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: weekly periods start on Mondays (UTC)


def reentry_scope(rule: Rule, firing: Firing) -> str:
    """What one firing stands for: its event, the customer's lifetime, or a period."""
    if firing.event_id is not None and rule.reentry is not Reentry.ONCE:
        return f"event:{firing.event_id}"
    if rule.reentry is Reentry.ONCE or rule.period is None:
        return "once"
    index = (firing.as_of - EPOCH) // rule.period
    return f"every:{int(rule.period.total_seconds())}s:{index}"


def idempotency_key(rule: Rule, firing: Firing, action_index: int) -> str:
    """`rule.action:customer:scope` — the same firing always gives the same key."""
    return f"{rule.id}.{action_index}:{firing.customer_id}:{reentry_scope(rule, firing)}"


def plan_firing(rule: Rule, firing: Firing, levels: ServiceLevels) -> list[Planned]:
    """The messages, tasks and later steps a firing asks for (tags are only recorded,
    with the firing); `levels` sets the tasks' deadlines. A step `from: message` is
    left to `steps_after_sending`."""
    planned: list[Planned] = []
    for index, action in enumerate(rule.actions):
        key = idempotency_key(rule, firing, index)
        if action.name == "send_message":
            planned.append(_message(key, rule, firing, action))
        elif action.name == "open_task":
            planned.append(_task(key, rule, firing, action, levels))
        elif action.name == "escalate":
            planned.append(_escalation(key, rule, firing, action, levels))
        elif action.name == "schedule" and action.params["from"] == "firing":
            due_at = firing.as_of + action.params["after"]
            planned.append(PlannedStep(key, firing.customer_id, action.params["step"], due_at))
    return planned


def steps_after_sending(
    rule: Rule, message_key: str, customer_id: str, sent_at: datetime
) -> list[PlannedStep]:
    """The steps `from: message` of `rule`, due after its message `message_key` went
    out at `sent_at`: only for the rule's first send_message, keyed like the firing's
    other actions (the message's key with the step's action index)."""
    sends = [i for i, action in enumerate(rule.actions) if action.name == "send_message"]
    prefix = f"{rule.id}.{sends[0]}:" if sends else None
    if prefix is None or not message_key.startswith(prefix):
        return []
    rest = message_key.removeprefix(prefix)
    return [
        PlannedStep(
            f"{rule.id}.{index}:{rest}",
            customer_id,
            action.params["step"],
            sent_at + action.params["after"],
        )
        for index, action in enumerate(rule.actions)
        if action.name == "schedule" and action.params["from"] == "message"
    ]


def _message(key: str, rule: Rule, firing: Firing, action: Action) -> PlannedMessage:
    return PlannedMessage(
        key=key,
        customer_id=firing.customer_id,
        rule_id=rule.id,
        template=action.params["template"],
        channels=tuple(action.params["channels"] or ()),
        purpose=action.params["purpose"],
        due_at=firing.as_of,
        event_id=firing.event_id,
    )


def deadline(firing: Firing, due_in: timedelta | str, levels: ServiceLevels) -> datetime:
    """When a task of this firing is due: `due_in` (a duration, or the name of the
    feedback item's target) after the event happened, on its level's clock."""
    start = firing.event_at or firing.as_of
    if isinstance(due_in, str):
        return levels.target(firing.level, due_in, start)
    return levels.due(firing.level, start, due_in)


def _escalation(
    key: str, rule: Rule, firing: Firing, action: Action, levels: ServiceLevels
) -> PlannedTask:
    """The overdue task's item, handed to the next owner with a new deadline. Storing
    it carries the overdue task's kind, ledger flag and acceptance criteria over (see
    `storage.tasks.store_tasks`); only a `task_overdue` event names a task to take over."""
    event_id = firing.event_id or ""
    overdue = (
        int(event_id.removeprefix(OVERDUE_PREFIX)) if event_id.startswith(OVERDUE_PREFIX) else None
    )
    return PlannedTask(
        key=key,
        customer_id=firing.customer_id,
        rule_id=rule.id,
        kind=str(firing.values.get("event.task_kind") or "escalation"),
        owner_role=action.params["to_role"],
        department=None,
        due_at=deadline(firing, action.params["due_in"], levels),
        acceptance_criteria=action.params["reason"],
        ledger=False,
        event_id=firing.event_id,
        escalates=overdue,
    )


def _task(
    key: str, rule: Rule, firing: Firing, action: Action, levels: ServiceLevels
) -> PlannedTask:
    return PlannedTask(
        key=key,
        customer_id=firing.customer_id,
        rule_id=rule.id,
        kind=action.params["kind"],
        owner_role=action.params["owner_role"],
        department=action.params["department"],
        due_at=deadline(firing, action.params["due_in"], levels),
        acceptance_criteria=action.params["acceptance_criteria"],
        ledger=bool(action.params["ledger"]),
        event_id=firing.event_id,
    )
