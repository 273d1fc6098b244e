"""The JSON Schema of rule files, generated from the vocabulary (`rapport rules schema`).

Editors use the committed `rules/rules.schema.json` for completion and inline checks;
the loader stays the authority (it also knows positions, contradictions, templates).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from engine.facts import FACTS, Fact, FactParameters, FactType
from engine.measure_settings import MAX_CONTROL_PERCENT
from engine.vocabulary import (
    ACTIONS,
    EVENT_TYPES,
    FEEDBACK_LEVELS,
    MESSAGE_CHANNELS,
    OPERATORS,
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


def _value(fact: Fact) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _JSON_TYPES[fact.type]}
    if fact.choices:
        schema["enum"] = list(fact.choices)
    return schema


def _operand(fact: Fact, kind: Operand) -> dict[str, Any]:
    value = _value(fact)
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
            _value(fact),
            {
                "type": "object",
                "properties": operators,
                "additionalProperties": False,
                "minProperties": 1,
            },
        ],
    }


def _param(kind: ParamType, choices: tuple[str, ...]) -> dict[str, Any]:
    if kind is ParamType.DURATION:
        return {"$ref": "#/$defs/duration"}
    if kind is ParamType.BOOLEAN:
        return {"type": "boolean"}
    if kind is ParamType.CHANNELS:
        return {"type": "array", "items": {"enum": list(MESSAGE_CHANNELS)}, "minItems": 1}
    if choices:
        return {"enum": list(choices)}
    return {"type": "string", "minLength": 1}


def _measures_schema() -> dict[str, Any]:
    """The `measures:` section (see engine/measures.py)."""

    def closed(properties: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "properties": properties}

    cost = {"type": "number", "minimum": 0}
    duration = {"$ref": "#/$defs/duration"}
    sla = closed({"first_response": duration, "resolution": duration})
    return closed(
        {
            "control_group": closed(
                {
                    "percent": {"type": "number", "minimum": 0, "maximum": MAX_CONTROL_PERCENT},
                    "salt": {"type": "string", "minLength": 1},
                }
            ),
            "active_window": duration,
            "winback_window": duration,
            "clv_horizon_years": {"type": "integer", "minimum": 1, "maximum": 20},
            "feedback_sla": closed({level: sla for level in FEEDBACK_LEVELS}),
            "costs": closed(
                {
                    "messages": closed({channel: cost for channel in MESSAGE_CHANNELS}),
                    "tasks": {"type": "object", "additionalProperties": cost},
                }
            ),
        }
    ) | {"description": "How the report measures: control group, windows, SLAs, costs."}


def rule_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) for one rule file."""
    event_fields = {
        f"event.{field.name}": _subject(field)
        for event in EVENT_TYPES.values()
        for field in event.fields
    }
    condition = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "all": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1},
            "any": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1},
            "not": {"$ref": "#/$defs/condition"},
            **{fact.name: _subject(fact) for fact in FACTS},
            **event_fields,
        },
        "additionalProperties": False,
    }
    actions = [
        {
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
        for spec in ACTIONS.values()
    ]
    rule = {
        "type": "object",
        "required": ["id", "description", "trigger", "actions"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{2,63}$"},
            "description": {"type": "string", "minLength": 1},
            "trigger": {
                "anyOf": [
                    {
                        "const": "schedule",
                        "description": "Evaluated for every customer at each run.",
                    },
                    {
                        "type": "object",
                        "properties": {"event": {"enum": list(EVENT_TYPES)}},
                        "required": ["event"],
                        "additionalProperties": False,
                    },
                ]
            },
            "when": {
                "anyOf": [
                    {"$ref": "#/$defs/condition"},
                    {"type": "array", "items": {"$ref": "#/$defs/condition"}},
                ]
            },
            "actions": {"type": "array", "items": {"oneOf": actions}, "minItems": 1},
            "reentry": {
                "anyOf": [
                    {"enum": ["once", "per_event"]},
                    {
                        "type": "object",
                        "properties": {"every": {"$ref": "#/$defs/duration"}},
                        "required": ["every"],
                        "additionalProperties": False,
                    },
                ]
            },
            "priority": {"type": "integer", "description": "Lower runs first; default 100."},
            "enabled": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}},
        },
    }
    parameters = {
        f.name: {"type": "number", "minimum": 0}
        for f in fields(FactParameters)
        if f.name != "holidays"
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Rapport rule file",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string"},
            "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            "parameters": {
                "type": "object",
                "properties": parameters,
                "additionalProperties": False,
            },
            "holidays": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["date", "name"],
                    "additionalProperties": False,
                    "properties": {
                        "date": {"type": "string", "pattern": r"^(\d{4}-)?\d{2}-\d{2}$"},
                        "name": {"type": "string"},
                    },
                },
            },
            "policy": {
                "type": "object",
                "description": "Delivery guards: quiet hours, frequency cap, channel defaults.",
                "additionalProperties": False,
                "properties": {
                    "quiet_hours": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "start": {"type": "string", "pattern": r"^\d{2}:\d{2}$"},
                            "end": {"type": "string", "pattern": r"^\d{2}:\d{2}$"},
                        },
                    },
                    "frequency_cap": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "marketing": {"type": "integer", "minimum": 0},
                            "window": {"$ref": "#/$defs/duration"},
                        },
                    },
                    "suppress_marketing_on_open_complaint": {"type": "boolean"},
                    "channel_defaults": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "array",
                            "items": {"enum": list(MESSAGE_CHANNELS)},
                        },
                    },
                },
            },
            "affinity": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "measures": _measures_schema(),
        },
        "$defs": {
            "rule": rule,
            "condition": condition,
            "duration": DURATION,
            "fact_reference": {
                "type": "object",
                "required": ["fact"],
                "additionalProperties": False,
                "properties": {
                    "fact": {
                        "enum": [
                            f.name for f in FACTS if f.type in (FactType.INTEGER, FactType.NUMBER)
                        ]
                    },
                    "times": {"type": "number"},
                    "plus": {"type": "number"},
                },
            },
        },
    }
