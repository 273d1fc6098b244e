"""How the relationship report measures: the control group, windows and costs.

Operations set it in the `measures:` section of a file in `rules/` (`rules/measures.yaml`);
what is left out keeps the default below. The control group is here, next to the
measures it makes comparable, but it also changes what the rules do: a held-out
customer gets nothing from marketing rules (see `RuleSet.holds_out`).

`parse_measures` validates with positions like the policy parser: every problem is
reported, a bad part keeps its default, and the loader rejects the directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from ruamel.yaml.comments import CommentedMap

from engine.durations import parse_duration
from engine.facts import MESSAGE_CHANNELS
from engine.yamlsource import Source

MEASURES_KEYS = (
    "control_group",
    "active_window",
    "winback_window",
    "clv_horizon_years",
    "costs",
)
MAX_CONTROL_PERCENT = 50


@dataclass(frozen=True)
class ControlGroup:
    """A stable share of customers held out of marketing rules, to measure their uplift.

    Membership hashes the customer id with `salt`, so it never changes between runs or
    machines; changing the salt draws a new group.
    """

    percent: float = 5.0
    salt: str = "rapport-control"

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= MAX_CONTROL_PERCENT:
            raise ValueError(f"the control group is 0 to {MAX_CONTROL_PERCENT} percent")

    def holds_out(self, customer_id: str) -> bool:
        digest = hashlib.sha256(f"{self.salt}\x00{customer_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") < self.percent / 100 * 2**64


DEFAULT_MESSAGE_COSTS: Mapping[str, float] = MappingProxyType(
    {"email": 0.05, "sms": 0.08, "wechat": 0.03, "app": 0.01}
)
DEFAULT_TASK_COSTS: Mapping[str, float] = MappingProxyType({"default": 40.0})


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class TaskCostKinds:
    """Where each task kind of `costs.tasks` was written, to check it against the rules."""

    path: str
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Measures:
    """What the report counts with; the defaults are the SPEC's where it has one."""

    control: ControlGroup = field(default_factory=ControlGroup)
    active_window: timedelta = timedelta(days=90)  # active = a purchase within it
    winback_window: timedelta = timedelta(days=30)  # a purchase this soon after a win-back
    clv_horizon_years: int = 3
    message_costs: Mapping[str, float] = field(default_factory=lambda: DEFAULT_MESSAGE_COSTS)
    task_costs: Mapping[str, float] = field(default_factory=lambda: DEFAULT_TASK_COSTS)

    def __post_init__(self) -> None:
        for name in ("message_costs", "task_costs"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __hash__(self) -> int:
        return hash(
            (
                self.control,
                self.active_window,
                self.winback_window,
                self.clv_horizon_years,
                tuple(self.message_costs.items()),
                tuple(self.task_costs.items()),
            )
        )

    def task_cost(self, kind: str) -> float:
        return self.task_costs.get(kind, self.task_costs["default"])


def task_cost_kinds(source: Source, node: Any) -> TaskCostKinds:
    """The task kinds `costs.tasks` names (other than `default`), with their positions."""
    costs = node.get("costs") if isinstance(node, CommentedMap) else None
    tasks = costs.get("tasks") if isinstance(costs, CommentedMap) else None
    if not isinstance(tasks, CommentedMap):
        return TaskCostKinds(source.path)
    kinds = {str(k): Source.key(tasks, k) for k in tasks if k != "default"}
    return TaskCostKinds(source.path, kinds)


def parse_measures(source: Source, node: Any, at: tuple[int, int]) -> Measures:
    """The `measures:` mapping of a rules file as `Measures` (codes as in `parse_policy`)."""
    if not isinstance(node, CommentedMap):
        source.error(at, "wrong-type", f"`measures` is a mapping with {', '.join(MEASURES_KEYS)}")
        return Measures()
    if "feedback_sla" in node:  # it sets live deadlines now, not only what the report counts
        source.error(
            Source.key(node, "feedback_sla"),
            "unknown-key",
            "`feedback_sla` moved to the `policy:` section (rules/policy.yaml): its targets "
            "set the tasks' deadlines",
        )
    source.unknown_keys(node, (*MEASURES_KEYS, "feedback_sla"), "measures key")
    values: dict[str, Any] = {}
    if "control_group" in node:
        values.update(_control_group(source, node))
    for key in ("active_window", "winback_window"):
        if key in node:
            try:
                values[key] = parse_duration(node[key])
            except ValueError as error:
                source.error(Source.value(node, key), "bad-duration", str(error))
    if "clv_horizon_years" in node:
        years = node["clv_horizon_years"]
        if _whole(years) and 1 <= years <= 20:
            values["clv_horizon_years"] = years
        else:
            message = "`clv_horizon_years` is a whole number of years from 1 to 20"
            source.error(Source.value(node, "clv_horizon_years"), "wrong-type", message)
    if "costs" in node:
        values.update(_costs(source, node))
    return Measures(**values)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _control_group(source: Source, node: CommentedMap) -> dict[str, ControlGroup]:
    section = source.section(node, "control_group", "{percent: 5, salt: 'any text'}")
    if section is None:
        return {}
    source.unknown_keys(section, ("percent", "salt"), "control_group key")
    values: dict[str, Any] = {}
    percent = section.get("percent")
    if "percent" in section:
        if _number(percent) and percent <= MAX_CONTROL_PERCENT:
            values["percent"] = float(percent)
        else:
            message = f"`percent` is a number from 0 to {MAX_CONTROL_PERCENT}: the share held out"
            source.error(Source.value(section, "percent"), "wrong-type", message)
    if "salt" in section:
        if isinstance(section["salt"], str) and section["salt"]:
            values["salt"] = section["salt"]
        else:
            message = "`salt` is text; changing it draws a new control group"
            source.error(Source.value(section, "salt"), "wrong-type", message)
    return {"control": ControlGroup(**values)}


def _costs(source: Source, node: CommentedMap) -> dict[str, Mapping[str, float]]:
    section = source.section(node, "costs", "{messages: {email: 0.05}, tasks: {default: 40}}")
    if section is None:
        return {}
    source.unknown_keys(section, ("messages", "tasks"), "costs key")
    values: dict[str, Mapping[str, float]] = {}
    for key, defaults, names in (
        ("messages", DEFAULT_MESSAGE_COSTS, MESSAGE_CHANNELS),
        ("tasks", DEFAULT_TASK_COSTS, None),
    ):
        if key not in section:
            continue
        costs = source.section(section, key, "of name: cost per item")
        if costs is None:
            continue
        if names is not None:
            source.unknown_keys(costs, names, "message channel")
        merged = dict(defaults)
        for name, cost in costs.items():
            if names is not None and name not in names:
                continue
            if _number(cost):
                merged[str(name)] = float(cost)
            else:
                message = f"the cost of {name!r} is a number ≥ 0 (in the configured currency)"
                source.error(Source.value(costs, name), "wrong-type", message)
        values[f"{key[:-1]}_costs"] = merged
    return values
