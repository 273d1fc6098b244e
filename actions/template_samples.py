"""The sample customers `rapport rules check` renders a rule's templates for.

A template can branch on anything in its context, so one sample customer checks one
path through it: a variable misspelt in `{% if customer.tier == "base" %}` passes a
check with a mid-tier sample and fails at send time for every base-tier customer. The
samples here are every combination of tier × segment × language × account manager,
each once with every value present and once with every optional value missing (no
name, no suggestions, nullable facts and event fields none); lifecycle stages and the
choices of the trigger's event fields are spread over them, so each value appears.

Only what can reach the template is sampled: a value the rule's conditions rule out
(`tier: high` excludes base and mid) is left out, and a fact the rule compares is
never none — its customers have it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from typing import Any

from engine.facts import FACTS, SEGMENTS, STAGES, TIERS, FactType
from engine.model import AllOf, Comparison, Condition, Rule
from engine.ruletests import BASELINE
from engine.vocabulary import EVENT_TYPES

_SAMPLES: dict[FactType, Any] = {
    FactType.INTEGER: 3,
    FactType.NUMBER: 128.5,
    FactType.STRING: "sample",
    FactType.BOOLEAN: True,
    FactType.DATE: "2026-06-01",
}
_NULLABLE = frozenset(fact.name for fact in FACTS if fact.nullable)


def sample_context(event: str | None) -> dict[str, Any]:
    """What a template of a rule with this trigger gets, with plausible values."""
    context: dict[str, Any] = {
        "customer": {
            "id": "C000001",
            "name": "王芳",
            "locale": "zh-CN",
            "segment": "consumer",
            "tier": "mid",
            "stage": "established",
            "account_manager": "li.na",
        },
        "facts": {fact.name: BASELINE.get(fact.name, _SAMPLES[fact.type]) for fact in FACTS},
        "suggestions": ["grinder", "milk-frother"],
        "company": {"name": "Rapport", "service_phone": "400-000-0000", "website": "example.com"},
        "unsubscribe_url": "https://example.com/unsubscribe?token=sample",
    }
    if event == "feedback":
        context["reply_by"] = "11月30日（星期一）10:00"
    if event is not None:
        context["event"] = {
            field.name: (field.choices[0] if field.choices else _SAMPLES[field.type])
            for field in EVENT_TYPES[event].fields
        }
    return context


@dataclass(frozen=True)
class Sample:
    """One sample customer: the context, and how to name it in a problem."""

    context: dict[str, Any]
    label: str


def sample_contexts(rule: Rule, locales: tuple[str, ...]) -> Iterator[Sample]:
    """The contexts a template of `rule` is rendered against (see the module docstring)."""
    required = _required(rule.when)
    tiers, segments = _allowed(required, "tier", TIERS), _allowed(required, "segment", SEGMENTS)
    languages = _allowed(required, "locale", locales)
    managed = _allowed(required, "has_account_manager", (True, False))
    stages = _allowed(required, "lifecycle_stage", STAGES)
    fields = EVENT_TYPES[rule.event].fields if rule.event else ()
    choices = {
        f.name: _allowed(required, f"event.{f.name}", f.choices) for f in fields if f.choices
    }
    combinations = product(tiers, segments, languages, managed, (False, True))
    for index, (tier, segment, locale, manager, sparse) in enumerate(combinations):
        context = sample_context(rule.event)
        stage = stages[index % len(stages)]
        customer = context["customer"]
        customer.update(tier=tier, segment=segment, locale=locale, stage=stage)
        customer["account_manager"] = "li.na" if manager else ""
        facts = context["facts"]
        facts.update(tier=tier, segment=segment, locale=locale, lifecycle_stage=stage)
        facts["has_account_manager"] = manager
        event = context.get("event", {})
        for name, values in choices.items():
            event[name] = values[index % len(values)]
        if sparse:
            customer["name"] = ""
            context["suggestions"] = []
            for name in _NULLABLE - required.keys():
                facts[name] = None
            for name in event.keys() - choices.keys():
                if f"event.{name}" not in required:
                    event[name] = None
        described = [tier, segment, locale, stage]
        described += [f"{name} {event[name]}" for name in choices]
        described += ["an account manager" if manager else "no account manager"]
        described += ["optional values missing"] if sparse else []
        yield Sample(context, ", ".join(described))


def _required(condition: Condition) -> dict[str, list[Comparison]]:
    """The comparisons every customer the rule reaches satisfies, by subject."""
    found: dict[str, list[Comparison]] = {}
    pending: list[Condition] = [condition]
    while pending:
        item = pending.pop()
        if isinstance(item, AllOf):
            pending.extend(item.items)
        elif isinstance(item, Comparison) and not (item.op == "exists" and not item.operand):
            found.setdefault(item.subject, []).append(item)
    return found


def _allowed(
    required: dict[str, list[Comparison]], subject: str, values: tuple[Any, ...]
) -> tuple[Any, ...]:
    """`values` less those the rule's comparisons on `subject` rule out (all of them
    if the comparisons leave none, so the template is still checked)."""
    kept = list(values)
    for comparison in required.get(subject, []):
        operand = comparison.operand
        if comparison.op == "eq":
            kept = [v for v in kept if v == operand]
        elif comparison.op == "in":
            kept = [v for v in kept if v in operand]
        elif comparison.op == "ne":
            kept = [v for v in kept if v != operand]
        elif comparison.op == "not_in":
            kept = [v for v in kept if v not in operand]
    return tuple(kept) or values
