"""One customer's history through the rules, moment by moment, as live runs would go.

The live pieces are called as they are: facts from `engine.facts.derive_facts` (over
aggregates built in Python, see `aggregates.py`), matching by the compiled engine
(`engine.evaluate.Evaluator`), re-entry and the control group by
`storage.firings.admitted`, planning and idempotency keys by `actions.planning`, the
guards by `actions.guards.decide` with `actions.dispatch.recipient_for`. Only what live
keeps in tables is kept here, in memory, for this one customer: when each rule last
fired and the keys planned (`planner.py`), open tasks (`staff.py`), deliveries the cap counts
within its window and the messages a complaint holds (`mailroom.py`).

The moments, in time order, and at one instant in this order:

1. *reactions* — event rules on each stored event at the moment it happened (the API
   reacts at once), on `step_due` events when their step comes due and on `task_overdue`
   when the SLA watch finds a task late (`staff.py`), facts as of that moment;
2. *evaluation* — at each step, the scheduled rules, facts as of the step;
3. *dispatch* (`mailroom.py`) — every message the moment it is due: sent (then it is a
   `contact` event of the history, which later facts see), deferred to the end of the
   quiet hours or while a complaint holds it (and decided again then, or when the
   complaint is resolved), or suppressed.

Customers never affect each other (every fact, guard and task is one customer's), so a
replay per customer gives what a replay of everyone step by step would.

A step only reaches the engine when the pure-Python condition evaluator
(`engine.trace.holds`, held equal to the engine by the test suite) finds a rule that
re-entry allows and whose conditions hold (`customer_facts.Foresight`); the engine's
answer is the one used.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.evaluate import Firing
from rapport.backtest.agenda import EVALUATE, REACT, Agenda
from rapport.backtest.aggregates import CustomerHistory
from rapport.backtest.customer_facts import CustomerFacts, Foresight
from rapport.backtest.eligibility import Eligible
from rapport.backtest.history import CustomerRecord, Happening
from rapport.backtest.mailroom import Mailroom
from rapport.backtest.outcomes import Outcomes
from rapport.backtest.planner import Planner
from rapport.backtest.revision import Rules
from rapport.backtest.staff import FeedbackItem, Staff
from rapport.backtest.tally import Tally
from rapport.backtest.timeline import Window, from_us
from storage.events import event_fields


class Replay:
    """Replays one customer; `run` adds what happened to `tally`."""

    def __init__(
        self,
        rules: Rules,
        window: Window,
        record: CustomerRecord,
        handling: tuple[dict[str, int], dict[str, int]],
        history_end: int,
        tally: Tally,
        last_fired: dict[str, datetime] | None = None,
        capped_sent: list[int] | None = None,
    ) -> None:
        resolved, handled = handling
        self.rules, self.window, self.tally = rules, window, tally
        self.profile = record.profile
        self.customer = record.profile.id
        self.source = record.events
        params = rules.ruleset.parameters
        history = CustomerHistory(record.profile, list(record.events), resolved, params)
        self.facts = CustomerFacts(history, params)
        self.foresight = (
            Foresight(rules.prefilter, rules.drift, self.facts) if rules.prefilter else None
        )
        self.eligible = Eligible(rules.eligibility, rules.drift, self.facts)
        self.staff = Staff(handled)
        self.outcomes = Outcomes(
            [e.at for e in record.events if e.type == "purchase"], window, history_end
        )
        self.agenda = Agenda()
        self.mailroom = Mailroom(
            rules,
            window,
            tally,
            self.facts,
            self.agenda,
            record.profile.row(),
            list(capped_sent or ()),
        )
        self.planner = Planner(
            rules,
            self.customer,
            tally,
            self.staff,
            self.outcomes,
            self.mailroom,
            self.agenda,
            last_fired,
        )

    def run(self) -> None:
        begin = self._begin()
        if begin >= self.window.end_us:
            return
        self._schedule(begin)
        for at, phase, items in self.agenda.until(self.window.end_us):
            if phase == REACT:
                self._react(at, items)
            elif phase == EVALUATE:
                self._evaluate(at, items[0])
            else:
                self.mailroom.dispatch(at, items)
        self._finish(begin)

    def _begin(self) -> int:
        """The window's beginning, or later when the customer came later."""
        created = self.profile.created_at
        first_event = self.source[0].at if self.source else None
        known = [moment for moment in (created, first_event) if moment is not None]
        return max(self.window.begin_us, min(known, default=self.window.begin_us))

    def _schedule(self, begin: int) -> None:
        """The stored events and the steps from `begin` on."""
        end = self.window.end_us
        for event in self.source:
            if begin <= event.at < end:
                self.agenda.add(event.at, REACT, event)
        for step, moment in zip(self.window.steps_us, self.window.steps, strict=True):
            if step >= begin:
                self.agenda.add(step, EVALUATE, moment)

    # -------------------------------------------------------------------- reactions
    def _react(self, at: int, items: list[Any]) -> None:
        """Event rules on everything that happened or came due at `at`, in (time, id)
        order, all with the facts as of `at`, admitted as one batch (as live does). A
        resolved complaint first wakes the messages it held."""
        if any(isinstance(item, Happening) and item.type == "feedback_resolved" for item in items):
            self.mailroom.wake(at)
        events = [pair for item in items if (pair := self._happened(at, item)) is not None]
        events = [pair for pair in events if pair[0].type in self.rules.reacts_to]
        if not events:
            return
        events.sort(key=lambda pair: (pair[0].at, pair[0].id))
        facts, moment = self.facts.as_of(at), from_us(at)
        firings = [
            firing
            for event, _ in events
            for firing in self.rules.evaluator.evaluate_event(
                facts, event_fields(event.row(self.customer)), moment
            )
        ]
        items_of = {event.id: item for event, item in events}
        self._apply(firings, at, facts, items_of)

    def _happened(self, at: int, item: Happening | int) -> tuple[Happening, str | None] | None:
        """The event an agenda item stands for, with the feedback item it serves; None
        when the SLA watch finds task number `item` done in time."""
        if isinstance(item, int):
            return self._overdue(at, item)
        if item.type != "feedback":
            return item, None
        self.staff.levels[item.id] = item.level
        if at >= self.window.start_us:
            week = self.window.week_of(at)
            self.staff.items[item.id] = FeedbackItem(week, item.level or "general")
        return item, item.id

    def _overdue(self, at: int, number: int) -> tuple[Happening, str | None] | None:
        """The SLA watch's look at task `number`: a `task_overdue` event if it is late."""
        overdue = self.staff.overdue(number, at)
        if overdue is None:
            return None
        task = self.staff.tasks[number]
        self.tally.late_task(task.owner_role, self.window.week_of(at))
        return overdue, task.item

    # ------------------------------------------------------------------- evaluation
    def _evaluate(self, at: int, moment: datetime) -> None:
        """The scheduled rules at a step; the prefilter first, when it is on. First, the
        churn signals' eligible populations are counted."""
        if self.rules.eligibility.counted and self.outcomes.judged(at):
            self.outcomes.eligible(self.eligible.at(at, moment), at)
        if self.foresight is not None and not self.planner.admits_any(
            self.foresight.holding(at, moment), moment
        ):
            return
        facts = self.facts.as_of(at)
        firings = self.rules.evaluator.evaluate(facts, moment)
        self._apply(firings, at, facts, {})

    def _apply(
        self, firings: list[Firing], at: int, facts: dict[str, Any], items: dict[str, str | None]
    ) -> None:
        """Firings with the week and the customer's group they count in."""
        group = (facts["tier"], facts["lifecycle_stage"], facts["segment"])
        self.planner.apply(firings, at, self.window.week_of(at), group, items)

    def _finish(self, begin: int) -> None:
        tally = self.tally
        tally.customers += 1
        tally.events += len(self.source)
        first_week = self.window.week_of(max(begin, self.window.start_us))
        tally.customer_weeks(self.customer, first_week, self.mailroom.sent)
        self.staff.count(tally)
        self.outcomes.count(tally, self.rules.churn_signals)
