"""Evaluating customer facts (or one event) against a compiled revision of the rules.

`durable_rules` is used as a stateless matcher: each snapshot is asserted as a fact in
a throwaway session whose state is deleted right after, so memory stays flat however
many customers are evaluated. Nothing runs inside the engine: matches are read from
its action queue, and what a
firing does happens after `evaluate` returns, outside the engine.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import durable_rules_engine as native
from durable import engine as durable

from engine.compile import EVENT, SNAPSHOT, WARMUP_RULE, compile_rules, message_key
from engine.model import Action, AllOf, AnyOf, Comparison, Condition, FactRef, Not, RuleSet
from engine.service_levels import DEFAULT_LEVEL

_HOST: durable.Host | None = None
_REGISTERED: dict[str, str] = {}  # revision -> ruleset name in the host
_LOCK = threading.Lock()  # one evaluation at a time per process
_SESSIONS = itertools.count()


class EngineError(RuntimeError):
    """durable_rules refused a message."""


@dataclass(frozen=True)
class Firing:
    """One rule that matched one customer (or one of their events) as of a time."""

    rule_id: str
    customer_id: str
    revision: str
    as_of: datetime
    event_id: str | None
    values: dict[str, Any]
    actions: tuple[Action, ...]
    held_out: bool = False  # a control-group customer: recorded, but plans nothing
    # The triggering event's time and feedback level: deadlines count from when it
    # happened, on its level's clock (`engine.service_levels`).
    event_at: datetime | None = None
    level: str | None = None


class _MatcherHost(durable.Host):  # type: ignore[misc]
    """A host without durable_rules' background dispatch threads.

    Those threads poll every ruleset's action queue; here they would race `_match` for
    the queued matches and occasionally take them (seen: about 1 customer in 9,000
    lost every firing). Nothing here uses timers or asynchronous actions.
    """

    def _run(self) -> None:
        return None


def _host() -> durable.Host:
    """The process's single host."""
    global _HOST
    if _HOST is None:
        _HOST = _MatcherHost()
    return _HOST


class Evaluator:
    """Matches snapshots and events against one revision of the rules."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules = {rule.id: rule for rule in ruleset.enabled}
        self.order = {rule.id: (rule.priority, rule.id) for rule in ruleset.enabled}
        with _LOCK:
            name = _REGISTERED.get(ruleset.revision)
            if name is None:
                name = f"rapport_{ruleset.revision[:16]}"
                definition = compile_rules(ruleset.enabled)
                # durable_rules mutates what it registers: hand it a copy.
                _host().register_rulesets({name: copy.deepcopy(definition)})
                _host().assert_fact(name, {"sid": "warmup", "id": "warmup", "kind": WARMUP_RULE})
                _host().delete_state(name, "warmup")
                _REGISTERED[ruleset.revision] = name
        self.name = name
        self.handle = _host().get_ruleset(name)._handle
        self.has_schedule_rules = any(rule.event is None for rule in ruleset.enabled)
        self.reads = {rule.id: tuple(referenced(rule.when)) for rule in ruleset.enabled}
        # Only the facts some rule reads go to the engine: it re-parses the whole message
        # for every rule that fires, so a lean message is most of the speed.
        self.fact_keys = tuple(
            {
                name: None
                for names in self.reads.values()
                for name in names
                if not name.startswith("event.")
            }
        )

    def _message(self, facts: dict[str, Any]) -> dict[str, Any]:
        return {key: facts[key] for key in self.fact_keys if facts.get(key) is not None}

    def evaluate(self, facts: dict[str, Any], as_of: datetime) -> list[Firing]:
        """The scheduled rules that fire for one customer snapshot."""
        if not self.has_schedule_rules:
            return []
        message = self._message(facts)
        message["kind"] = SNAPSHOT
        return self._firings(self._match(message), facts, as_of, None)

    def evaluate_event(
        self, facts: dict[str, Any], event: dict[str, Any], as_of: datetime
    ) -> list[Firing]:
        """The rules triggered by `event` (with `type`, `id`, its fields and, when known,
        `occurred_at`) for its customer."""
        fields = {
            f"event_{key}": value
            for key, value in event.items()
            if key not in ("id", "type", "customer_id", "occurred_at") and value is not None
        }
        message = self._message(facts)
        message.update(fields, kind=EVENT, event_type=event["type"])
        values = {**facts, **fields}
        level = event.get("level") or (DEFAULT_LEVEL if event["type"] == "feedback" else None)
        return self._firings(
            self._match(message), values, as_of, str(event["id"]), event.get("occurred_at"), level
        )

    def _match(self, message: dict[str, Any]) -> list[str]:
        """The rules `message` matches, read straight from the engine's action queue.

        durable_rules' Python layer decodes the state and the whole message for every
        action it runs; the rules here only need the rule's name, so the queue is
        drained through the same C calls without that work (a third of the time).
        """
        with _LOCK:
            sid = f"s{next(_SESSIONS)}"
            message.update(sid=sid, id="subject")
            matched: list[str] = []
            try:
                code, state = native.assert_fact(
                    self.handle, json.dumps(message, ensure_ascii=False)
                )
                if code == 0:  # 1: no rule matched, the normal "nothing fired"
                    pending = native.start_action_for_state(self.handle, state)
                    action = pending[1] if pending else None
                    while action:  # '{"rule_id":{"m":{...}}}'
                        matched.append(action[2 : action.index('"', 2)])
                        action = native.complete_and_start_action(self.handle, state)
                elif code != 1:
                    raise EngineError(f"durable_rules refused the message (code {code})")
            finally:
                native.delete_state(self.handle, sid)
            return matched

    def _firings(
        self,
        matched: list[str],
        values: dict[str, Any],
        as_of: datetime,
        event_id: str | None,
        event_at: datetime | None = None,
        level: str | None = None,
    ) -> list[Firing]:
        firings = []
        for rule_id in sorted(set(matched), key=self.order.__getitem__):
            rule = self.rules[rule_id]
            firings.append(
                Firing(
                    rule_id=rule_id,
                    customer_id=str(values["customer_id"]),
                    revision=self.ruleset.revision,
                    as_of=as_of,
                    event_id=event_id,
                    values={key: values.get(message_key(key)) for key in self.reads[rule_id]},
                    actions=rule.actions,
                    event_at=event_at,
                    level=level,
                )
            )
        return firings


def referenced(condition: Condition) -> list[str]:
    """Every fact or event field a condition reads, in order of first mention."""
    names: dict[str, None] = {}

    def visit(node: Condition) -> None:
        if isinstance(node, Comparison):
            names[node.subject] = None
            if isinstance(node.operand, FactRef):
                names[node.operand.fact] = None
        elif isinstance(node, AllOf | AnyOf):
            for item in node.items:
                visit(item)
        elif isinstance(node, Not):
            visit(node.item)

    visit(condition)
    return list(names)
