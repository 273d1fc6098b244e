"""Rule tests as data: `rules/tests/*.yaml` cases of given facts, expected firings.

A case starts from `BASELINE`, an established mid-tier customer, overrides the facts
it names, optionally adds an event, and lists the rules that must and must not fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from engine.conditions import PYTHON_TYPES
from engine.evaluate import Evaluator
from engine.facts import FACTS, FACTS_BY_NAME, PRODUCT_PURCHASES, FactType, fact_named
from engine.model import RuleSet
from engine.problems import Problem, did_you_mean
from engine.schema import fact_value
from engine.vocabulary import EVENT_TYPES
from engine.yamlsource import Source, parse, rule_files

AS_OF = datetime(2026, 6, 30, 9, 0, tzinfo=UTC)

BASELINE: dict[str, Any] = {
    "customer_id": "TEST-1",
    "segment": "consumer",
    "locale": "zh-CN",
    "has_account_manager": False,
    "consent_email": True,
    "consent_sms": True,
    "consent_wechat": True,
    "consent_app": True,
    "has_online_consent": True,
    "spend_12m": 20_000.0,
    "orders_12m": 8,
    "tier": "mid",
    "lifetime_spend": 32_000.0,
    "lifetime_orders": 12,
    "lifecycle_stage": "established",
    "first_purchase_on": "2025-04-02",
    "last_purchase_on": "2026-06-10",
    "days_since_first_purchase": 454,
    "days_since_last_purchase": 20,
    "usual_purchase_gap_days": 40.0,
    "purchase_overdue_ratio": 0.5,
    "purchases_recent": 2,
    "purchases_previous": 2,
    "avg_order_value_recent": 2_500.0,
    "avg_order_value_previous": 2_400.0,
    "logins_30d": 6,
    "logins_prev_30d": 6,
    "days_since_contact_email": 3,
    "days_since_contact_sms": None,
    "days_since_contact_wechat": 3,
    "days_since_contact_app": None,
    "days_since_contact_phone": 10,
    "days_since_contact_visit": None,
    "days_since_online_contact": 3,
    "days_since_personal_contact": 10,
    "days_since_any_contact": 3,
    "open_feedback_general": 0,
    "open_feedback_complex": 0,
    "open_feedback_major": 0,
    "open_complaints": 0,
    "complaints_recent": 0,
    "days_since_complaint": None,
    "last_survey_score": 9,
    "days_since_survey": 20,
    "is_birthday": False,
    "holiday": None,
    "is_first_purchase_anniversary": False,
    "years_since_first_purchase": 1,
}


CASE_KEYS = ("name", "facts", "event", "fires", "not_fires")


@dataclass(frozen=True)
class CaseResult:
    path: str
    line: int
    name: str
    failures: tuple[str, ...]
    fired: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Case:
    path: str
    line: int
    name: str
    facts: dict[str, Any]
    event: dict[str, Any] | None
    fires: tuple[str, ...]
    not_fires: tuple[str, ...]


def load_cases(directory: Path, ruleset: RuleSet) -> tuple[list[Case], list[Problem]]:
    """Every case under `directory`, validated against the facts and the ruleset."""
    cases: list[Case] = []
    problems: list[Problem] = []
    for path in rule_files(directory) if directory.is_dir() else []:
        source = Source(str(path))
        document = parse(source, path.read_bytes())
        if isinstance(document, CommentedMap) and isinstance(document.get("cases"), CommentedSeq):
            for index, node in enumerate(document["cases"]):
                case = _case(
                    source, node, Source.of(node, Source.item(document["cases"], index)), ruleset
                )
                if case is not None:
                    cases.append(case)
        elif document is not None:
            source.error(Source.of(document), "wrong-type", "a test file holds `cases:`, a list")
        problems.extend(source.problems)
    return cases, problems


def _case(source: Source, node: Any, at: tuple[int, int], ruleset: RuleSet) -> Case | None:
    before = len(source.problems)
    if not isinstance(node, CommentedMap) or "name" not in node:
        source.error(at, "missing-key", "a case is a mapping with name, facts, fires, not_fires")
        return None
    source.unknown_keys(node, CASE_KEYS, "case key")
    facts = dict(node.get("facts") or {})
    for name, value in facts.items():
        fact = fact_named(str(name))
        if fact is None:
            source.error(
                Source.key(node["facts"], name),
                "unknown-fact",
                f"unknown fact {name!r}{did_you_mean(str(name), FACTS_BY_NAME)}",
            )
        elif (
            value is None
            and not fact.nullable
            or value is not None
            and (
                not isinstance(value, PYTHON_TYPES[fact.type])
                or isinstance(value, bool)
                and fact.type is not FactType.BOOLEAN
            )
        ):
            source.error(
                Source.value(node["facts"], name),
                "wrong-type",
                f"{name!r} is {fact.type}; {value!r} is not",
            )
    event = dict(node["event"]) if isinstance(node.get("event"), CommentedMap) else None
    if event is not None:
        _check_event(source, node["event"], event)
    known = {rule.id for rule in ruleset.rules}
    expected: dict[str, tuple[str, ...]] = {}
    for key in ("fires", "not_fires"):
        ids = tuple(str(i) for i in node.get(key) or ())
        for rule_id in ids:
            if rule_id not in known:
                source.error(
                    Source.value(node, key),
                    "unknown-key",
                    f"no rule {rule_id!r}{did_you_mean(rule_id, known)}",
                )
        expected[key] = ids
    if len(source.problems) != before:
        return None
    return Case(
        source.path,
        at[0],
        str(node["name"]),
        {**BASELINE, **facts},
        {"id": "test-event", **event} if event else None,
        expected["fires"],
        expected["not_fires"],
    )


def _check_event(source: Source, node: CommentedMap, event: dict[str, Any]) -> None:
    """An event in a case names a known type and only that type's fields, well typed."""
    kind = EVENT_TYPES.get(str(event.get("type")))
    if kind is None:
        hint = did_you_mean(str(event.get("type")), EVENT_TYPES)
        source.error(
            Source.of(node), "unknown-event", f"unknown event type {event.get('type')!r}{hint}"
        )
        return
    fields = {field.name: field for field in kind.fields}
    for name, value in event.items():
        if name == "type":
            continue
        field = fields.get(str(name))
        if field is None:
            hint = did_you_mean(str(name), fields)
            source.error(
                Source.key(node, name),
                "unknown-field",
                f"a {kind.name} event has no field {name!r}{hint}",
            )
        elif not isinstance(value, PYTHON_TYPES[field.type]) or (
            field.choices and value not in field.choices
        ):
            source.error(
                Source.value(node, name),
                "wrong-type",
                f"event field {name!r} is {field.type}; {value!r} does not fit",
            )


def run_case(case: Case, evaluator: Evaluator) -> CaseResult:
    if case.event is None:
        firings = evaluator.evaluate(case.facts, AS_OF)
    else:
        firings = evaluator.evaluate_event(case.facts, case.event, AS_OF)
    fired = tuple(firing.rule_id for firing in firings)
    failures = [f"expected {rule_id} to fire" for rule_id in case.fires if rule_id not in fired]
    failures += [
        f"expected {rule_id} not to fire" for rule_id in case.not_fires if rule_id in fired
    ]
    return CaseResult(case.path, case.line, case.name, tuple(failures), fired)


def untested_rules(cases: list[Case], ruleset: RuleSet) -> list[str]:
    """Enabled rules that no case expects to fire."""
    covered = {rule_id for case in cases for rule_id in case.fires}
    return [rule.id for rule in ruleset.enabled if rule.id not in covered]


def rule_test_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a rule-test file, from what `load_cases` accepts:
    the case keys, every fact by its type (null where the fact may be missing), and
    each event type with its own fields (`rapport rules schema --tests`)."""

    def nullable(schema: dict[str, Any], allowed: bool) -> dict[str, Any]:
        return {"anyOf": [schema, {"type": "null"}]} if allowed else schema

    facts = {
        fact.name: {**nullable(fact_value(fact), fact.nullable), "description": fact.description}
        for fact in FACTS
    }
    events = [
        {
            "type": "object",
            "description": event.description,
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": event.name},
                **{field.name: fact_value(field) for field in event.fields},
            },
        }
        for event in EVENT_TYPES.values()
    ]
    rule_ids = {"type": "array", "items": {"type": "string"}}
    case = {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "facts": {
                "type": "object",
                "description": "Facts that differ from the baseline customer (BASELINE).",
                "properties": facts,
                "patternProperties": {  # e.g. product_purchases[coffee-beans,180d]
                    r"^product_purchases\[[^,\[\]]+,[0-9]+d\]$": fact_value(PRODUCT_PURCHASES)
                },
                "additionalProperties": False,
            },
            "event": {"oneOf": events},
            "fires": rule_ids | {"description": "Rules that must fire."},
            "not_fires": rule_ids | {"description": "Rules that must not fire."},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Rapport rule tests",
        "type": "object",
        "required": ["cases"],
        "additionalProperties": False,
        "properties": {"cases": {"type": "array", "items": case}},
    }
