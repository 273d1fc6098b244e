"""The JSON Schema of rule files, generated from the vocabulary (`rapport rules schema`).

Editors use the committed `rules/rules.schema.json` for completion and inline checks;
the loader stays the authority (it also knows positions, contradictions, templates).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from engine.care_calendar import DEFAULT_COUNTRY
from engine.facts import (
    DERIVED_PARAMETERS,
    FACT_PARAMETERS,
    FACTS,
    MESSAGE_CHANNELS,
    PARAMETERISED_FACTS,
    Fact,
    FactParameters,
    FactType,
)
from engine.measure_settings import MAX_CONTROL_PERCENT
from engine.policy import CAPPABLE
from engine.service_levels import CLOCKS, TARGETS, WEEKDAYS
from engine.vocabulary import (
    ACTIONS,
    EVENT_TYPES,
    FEEDBACK_LEVELS,
    OPERATORS,
    RULE_ID_PATTERN,
    TAG_PATTERN,
    ActionSpec,
    Operand,
    ParamType,
)

_JSON_TYPES = {
    FactType.INTEGER: "integer",
    FactType.NUMBER: "number",
    FactType.STRING: "string",
    FactType.BOOLEAN: "boolean",
    FactType.DATE: "string",
}
DURATION = {
    "type": "string",
    "pattern": "^[1-9][0-9]{0,4}[mhdw]$",
    "description": "A duration such as 30m, 1h, 24h, 7d or 2w.",
}


def fact_value(fact: Fact) -> dict[str, Any]:
    """One value of `fact`'s type (and choices); rule files and rule tests both use it."""
    schema: dict[str, Any] = {"type": _JSON_TYPES[fact.type]}
    if fact.choices:
        schema["enum"] = list(fact.choices)
    return schema


def _operand(fact: Fact, kind: Operand) -> dict[str, Any]:
    value = fact_value(fact)
    if kind is Operand.FLAG:
        return {"type": "boolean"}
    if kind is Operand.RANGE:
        return {"type": "array", "prefixItems": [value, value], "minItems": 2, "maxItems": 2}
    if kind is Operand.LIST:
        return {"type": "array", "items": value, "minItems": 1}
    if fact.type in (FactType.INTEGER, FactType.NUMBER):
        return {"anyOf": [value, {"$ref": "#/$defs/fact_reference"}]}
    return value


def _subject(fact: Fact) -> dict[str, Any]:
    operators = {
        op.name: {**_operand(fact, op.operand), "description": op.description}
        for op in OPERATORS.values()
        if fact.type in op.types
    }
    description = f"{fact.description} ({fact.type}{', ' + fact.unit if fact.unit else ''})"
    return {
        "description": description,
        "anyOf": [
            fact_value(fact),
            {
                "type": "object",
                "properties": operators,
                "additionalProperties": False,
                "minProperties": 1,
            },
        ],
    }


def _parameterised(fact: Fact) -> dict[str, Any]:
    """A fact named with parameters: `{product: ID, within: 90d}` beside its operators."""
    subject = _subject(fact)
    operators = subject["anyOf"][1]
    parameters = {
        "product": {"type": "string", "minLength": 1, "description": FACT_PARAMETERS["product"]},
        "within": {"$ref": "#/$defs/duration", "description": FACT_PARAMETERS["within"]},
    }
    return {
        "description": subject["description"],
        **operators,
        "properties": {**parameters, **operators["properties"]},
        "required": list(FACT_PARAMETERS),
        "minProperties": len(FACT_PARAMETERS) + 1,
    }


def _param(kind: ParamType, choices: tuple[str, ...]) -> dict[str, Any]:
    if kind is ParamType.DURATION:
        return {"$ref": "#/$defs/duration"}
    if kind is ParamType.DEADLINE:
        return {"anyOf": [{"$ref": "#/$defs/duration"}, {"enum": list(TARGETS)}]}
    if kind is ParamType.BOOLEAN:
        return {"type": "boolean"}
    if kind is ParamType.CHANNELS:
        return {"type": "array", "items": {"enum": list(MESSAGE_CHANNELS)}, "minItems": 1}
    if choices:
        return {"enum": list(choices)}
    return {"type": "string", "minLength": 1}


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    """An object that takes these properties and no others (a typo is an error)."""
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _measures_schema() -> dict[str, Any]:
    """The `measures:` section (see engine/measure_settings.py)."""
    cost = {"type": "number", "minimum": 0}
    duration = {"$ref": "#/$defs/duration"}
    return _closed(
        {
            "control_group": _closed(
                {
                    "percent": {"type": "number", "minimum": 0, "maximum": MAX_CONTROL_PERCENT},
                    "salt": {"type": "string", "minLength": 1},
                }
            ),
            "active_window": duration,
            "winback_window": duration,
            "clv_horizon_years": {"type": "integer", "minimum": 1, "maximum": 20},
            "costs": _closed(
                {
                    "messages": _closed({channel: cost for channel in MESSAGE_CHANNELS}),
                    "tasks": {"type": "object", "additionalProperties": cost},
                }
            ),
        }
    ) | {"description": "How the report measures: control group, windows, costs."}


def _condition_schema() -> dict[str, Any]:
    """One condition: `all`/`any`/`not` over conditions, or a test of one fact or event field."""
    nested = {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1}
    event_fields = {
        f"event.{field.name}": _subject(field)
        for event in EVENT_TYPES.values()
        for field in event.fields
    }
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "all": nested,
            "any": nested,
            "not": {"$ref": "#/$defs/condition"},
            **{fact.name: _subject(fact) for fact in FACTS},
            **{fact.name: _parameterised(fact) for fact in PARAMETERISED_FACTS.values()},
            **event_fields,
        },
        "additionalProperties": False,
    }


def _action_schema(spec: ActionSpec) -> dict[str, Any]:
    """One entry of `actions:`, a mapping with the action's name as its only key."""
    return {
        "type": "object",
        "description": spec.description,
        "properties": {
            spec.name: {
                "type": "object",
                "properties": {
                    p.name: {**_param(p.type, p.choices), "description": p.description}
                    for p in spec.params
                },
                "required": [p.name for p in spec.params if p.required],
                "additionalProperties": False,
            }
        },
        "required": [spec.name],
        "additionalProperties": False,
    }


def _trigger_schema() -> dict[str, Any]:
    """`schedule`, or `{event: <type>}`."""
    return {
        "anyOf": [
            {"const": "schedule", "description": "Evaluated for every customer at each run."},
            {
                "type": "object",
                "properties": {"event": {"enum": list(EVENT_TYPES)}},
                "required": ["event"],
                "additionalProperties": False,
            },
        ]
    }


def _reentry_schema() -> dict[str, Any]:
    """`once`, `per_event`, or `{every: <duration>}`."""
    return {
        "anyOf": [
            {"enum": ["once", "per_event"]},
            {
                "type": "object",
                "properties": {"every": {"$ref": "#/$defs/duration"}},
                "required": ["every"],
                "additionalProperties": False,
            },
        ]
    }


def _rule_schema() -> dict[str, Any]:
    """One entry of `rules:`; its id and tags take the loader's patterns."""
    condition = {"$ref": "#/$defs/condition"}
    return {
        "type": "object",
        "required": ["id", "description", "trigger", "actions"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": RULE_ID_PATTERN},
            "description": {"type": "string", "minLength": 1},
            "trigger": _trigger_schema(),
            "when": {"anyOf": [condition, {"type": "array", "items": condition}]},
            "actions": {
                "type": "array",
                "items": {"oneOf": [_action_schema(spec) for spec in ACTIONS.values()]},
                "minItems": 1,
            },
            "reentry": _reentry_schema(),
            "priority": {"type": "integer", "description": "Lower runs first; default 100."},
            "enabled": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "pattern": TAG_PATTERN}},
        },
    }


def _parameters_schema() -> dict[str, Any]:
    """The `parameters:` section: the numeric thresholds of `FactParameters`."""
    parameters = {
        f.name: {"type": "number", "minimum": 0}
        for f in fields(FactParameters)
        if f.name not in DERIVED_PARAMETERS
    }
    return {"type": "object", "properties": parameters, "additionalProperties": False}


def _holidays_schema() -> dict[str, Any]:
    """The `holidays:` section: dates with or without a year (then every year), or
    festivals the holiday library dates (see engine/care_calendar.py)."""
    day = {"type": "string", "pattern": r"^(\d{4}-)?\d{2}-\d{2}$"}
    festival = {
        "type": "string",
        "description": "The holiday library's name, e.g. Mid-Autumn Festival.",
    }
    country = {
        "type": "string",
        "description": f"ISO 3166 country code; {DEFAULT_COUNTRY} when left out.",
    }
    name = {"type": "string"}
    return {
        "type": "array",
        "items": {
            "oneOf": [
                {**_closed({"date": day, "name": name}), "required": ["date", "name"]},
                {
                    **_closed({"festival": festival, "country": country, "name": name}),
                    "required": ["festival", "name"],
                },
            ]
        },
    }


def _policy_schema() -> dict[str, Any]:
    """The `policy:` section (see engine/policy.py)."""
    clock = {"type": "string", "pattern": r"^\d{2}:\d{2}$"}
    hours = {"type": "string", "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$"}
    dates = {"type": "array", "items": {"type": "string", "format": "date"}}
    duration = {"$ref": "#/$defs/duration"}
    sla = _closed(
        {"first_response": duration, "resolution": duration, "clock": {"enum": list(CLOCKS)}}
    ) | {"required": list(TARGETS)}
    return {
        "type": "object",
        "description": "Delivery guards (quiet hours, frequency cap, complaint hold, channel "
        "defaults) and the feedback service levels with the business hours they count in.",
        "additionalProperties": False,
        "properties": {
            "quiet_hours": _closed({"start": clock, "end": clock}),
            "frequency_cap": _closed(
                {
                    "marketing": {"type": "integer", "minimum": 0},
                    "window": {"$ref": "#/$defs/duration"},
                    "counts": {"type": "array", "items": {"enum": list(CAPPABLE)}},
                }
            ),
            "suppress_marketing_on_open_complaint": {"type": "boolean"},
            "complaint_hold": _closed({"limit": {"$ref": "#/$defs/duration"}}),
            "channel_defaults": {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": {"enum": list(MESSAGE_CHANNELS)},
                },
            },
            "business_hours": _closed(
                {
                    "timezone": {"type": "string"},
                    "holidays": {"type": ["string", "null"]},
                    "hours": _closed({day: hours for day in WEEKDAYS}),
                    "closed": dates,
                    "open": dates,
                }
            ),
            "feedback_sla": _closed({level: sla for level in FEEDBACK_LEVELS}),
        },
    }


def _fact_reference_schema() -> dict[str, Any]:
    """`{fact: <numeric fact>, times: n, plus: n}`: a number compared with another fact."""
    numeric = [f.name for f in FACTS if f.type in (FactType.INTEGER, FactType.NUMBER)]
    return {
        "type": "object",
        "required": ["fact"],
        "additionalProperties": False,
        "properties": {
            "fact": {"enum": numeric},
            "times": {"type": "number"},
            "plus": {"type": "number"},
        },
    }


def rule_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) for one rule file."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Rapport rule file",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string"},
            "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            "parameters": _parameters_schema(),
            "holidays": _holidays_schema(),
            "policy": _policy_schema(),
            "affinity": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "measures": _measures_schema(),
        },
        "$defs": {
            "rule": _rule_schema(),
            "condition": _condition_schema(),
            "duration": DURATION,
            "fact_reference": _fact_reference_schema(),
        },
    }
