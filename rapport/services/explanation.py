"""Why each rule fires or not for one customer: the data behind `rapport explain` and
`GET /customers/{id}/explain`, computed once, shown twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from actions.dispatch import recipient_for
from actions.guards import decide
from engine.model import RuleSet
from engine.trace import Check, explain_rule
from storage.customers import customer_rows
from storage.facts import facts_of
from storage.firings import last_fired
from storage.outbox import capped_sent_since


@dataclass(frozen=True)
class GuardDecision:
    """What the guards would do with a message the rule plans."""

    template: str
    outcome: str
    reason: str


@dataclass(frozen=True)
class RuleExplanation:
    rule_id: str
    description: str
    enabled: bool
    state: str  # fired, not fired, held back by re-entry, waits for an event, or held out
    event: str | None  # the event type an event rule waits for
    checks: tuple[Check, ...]
    guards: tuple[GuardDecision, ...]


@dataclass(frozen=True)
class Explanation:
    customer_id: str
    as_of: datetime
    revision: str
    rules: tuple[RuleExplanation, ...]


@dataclass(frozen=True)
class _Message:
    """What the guards read of a message a rule would plan."""

    purpose: str
    channels: tuple[str, ...]


def explain_customer(
    engine: Engine,
    ruleset: RuleSet,
    customer_id: str,
    as_of: datetime,
    event: dict[str, Any] | None = None,
) -> Explanation | None:
    """Every rule for this customer as of `as_of` (None: no such customer). Event rules
    are evaluated only for `event`, a dict with its `type` and fields."""
    with engine.connect() as connection:
        facts = facts_of(connection, as_of, ruleset.parameters, customer_id)
        customer = customer_rows(connection, [customer_id]).get(customer_id)
        policy = ruleset.policy
        since = as_of - policy.cap_window
        capped = capped_sent_since(connection, [customer_id], since, policy.cap_counts)
        capped_sent = capped.get(customer_id, 0)
        history = last_fired(connection, [customer_id])
    if facts is None or customer is None:
        return None
    values = dict(facts)
    if event:
        values.update({f"event_{k}": v for k, v in event.items() if k != "type"})
    recipient = recipient_for(customer, facts)
    explained = []
    for rule in ruleset.rules:
        if rule.event is not None and (event is None or event.get("type") != rule.event):
            explained.append(
                RuleExplanation(
                    rule.id,
                    rule.description,
                    rule.enabled,
                    "waits for an event",
                    rule.event,
                    (),
                    (),
                )
            )
            continue
        fired, checks = explain_rule(rule, values)
        fired = fired and rule.enabled
        guards = tuple(
            GuardDecision(
                action.params["template"],
                *_decision(action.params, recipient, ruleset, as_of, capped_sent),
            )
            for action in rule.actions
            if fired and action.name == "send_message"
        )
        state = "fired" if fired else "not fired"
        last = history.get((rule.id, customer_id))
        if fired and not rule.admits(last, as_of):
            # what `admit` does for an evaluation: re-entry holds the match back
            assert last is not None
            state, guards = f"held back by re-entry: last fired {last.isoformat()}", ()
        elif fired and ruleset.holds_out(rule.id, customer_id):
            state, guards = "fired, held out (control group: plans nothing)", ()
        explained.append(
            RuleExplanation(
                rule.id, rule.description, rule.enabled, state, rule.event, tuple(checks), guards
            )
        )
    return Explanation(customer_id, as_of, ruleset.revision, tuple(explained))


def _decision(
    params: dict[str, Any], recipient: Any, ruleset: RuleSet, as_of: datetime, sent: int
) -> tuple[str, str]:
    message = _Message(params["purpose"], tuple(params["channels"] or ()))
    decision = decide(message, recipient, ruleset.policy, as_of, sent)
    return decision.outcome, decision.reason
