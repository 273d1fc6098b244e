"""Firings in one customer's replay, recorded and planned as
`rapport.services.scheduled.apply_firings` stores them: re-entry and the control group
by `storage.firings.admitted`, planning and idempotency keys by `actions.planning`. A
key planned before is skipped (unless a hold suppressed it and gave re-entry back:
then it is planned again, `storage.outbox.replan`); a held-out firing plans nothing. A
firing whose every message a hold suppressed stops counting for re-entry, as
`storage.firings.give_back` marks it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from actions.planning import plan_firing
from engine.evaluate import Firing
from engine.model import Rule
from rapport.backtest.agenda import REACT, Agenda
from rapport.backtest.mailroom import Mailroom, step_due
from rapport.backtest.outcomes import Outcomes
from rapport.backtest.revision import Rules
from rapport.backtest.staff import WATCH_DELAY_US, Staff
from rapport.backtest.tally import Group, Tally
from rapport.backtest.timeline import to_us
from storage.firings import admitted
from storage.planned import Planned, PlannedMessage, PlannedStep, PlannedTask


class Planner:
    """What one customer's firings leave behind. Keeps in memory what live keeps in
    tables: when each rule last fired (re-entry) and the keys planned."""

    def __init__(
        self,
        rules: Rules,
        customer: str,
        tally: Tally,
        staff: Staff,
        outcomes: Outcomes,
        mailroom: Mailroom,
        agenda: Agenda,
        last_fired: dict[str, datetime] | None,
    ) -> None:
        self.rules, self.customer, self.tally = rules, customer, tally
        self.staff, self.outcomes, self.mailroom, self.agenda = staff, outcomes, mailroom, agenda
        self.last: dict[tuple[str, str], datetime] = {
            (rule, customer): at for rule, at in (last_fired or {}).items()
        }
        self.counted: dict[str, list[datetime]] = {  # per rule: the firings re-entry counts
            rule: [at] for rule, at in (last_fired or {}).items()
        }
        self.keys: set[str] = set()
        self.outstanding: dict[str, _Fired] = {}  # by message key: the firing that planned it
        mailroom.on_suppressed = self.suppressed

    def admits_any(self, rules: Iterable[Rule], moment: datetime) -> bool:
        """Whether re-entry lets any of `rules` fire again at `moment`."""
        return any(rule.admits(self.last.get((rule.id, self.customer)), moment) for rule in rules)

    def apply(
        self, firings: list[Firing], at: int, week: int, group: Group, items: dict[str, str | None]
    ) -> None:
        """Records the firings re-entry admits and plans what they ask for (`items`: the
        feedback item each triggering event serves)."""
        for firing in admitted(firings, self.rules.ruleset, self.last):
            self._record(firing, at, week, group)
            if firing.held_out:
                continue
            fired = _Fired(firing.rule_id, firing.as_of)
            rule = self.rules.by_id[firing.rule_id]
            for planned in plan_firing(rule, firing, self.rules.ruleset.policy.service_levels):
                if planned.key not in self.keys:
                    self.keys.add(planned.key)
                    if isinstance(planned, PlannedMessage):
                        fired.messages.add(planned.key)
                        self.outstanding[planned.key] = fired
                    self._plan(planned, items.get(firing.event_id or ""), week, group)

    def suppressed(self, key: str, held: bool) -> None:
        """The mailroom suppressed message `key` (`held`: by a hold): once a hold leaves
        nothing of its firing outstanding, the firing stops counting for re-entry and the
        message may be planned again."""
        fired = self.outstanding.pop(key, None)
        if fired is None:
            return
        fired.messages.discard(key)
        if not held:
            return
        self.keys.discard(key)
        if not fired.messages:
            counted = self.counted[fired.rule_id]
            counted.remove(fired.as_of)
            if counted:
                self.last[(fired.rule_id, self.customer)] = max(counted)
            else:
                del self.last[(fired.rule_id, self.customer)]

    def _record(self, firing: Firing, at: int, week: int, group: Group) -> None:
        rule_id = firing.rule_id
        self.last[(rule_id, self.customer)] = firing.as_of
        self.counted.setdefault(rule_id, []).append(firing.as_of)
        self.tally.fired(
            rule_id, self.customer, firing.as_of, firing.event_id, firing.held_out, week, group
        )
        if rule_id in self.rules.churn_signals:
            self.outcomes.flag(rule_id, at)

    def _plan(self, planned: Planned, item: str | None, week: int, group: Group) -> None:
        """A newly planned message, task or step onto the agenda."""
        if isinstance(planned, PlannedMessage):
            self.tally.message(planned.rule_id, "planned", week)
            self.mailroom.post(planned, group)
        elif isinstance(planned, PlannedTask):
            task = self.staff.open(planned, item)
            self.tally.task(planned.rule_id, planned.owner_role, week, group)
            if self.tally.journal is not None:
                self.tally.journal.opened(planned)
            self.agenda.add(task.due + WATCH_DELAY_US, REACT, task.number)
        elif isinstance(planned, PlannedStep):
            self.agenda.add(to_us(planned.due_at), REACT, step_due(planned))


@dataclass
class _Fired:
    """A firing re-entry counts, with its messages not suppressed yet."""

    rule_id: str
    as_of: datetime
    messages: set[str] = field(default_factory=set)
