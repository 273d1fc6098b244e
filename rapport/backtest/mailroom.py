"""Messages in one customer's replay, from the moment they come due to what a sent one
leaves behind: the guards as the dispatcher applies them (`actions.guards.decide` with
`actions.dispatch.recipient_for`), a deferral to the end of the quiet hours, and for a
sent message a `contact` in the history (which later facts and `contact` rules see), a
frequency-cap count and a weekly count."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actions.dispatch import recipient_for
from actions.guards import Decision, decide
from rapport.backtest.agenda import DISPATCH, REACT, Agenda
from rapport.backtest.customer_facts import CustomerFacts
from rapport.backtest.history import Happening
from rapport.backtest.revision import Rules
from rapport.backtest.tally import Group, Tally
from rapport.backtest.timeline import Window, from_us, to_us
from storage.outbox import CONTACT_PREFIX
from storage.planned import PlannedMessage


@dataclass
class Message:
    """A planned message waiting in the agenda, with the customer's group when planned."""

    planned: PlannedMessage
    group: Group


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
        marketing_sent: list[int],
    ) -> None:
        self.rules, self.window, self.tally = rules, window, tally
        self.facts, self.agenda, self.row = facts, agenda, row
        self.marketing = marketing_sent  # delivery times of marketing messages
        self.sent: Counter[int] = Counter()

    def post(self, planned: PlannedMessage, group: Group) -> None:
        """A message just planned: the guards look at it when it comes due."""
        self.agenda.add(to_us(planned.due_at), DISPATCH, Message(planned, group))

    def dispatch(self, at: int, messages: list[Message]) -> None:
        """The guards on each message due at `at`, one after another (the frequency cap
        counts what was just sent)."""
        moment = from_us(at)
        recipient = recipient_for(self.row, self.facts.as_of(at))
        since = at - self.rules.cap_window_us
        for message in messages:
            recent = sum(1 for sent in self.marketing if sent > since)
            decision = decide(message.planned, recipient, self.rules.ruleset.policy, moment, recent)
            self._follow(decision, message, at, moment)

    def _follow(self, decision: Decision, message: Message, at: int, moment: datetime) -> None:
        planned, week = message.planned, self.window.week_of(at)
        if self.tally.journal is not None:
            self.tally.journal.decided(planned.key, decision, moment)
        if decision.outcome == "suppress":
            self.tally.message(planned.rule_id, f"suppressed:{decision.code}", week)
        elif decision.outcome == "defer":
            assert decision.send_at is not None
            self.tally.message(planned.rule_id, "deferred", week)
            self.agenda.add(to_us(decision.send_at), DISPATCH, message)
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
        if planned.purpose == "marketing":
            self.marketing.append(at)
        week = self.window.week_of(at)
        self.tally.sent(planned.rule_id, channel, week, group)
        if week >= 0:
            self.sent[week] += 1
        if "contact" in self.rules.reacts_to:
            self.agenda.add(at, REACT, contact)
