"""Reading a rule's `actions:`: each action's name and its typed parameters, checked
against the vocabulary (`engine.vocabulary.ACTIONS`), every problem reported."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from engine.durations import parse_duration
from engine.facts import MESSAGE_CHANNELS
from engine.model import Action, Position
from engine.problems import did_you_mean
from engine.service_levels import TARGETS
from engine.vocabulary import ACTIONS, ParamType
from engine.yamlsource import Source


def read_actions(source: Source, node: CommentedMap) -> tuple[Action, ...]:
    """The rule's actions; a broken one is reported and left out."""
    value = node.get("actions")
    if value is None:
        return ()
    if not isinstance(value, CommentedSeq) or not value:
        source.error(Source.value(node, "actions"), "wrong-type", "`actions` is a non-empty list")
        return ()
    actions = []
    for index, item in enumerate(value):
        at = Source.of(item, Source.item(value, index))
        if not isinstance(item, CommentedMap) or len(item) != 1:
            source.error(at, "wrong-type", "an action is `- NAME: {parameters}`")
            continue
        ((name, params),) = item.items()
        action = _action(source, str(name), params, Source.key(item, name))
        if action is not None:
            actions.append(action)
    if not any(action.name == "send_message" for action in actions):
        for action in actions:
            if action.name == "schedule" and action.params["from"] == "message":
                at = (action.position.line, action.position.column)
                source.error(at, "bad-choice", "`from: message` needs a send_message in the rule")
    return tuple(actions)


def _action(source: Source, name: str, params: Any, at: tuple[int, int]) -> Action | None:
    spec = ACTIONS.get(name)
    if spec is None:
        source.error(at, "unknown-action", f"unknown action {name!r}{did_you_mean(name, ACTIONS)}")
        return None
    if not isinstance(params, CommentedMap):
        source.error(at, "wrong-type", f"`{name}` takes a mapping of parameters")
        return None
    values: dict[str, Any] = {}
    for key, value in params.items():
        param = spec.param(str(key))
        if param is None:
            hint = did_you_mean(str(key), [p.name for p in spec.params])
            source.error(
                Source.key(params, key), "unknown-param", f"`{name}` has no parameter {key!r}{hint}"
            )
            continue
        values[param.name] = _param_value(
            source, param.type, param.choices, value, Source.value(params, key), param.name
        )
    for param in spec.params:
        if param.name not in params:
            if param.required:
                source.error(at, "missing-param", f"`{name}` needs `{param.name}`")
            values[param.name] = param.default
    return Action(name, values, Position(source.path, *at))


def _param_value(
    source: Source,
    kind: ParamType,
    choices: tuple[str, ...],
    value: Any,
    at: tuple[int, int],
    name: str,
) -> Any:
    if kind is ParamType.DEADLINE and value in TARGETS:
        return str(value)
    if kind in (ParamType.DURATION, ParamType.DEADLINE):
        try:
            return parse_duration(value)
        except ValueError as error:
            source.error(at, "bad-duration", str(error))
            return None
    if kind is ParamType.BOOLEAN:
        if not isinstance(value, bool):
            source.error(at, "wrong-type", f"`{name}` is true or false")
        return bool(value)
    if kind is ParamType.CHANNELS:
        if not isinstance(value, CommentedSeq | list) or not value:
            source.error(at, "wrong-type", f"`{name}` is a list such as [wechat, email]")
            return ()
        for channel in value:
            if channel not in MESSAGE_CHANNELS:
                hint = did_you_mean(str(channel), MESSAGE_CHANNELS)
                source.error(at, "bad-choice", f"unknown message channel {channel!r}{hint}")
        return tuple(str(channel) for channel in value)
    if not isinstance(value, str) or not value.strip():
        source.error(at, "wrong-type", f"`{name}` is text")
        return None
    if choices and value not in choices:
        hint = did_you_mean(value, choices)
        source.error(
            at, "bad-choice", f"`{name}` is one of {', '.join(choices)}; not {value!r}{hint}"
        )
    return str(value).strip()
