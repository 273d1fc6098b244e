"""Staff tasks in the replay: opened by the rules, done when the history says so.

Nobody closes tasks in a replay, so the history stands in for staff. A task opened for
a feedback item (or escalated from one) is done when staff first handled the item: its
first contact referring to it, or its resolution, whichever came first — the evidence
`storage/report_data.feedback_items` reads too. Any other task (a relationship call, a
churn alert) is assumed done on time. A task still open when its deadline has passed
is overdue: the SLA watch raises `task_overdue` for it, which the escalation rules act
on exactly as live. The replay's watch notices a task `WATCH_DELAY` after its deadline
(live, `watch-sla` runs every five minutes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rapport.backtest.history import Happening
from rapport.backtest.tally import Tally
from rapport.backtest.timeline import MICROSECOND, from_us, to_us
from storage.planned import OVERDUE_PREFIX, PlannedTask

WATCH_DELAY_US = timedelta(minutes=1) // MICROSECOND


@dataclass
class ReplayTask:
    number: int  # stands for the task's id in `overdue:<id>` events
    kind: str
    owner_role: str
    due: int
    item: str | None  # the feedback item it serves
    done_at: int | None  # when the history shows it done (None: never)
    status: str = "open"  # open, escalated


@dataclass
class FeedbackItem:
    week: int
    level: str
    tasks: int = 0
    breached: bool = False


@dataclass
class Staff:
    """One customer's tasks and feedback items during a replay."""

    handled: dict[str, int]  # feedback id -> when staff first handled it
    tasks: dict[int, ReplayTask] = field(default_factory=dict)
    items: dict[str, FeedbackItem] = field(default_factory=dict)  # counted period only
    levels: dict[str, str | None] = field(default_factory=dict)  # feedback id -> its level

    def open(self, planned: PlannedTask, item: str | None) -> ReplayTask:
        """Opens a planned task; an escalation takes its overdue task over, keeping its
        kind (as `storage.tasks.store_tasks` does), so the next escalation rule sees it."""
        source = self.tasks.get(planned.escalates) if planned.escalates is not None else None
        if source is not None and source.status == "open":
            source.status = "escalated"
        due = to_us(planned.due_at)
        task = ReplayTask(
            number=len(self.tasks) + 1,
            kind=source.kind if source is not None else planned.kind,
            owner_role=planned.owner_role,
            due=due,
            item=item,
            done_at=self.handled.get(item) if item is not None else due,
        )
        self.tasks[task.number] = task
        if item in self.items:
            self.items[item].tasks += 1
        return task

    def overdue(self, number: int, now: int) -> Happening | None:
        """The `task_overdue` event for task `number` if it is still open at `now`, as
        `storage.tasks.raise_overdue_events` records it; None when it was done in time."""
        task = self.tasks[number]
        if task.status != "open" or (task.done_at is not None and task.done_at <= now):
            return None
        if task.item in self.items:
            self.items[task.item].breached = True
        attributes: dict[str, Any] = {
            "task_kind": task.kind,
            "owner_role": task.owner_role,
            "task_id": task.number,
            "hours_overdue": round((now - task.due) / 3_600_000_000, 1),
        }
        return Happening(
            task.due,
            from_us(task.due),
            f"{OVERDUE_PREFIX}{number}",
            "task_overdue",
            level=self.levels.get(task.item) if task.item is not None else None,
            attributes=attributes,
        )

    def count(self, tally: Tally) -> None:
        """Adds the counted period's feedback items: how many, how many had a task, how
        many went past a deadline."""
        for item in self.items.values():
            tally.feedback[(item.week, item.level, "items")] += 1
            tally.feedback[(item.week, item.level, "owned")] += item.tasks > 0
            tally.feedback[(item.week, item.level, "breached")] += item.breached
