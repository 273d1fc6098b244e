"""Messages in one customer's replay, from the moment they come due to what a sent one
leaves behind: the guards as the dispatcher applies them (`actions.guards.decide` with
`actions.dispatch.recipient_for`), a deferral (to the end of the quiet hours, or while a
complaint holds it: until the complaint is resolved, as `storage.outbox.wake_held`
wakes it, or the hold's limit), and for a sent message a `contact` in the history
(which later facts and `contact` rules see), a frequency-cap count and a weekly count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actions.dispatch import recipient_for
from actions.guards import HOLDS, OPEN_COMPLAINT, Decision, decide
from actions.planning import steps_after_sending
from rapport.backtest.agenda import DISPATCH, REACT, Agenda
from rapport.backtest.customer_facts import CustomerFacts
from rapport.backtest.history import Happening
from rapport.backtest.revision import Rules
from rapport.backtest.tally import Group, Tally
from rapport.backtest.timeline import Window, from_us, to_us
from storage.outbox import CONTACT_PREFIX
from storage.planned import PlannedMessage, PlannedStep


@dataclass
class Message:
    """A planned message waiting in the agenda, with the customer's group when planned;
    `due` is its slot in the agenda (a woken message leaves an older slot behind)."""

    planned: PlannedMessage
    group: Group
    due: int = 0
    held_since: datetime | None = None  # when an open complaint first held it


class Mailroom:
    """The dispatcher for one customer; `sent` counts messages sent per counted week."""

    def __init__(
        self,
        rules: Rules,
        window: Window,
        tally: Tally,
        facts: CustomerFacts,
        agenda: Agenda,
        row: dict[str, Any],
        capped_sent: list[int],
    ) -> None:
        self.rules, self.window, self.tally = rules, window, tally
        self.facts, self.agenda, self.row = facts, agenda, row
        self.capped = capped_sent  # delivery times of messages the cap counts
        self.sent: Counter[int] = Counter()
        self.held: dict[str, Message] = {}  # by key: what an open complaint holds
        # told of every suppression (the key, and whether a hold did it): re-entry
        self.on_suppressed: Callable[[str, bool], None] = lambda key, held: None

    def post(self, planned: PlannedMessage, group: Group) -> None:
        """A message just planned: the guards look at it when it comes due."""
        self._queue(Message(planned, group), to_us(planned.due_at))

    def wake(self, at: int) -> None:
        """A complaint was resolved at `at`: with none open any more, the held messages
        are decided again at once (`storage.outbox.wake_held`)."""
        if self.held and self.facts.as_of(at)["open_complaints"] == 0:
            for message in self.held.values():
                self._queue(message, at)
            self.held.clear()

    def dispatch(self, at: int, messages: list[Message]) -> None:
        """The guards on each message due at `at`, one after another (the frequency cap
        counts what was just sent)."""
        messages = [message for message in messages if message.due == at]
        if not messages:
            return
        moment = from_us(at)
        recipient = recipient_for(self.row, self.facts.as_of(at))
        since = at - self.rules.cap_window_us
        for message in messages:
            self.held.pop(message.planned.key, None)
            recent = sum(1 for sent in self.capped if sent > since)
            decision = decide(
                message.planned,
                recipient,
                self.rules.ruleset.policy,
                moment,
                recent,
                message.held_since,
            )
            self._follow(decision, message, at, moment)

    def _queue(self, message: Message, at: int) -> None:
        message.due = at
        self.agenda.add(at, DISPATCH, message)

    def _follow(self, decision: Decision, message: Message, at: int, moment: datetime) -> None:
        planned, week = message.planned, self.window.week_of(at)
        if self.tally.journal is not None:
            self.tally.journal.decided(planned.key, decision, moment)
        if decision.outcome == "suppress":
            self.tally.message(planned.rule_id, f"suppressed:{decision.code}", week)
            self.on_suppressed(planned.key, decision.code in HOLDS)
        elif decision.outcome == "defer":
            assert decision.send_at is not None
            self.tally.message(planned.rule_id, "deferred", week)
            if decision.code == OPEN_COMPLAINT:
                message.held_since = message.held_since or moment
                self.held[planned.key] = message
            self._queue(message, to_us(decision.send_at))
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
        self.facts.add_contact(contact)
        if planned.purpose in self.rules.ruleset.policy.cap_counts:
            self.capped.append(at)
        week = self.window.week_of(at)
        self.tally.sent(planned.rule_id, channel, week, group)
        if week >= 0:
            self.sent[week] += 1
        if "contact" in self.rules.reacts_to:
            self.agenda.add(at, REACT, contact)
        rule = self.rules.by_id.get(planned.rule_id)
        for step in (
            steps_after_sending(rule, planned.key, planned.customer_id, moment) if rule else ()
        ):
            self.agenda.add(to_us(step.due_at), REACT, step_due(step))


def step_due(planned: PlannedStep) -> Happening:
    """The `step_due` event `storage.events.store_steps` records for a planned step."""
    due = to_us(planned.due_at)
    return Happening(
        due, from_us(due), f"step:{planned.key}", "step_due", attributes={"step": planned.step}
    )
