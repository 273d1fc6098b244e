"""One customer's history through the rules, moment by moment, as live runs would go.

The live pieces are called as they are: facts from `engine.facts.derive_facts` (over
aggregates built in Python, see `aggregates.py`), matching by the compiled engine
(`engine.evaluate.Evaluator`), re-entry and the control group by
`storage.firings.admitted`, planning and idempotency keys by `actions.planning`, the
guards by `actions.guards.decide` with `actions.dispatch.recipient_for`. Only what live
keeps in tables is kept here, in memory, for this one customer: when each rule last
fired, the keys planned, open tasks, marketing delivered within the cap window.

The moments, in time order, and at one instant in this order:

1. *reactions* — event rules on each stored event at the moment it happened (the API
   reacts at once), on `step_due` events when their step comes due and on `task_overdue`
   when the SLA watch finds a task late (`staff.py`), facts as of that moment;
2. *evaluation* — at each step, the scheduled rules, facts as of the step;
3. *dispatch* — every message the moment it is due: sent (then it is a `contact` event
   of the history, which later facts see), deferred to the end of the quiet hours (and
   decided again then), or suppressed.

Customers never affect each other (every fact, guard and task is one customer's), so a
replay per customer gives what a replay of everyone step by step would.

A step only reaches the engine when the pure-Python condition evaluator
(`engine.trace.holds`, held equal to the engine by the test suite) finds a rule that
re-entry allows and whose conditions hold; the engine's answer is the one used.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actions.dispatch import recipient_for
from actions.guards import decide
from actions.planning import plan_firing
from engine.evaluate import Evaluator, Firing
from engine.facts import derive_facts
from engine.model import Rule, RuleSet
from rapport.backtest.aggregates import CustomerHistory
from rapport.backtest.drift import Drift, Snapshot
from rapport.backtest.history import CONTACT_PREFIX, CustomerRecord, Happening
from rapport.backtest.outcomes import Outcomes
from rapport.backtest.prefilter import Prefilter, Remembered
from rapport.backtest.staff import WATCH_DELAY_US, FeedbackItem, Staff
from rapport.backtest.tally import Group, Tally
from rapport.backtest.timeline import MICROSECOND, Window, from_us, to_us
from storage.events import event_fields
from storage.firings import admitted
from storage.planned import PlannedMessage, PlannedStep, PlannedTask

REACT, EVALUATE, DISPATCH = 0, 1, 2  # what happens first at one instant
CHURN_TAG = "churn_signal"


class Rules:
    """One revision, ready to replay: its compiled engine and what the replay asks of it."""

    def __init__(self, ruleset: RuleSet, prefilter: bool = True) -> None:
        self.ruleset = ruleset
        self.evaluator = Evaluator(ruleset)
        self.by_id = {rule.id: rule for rule in ruleset.rules}
        self.scheduled: tuple[Rule, ...] = tuple(r for r in ruleset.enabled if r.event is None)
        self.reacts_to = frozenset(r.event for r in ruleset.enabled if r.event is not None)
        self.churn_signals = tuple(r.id for r in ruleset.enabled if CHURN_TAG in r.tags)
        self.cap_window_us = ruleset.policy.cap_window // MICROSECOND
        self.prefilter = Prefilter(self.scheduled) if prefilter else None
        self.drift = Drift(ruleset.parameters)


@dataclass
class _Message:
    planned: PlannedMessage
    group: Group


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
        marketing_sent: list[int] | None = None,
    ) -> None:
        resolved, handled = handling
        self.rules, self.window, self.tally = rules, window, tally
        self.profile = record.profile
        self.customer = record.profile.id
        self.source = record.events
        self.history = CustomerHistory(
            record.profile, list(record.events), resolved, rules.ruleset.parameters
        )
        self.staff = Staff(handled)
        self.outcomes = Outcomes(
            [e.at for e in record.events if e.type == "purchase"], window, history_end
        )
        self.last: dict[tuple[str, str], datetime] = {
            (rule, self.customer): at for rule, at in (last_fired or {}).items()
        }
        self.marketing = list(marketing_sent or ())  # delivery times of marketing messages
        self.keys: set[str] = set()
        self.queue: list[tuple[int, int, int, Any]] = []
        self.order = itertools.count()
        self.sent: Counter[int] = Counter()  # messages sent per counted week
        self.row = record.profile.row()
        self._facts: tuple[int, int, dict[str, Any]] | None = None
        self._version = 0
        self._snapshot: Snapshot | None = None  # the prefilter's, moved forward by `Drift`
        self._drifted: dict[str, Any] = {}
        self._alive: list[tuple[Rule, Remembered]] = []
        self._moving: frozenset[str] = frozenset()

    def run(self) -> None:
        window, end = self.window, self.window.end_us
        created = self.profile.created_at
        first_event = self.source[0].at if self.source else None
        known = [moment for moment in (created, first_event) if moment is not None]
        begin = max(window.begin_us, min(known, default=window.begin_us))
        if begin >= end:
            return
        for event in self.source:
            if begin <= event.at < end:
                self._push(event.at, REACT, event)
        for step, moment in zip(window.steps_us, window.steps, strict=True):
            if step >= begin:
                self._push(step, EVALUATE, moment)
        while self.queue:
            at, phase, _, _ = self.queue[0]
            if at >= end:
                break
            if phase == REACT:
                self._react(at, self._take(at, REACT))
            elif phase == EVALUATE:
                self._evaluate(at, self._take(at, EVALUATE)[0])
            else:
                self._dispatch(at, self._take(at, DISPATCH))
        self._finish(begin)

    def _push(self, at: int, phase: int, item: Any) -> None:
        heapq.heappush(self.queue, (at, phase, next(self.order), item))

    def _take(self, at: int, phase: int) -> list[Any]:
        taken = []
        while self.queue and self.queue[0][:2] == (at, phase):
            taken.append(heapq.heappop(self.queue)[3])
        return taken

    def facts(self, at: int) -> dict[str, Any]:
        """The customer's facts as of `at`, as `storage.facts.iter_customer_facts` gives."""
        if self._facts is None or self._facts[:2] != (at, self._version):
            facts = derive_facts(
                self.history.aggregates(at), from_us(at), self.rules.ruleset.parameters
            )
            self._facts = (at, self._version, facts)
        return self._facts[2]

    # -------------------------------------------------------------------- reactions
    def _react(self, at: int, items: list[Any]) -> None:
        """Event rules on everything that happened or came due at `at`, in (time, id)
        order, all with the facts as of `at`, admitted as one batch (as live does)."""
        events: list[tuple[Happening, str | None]] = []  # with the feedback item each serves
        for item in items:
            if isinstance(item, int):  # the SLA watch's look at task number `item`
                overdue = self.staff.overdue(item, at)
                if overdue is None:
                    continue
                task = self.staff.tasks[item]
                self.tally.late_task(task.owner_role, self.window.week_of(at))
                events.append((overdue, task.item))
                continue
            if item.type == "feedback":
                self.staff.levels[item.id] = item.level
            if item.type == "feedback" and at >= self.window.start_us:
                week = self.window.week_of(at)
                self.staff.items[item.id] = FeedbackItem(week, item.level or "general")
            events.append((item, item.id if item.type == "feedback" else None))
        events = [pair for pair in events if pair[0].type in self.rules.reacts_to]
        if not events:
            return
        events.sort(key=lambda pair: (pair[0].at, pair[0].id))
        facts, moment = self.facts(at), from_us(at)
        firings = [
            firing
            for event, _ in events
            for firing in self.rules.evaluator.evaluate_event(
                facts, event_fields(event.row(self.customer)), moment
            )
        ]
        items_of = {event.id: item for event, item in events}
        self._apply(admitted(firings, self.rules.ruleset, self.last), at, facts, items_of)

    # ------------------------------------------------------------------- evaluation
    def _evaluate(self, at: int, moment: datetime) -> None:
        rules, last = self.rules, self.last
        if rules.prefilter is not None:
            foreseen = self._foresee(at, moment)
            if not any(
                holds(foreseen) and rule.admits(last.get((rule.id, self.customer)), moment)
                for rule, holds in self._alive
            ):
                return
        facts = self.facts(at)
        firings = rules.evaluator.evaluate(facts, moment)
        self._apply(admitted(firings, rules.ruleset, last), at, facts, {})

    def _foresee(self, at: int, moment: datetime) -> dict[str, Any]:
        """The prefilter's facts as of `at`: derived when the aggregates changed (then the
        rules whose static conditions fail are set aside), else moved forward by `Drift`."""
        aggregates = self.history.aggregates(at)
        if self._snapshot is None or not self._snapshot.reaches(at, aggregates):
            facts = self.facts(at)
            self._snapshot = Snapshot.of(at, facts, aggregates)
            self._drifted = dict(facts)
            assert self.rules.prefilter is not None
            self._alive, self._moving = self.rules.prefilter.alive(facts)
            return facts
        self.rules.drift.move(self._snapshot, at, moment, self._drifted, self._moving)
        return self._drifted

    def _apply(
        self, firings: list[Firing], at: int, facts: dict[str, Any], items: dict[str, str | None]
    ) -> None:
        """Records admitted firings and what they plan, as
        `rapport.services.scheduled.apply_firings` stores them: a key planned before is
        skipped, a held-out firing plans nothing."""
        week = self.window.week_of(at)
        group = (facts["tier"], facts["lifecycle_stage"], facts["segment"])
        for firing in firings:
            rule_id = firing.rule_id
            self.last[(rule_id, self.customer)] = firing.as_of
            self.tally.fired(
                rule_id, self.customer, firing.as_of, firing.event_id, firing.held_out, week, group
            )
            if rule_id in self.rules.churn_signals:
                self.outcomes.flag(rule_id, at)
            if firing.held_out:
                continue
            for planned in plan_firing(self.rules.by_id[rule_id], firing):
                if planned.key in self.keys:
                    continue
                self.keys.add(planned.key)
                if isinstance(planned, PlannedMessage):
                    self.tally.message(rule_id, "planned", week)
                    self._push(to_us(planned.due_at), DISPATCH, _Message(planned, group))
                elif isinstance(planned, PlannedTask):
                    task = self.staff.open(planned, items.get(firing.event_id or ""))
                    self.tally.task(rule_id, planned.owner_role, week, group)
                    if self.tally.journal is not None:
                        self.tally.journal.opened(planned)
                    self._push(task.due + WATCH_DELAY_US, REACT, task.number)
                elif isinstance(planned, PlannedStep):
                    self._push(to_us(planned.due_at), REACT, _step(planned))

    # --------------------------------------------------------------------- dispatch
    def _dispatch(self, at: int, messages: list[_Message]) -> None:
        """The guards on each message due at `at`, as the dispatcher applies them."""
        facts, moment = self.facts(at), from_us(at)
        recipient = recipient_for(self.row, facts)
        policy, since = self.rules.ruleset.policy, at - self.rules.cap_window_us
        for message in messages:
            planned, rule_id = message.planned, message.planned.rule_id
            recent = sum(1 for sent in self.marketing if sent > since)
            decision = decide(planned, recipient, policy, moment, recent)
            week = self.window.week_of(at)
            if self.tally.journal is not None:
                self.tally.journal.decided(planned.key, decision, moment)
            if decision.outcome == "suppress":
                self.tally.message(rule_id, f"suppressed:{decision.code}", week)
            elif decision.outcome == "defer":
                assert decision.send_at is not None
                self.tally.message(rule_id, "deferred", week)
                self._push(to_us(decision.send_at), DISPATCH, message)
            else:
                assert decision.channel is not None
                self._deliver(planned, decision.channel, at, moment, message.group)

    def _deliver(
        self, planned: PlannedMessage, channel: str, at: int, moment: datetime, group: Group
    ) -> None:
        """A sent message is a contact from now on (`storage.outbox.record_contact`)."""
        contact = Happening(
            at, moment, f"{CONTACT_PREFIX}{planned.key}", "contact", channel=channel
        )
        self.history.add(contact)
        self._version += 1
        if planned.purpose == "marketing":
            self.marketing.append(at)
        week = self.window.week_of(at)
        self.tally.sent(planned.rule_id, channel, week, group)
        if week >= 0:
            self.sent[week] += 1
        if "contact" in self.rules.reacts_to:
            self._push(at, REACT, contact)

    def _finish(self, begin: int) -> None:
        tally = self.tally
        tally.customers += 1
        tally.events += len(self.source)
        first_week = self.window.week_of(max(begin, self.window.start_us))
        tally.customer_weeks(self.customer, first_week, self.sent)
        for item in self.staff.items.values():
            tally.feedback[(item.week, item.level, "items")] += 1
            tally.feedback[(item.week, item.level, "owned")] += item.tasks > 0
            tally.feedback[(item.week, item.level, "breached")] += item.breached
        self.outcomes.count(tally, self.rules.churn_signals)


def _step(planned: PlannedStep) -> Happening:
    """The `step_due` event `storage.events.store_steps` records for a planned step."""
    due = to_us(planned.due_at)
    return Happening(
        due, from_us(due), f"step:{planned.key}", "step_due", attributes={"step": planned.step}
    )
