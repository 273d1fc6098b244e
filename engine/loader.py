"""Loading a rules directory into a `RuleSet`, collecting every problem on the way.

Nothing half-applies: a directory with any error yields no ruleset at all, so the
caller keeps the last good revision in force. A file that still runs Python out of
stack, memory or number range past the bounds of `engine/yamlsource.py` is a
`resource-limit` problem of that file (of that rule, when one rule did it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from engine.care_calendar import CareDay, parse_holidays
from engine.checks import check_rules
from engine.conditions import INVALID_EVENT, MAX_WINDOW_DAYS, ConditionParser, comparisons
from engine.durations import parse_duration
from engine.facts import DERIVED_PARAMETERS, FactParameters, ProductWindow
from engine.measure_settings import Measures, TaskCostKinds, parse_measures, task_cost_kinds
from engine.model import Position, Reentry, Rule, RuleSet
from engine.policy import Policy, parse_policy
from engine.problems import EXHAUSTED, Problem, Severity, did_you_mean, ran_out_of
from engine.rule_actions import read_actions
from engine.vocabulary import EVENT_TYPES, RULE_ID_PATTERN, TAG_PATTERN
from engine.yamlsource import Source, content_hash, parse, rule_files

RULE_ID = re.compile(RULE_ID_PATTERN)
TAG = re.compile(TAG_PATTERN)
RULE_KEYS = (
    "id",
    "description",
    "trigger",
    "when",
    "actions",
    "reentry",
    "priority",
    "enabled",
    "tags",
)
SECTIONS = ("description", "rules", "parameters", "holidays", "affinity", "policy", "measures")
MAX_RULES_PER_TRIGGER = 60
MAX_WHOLE_PARAMETER = MAX_WINDOW_DAYS  # days: windows become timedeltas and dates


@dataclass(frozen=True)
class LoadResult:
    ruleset: RuleSet | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)


def load_rules(
    directory: Path, template_check: Callable[[list[Rule]], list[Problem]] | None = None
) -> LoadResult:
    """Validates every rule file in `directory`; a ruleset only when nothing is wrong.

    `template_check` (see `actions/templates.py`) vets the message templates rules use.
    """
    paths = rule_files(directory) if directory.is_dir() else []
    if not paths:
        problem = Problem(str(directory), 1, 1, "empty-file", "no rule files (*.yaml) found")
        return LoadResult(None, (problem,))
    raw = {path: path.read_bytes() for path in paths}
    state = _DirectoryState()
    for path, content in raw.items():
        source = Source(str(path))
        try:
            document = parse(source, content)
            if document is not None:
                _load_file(source, document, state)
        except EXHAUSTED as error:
            source.error((1, 1), "resource-limit", exhausted(error))
        state.problems.extend(source.problems)
    # A file or rule that did not read may open any task kind: "no rule opens it" would
    # only echo that problem in measures.yaml, so the costs are checked on clean reads.
    read_cleanly = not any(p.severity is Severity.ERROR for p in state.problems)
    if template_check is not None:
        state.problems.extend(template_check(state.rules))
    state.problems.extend(check_rules(state.rules, MAX_RULES_PER_TRIGGER))
    if state.cost_kinds is not None and read_cleanly:
        state.problems.extend(_unknown_task_kinds(state.cost_kinds, state.rules))
    windows = product_windows(state.rules)
    if state.affinity and read_cleanly:
        state.problems.extend(_unknown_products(windows, state.affinity))
    problems = tuple(sorted(state.problems))
    if any(p.severity is Severity.ERROR for p in problems):
        return LoadResult(None, problems)
    revision = content_hash({path.name: content for path, content in raw.items()})
    ruleset = RuleSet(
        revision=revision,
        rules=tuple(state.rules),
        parameters=FactParameters(
            **state.parameters,
            holidays=tuple(state.holidays),
            product_windows=tuple(sorted(windows)),
        ),
        affinity=state.affinity,
        policy=state.policy,
        measures=state.measures,
        files={path.name: content.decode("utf-8") for path, content in raw.items()},
    )
    return LoadResult(ruleset, problems)


def exhausted(error: BaseException) -> str:
    """The message of a `resource-limit` problem."""
    return f"reading it ran out of {ran_out_of(error)}; simplify it"


def _unknown_task_kinds(costs: TaskCostKinds, rules: list[Rule]) -> list[Problem]:
    """Costs given for a task kind no rule opens: most likely a typo."""
    opened = sorted(
        {str(a.params["kind"]) for r in rules for a in r.actions if a.name == "open_task"}
    )
    return [
        Problem(
            costs.path,
            *at,
            "unknown-task-kind",
            f"no rule opens tasks of kind {kind!r}{did_you_mean(kind, opened)}",
        )
        for kind, at in costs.positions.items()
        if kind not in opened
    ]


def product_windows(rules: list[Rule]) -> dict[ProductWindow, Position]:
    """The products and windows the rules count purchases of (`product_purchases`), each
    with the first place it is named: the facts computed for this ruleset."""
    found: dict[ProductWindow, Position] = {}
    for rule in rules:
        for comparison in comparisons(rule.when):
            window = ProductWindow.of_fact(comparison.subject)
            if window is not None:
                found.setdefault(window, comparison.position)
    return found


def _unknown_products(
    windows: dict[ProductWindow, Position], affinity: dict[str, tuple[str, ...]]
) -> list[Problem]:
    """A product the affinity table (every product sold) does not list: most likely a
    typo, and its count would stay 0 for everyone."""
    return [
        Problem(
            at.path,
            at.line,
            at.column,
            "unknown-product",
            f"no product {window.product!r} in the affinity table"
            f"{did_you_mean(window.product, affinity)}",
        )
        for window, at in windows.items()
        if window.product not in affinity
    ]


class _DirectoryState:
    """What the files of one directory add up to while they are being read."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.parameters: dict[str, Any] = {}
        self.holidays: list[CareDay] = []
        self.affinity: dict[str, tuple[str, ...]] = {}
        self.policy = Policy()
        self.measures = Measures()
        self.cost_kinds: TaskCostKinds | None = None
        self.sections: dict[str, Position] = {}
        self.ids: dict[str, Position] = {}
        self.problems: list[Problem] = []


def _load_file(source: Source, document: Any, state: _DirectoryState) -> None:
    if not isinstance(document, CommentedMap):
        source.error(
            Source.of(document),
            "wrong-type",
            "a rule file is a mapping with `rules:` (and optionally parameters, "
            "holidays, affinity, policy, measures)",
        )
        return
    source.unknown_keys(document, SECTIONS, "section")
    for key, value in document.items():
        at = Source.key(document, key)
        if key not in SECTIONS:
            continue
        if key in ("parameters", "holidays", "affinity", "policy", "measures"):
            if key in state.sections:
                source.error(
                    at, "duplicate-section", f"{key!r} is already given at {state.sections[key]}"
                )
                continue
            state.sections[key] = Position(source.path, *at)
        if key == "rules":
            _load_rules(source, value, at, state)
        elif key == "parameters":
            _load_parameters(source, value, at, state)
        elif key == "holidays":
            state.holidays = parse_holidays(source, value, at)
        elif key == "affinity":
            _load_affinity(source, value, at, state)
        elif key == "policy":
            state.policy = parse_policy(source, value, at)
        elif key == "measures":
            state.measures = parse_measures(source, value, at)
            state.cost_kinds = task_cost_kinds(source, value)
        elif not isinstance(value, str):
            source.error(at, "wrong-type", "`description` is text")


def _load_rules(source: Source, node: Any, at: tuple[int, int], state: _DirectoryState) -> None:
    if not isinstance(node, CommentedSeq):
        source.error(at, "wrong-type", "`rules` is a list of rules")
        return
    for index, item in enumerate(node):
        rule_at = Source.of(item, Source.item(node, index))
        try:
            rule = _load_rule(source, item, rule_at)
        except EXHAUSTED as error:
            source.error(rule_at, "resource-limit", exhausted(error))
            continue
        if rule is None:
            continue
        if rule.id in state.ids:
            source.error(
                (rule.position.line, rule.position.column),
                "duplicate-id",
                f"rule id {rule.id!r} is already used at {state.ids[rule.id]}",
            )
            continue
        state.ids[rule.id] = rule.position
        state.rules.append(rule)


def _load_rule(source: Source, node: Any, at: tuple[int, int]) -> Rule | None:
    if not isinstance(node, CommentedMap):
        source.error(at, "wrong-type", "a rule is a mapping with id, description, trigger, ...")
        return None
    before = len(source.problems)
    source.unknown_keys(node, RULE_KEYS, "rule key")
    for key in ("id", "description", "trigger", "actions"):
        if key not in node:
            source.error(at, "missing-key", f"a rule needs `{key}`")
    rule_id = node.get("id")
    if "id" in node and not (isinstance(rule_id, str) and RULE_ID.match(rule_id)):
        source.error(
            Source.value(node, "id"),
            "bad-id",
            f"{rule_id!r} is not a snake_case id such as high_weekly_touch",
        )
    description = node.get("description")
    if "description" in node and not (isinstance(description, str) and description.strip()):
        source.error(Source.value(node, "description"), "wrong-type", "`description` is text")
    event = _trigger(source, node)
    when = ConditionParser(source, event).parse_block(
        node.get("when"), Source.value(node, "when") if "when" in node else at
    )
    actions = read_actions(source, node)
    reentry, period = _reentry(source, node, event, at)
    priority = _typed(source, node, "priority", int, 100, "a whole number (lower runs first)")
    enabled = _typed(source, node, "enabled", bool, True, "true or false")
    tags = _tags(source, node)
    if len(source.problems) != before:
        return None
    return Rule(
        id=str(rule_id),
        description=str(description).strip(),
        event=event,
        when=when,
        actions=actions,
        reentry=reentry,
        period=period,
        priority=int(priority),
        enabled=bool(enabled),
        tags=tags,
        position=Position(source.path, *at),
    )


def _typed(
    source: Source, node: CommentedMap, key: str, kind: type, default: Any, what: str
) -> Any:
    value = node.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        source.error(Source.value(node, key), "wrong-type", f"`{key}` is {what}")
        return default
    return value


def _trigger(source: Source, node: CommentedMap) -> str | None:
    value = node.get("trigger")
    if value is None or value == "schedule":
        return None
    at = Source.value(node, "trigger")
    if not isinstance(value, CommentedMap) or set(value) != {"event"}:
        source.error(at, "wrong-type", "`trigger` is `schedule` or `{event: TYPE}`")
        return INVALID_EVENT
    event = str(value["event"])
    if event not in EVENT_TYPES:
        source.error(
            Source.value(value, "event"),
            "unknown-event",
            f"unknown event type {event!r}{did_you_mean(event, EVENT_TYPES)}",
        )
        return INVALID_EVENT
    return event


def _reentry(
    source: Source, node: CommentedMap, event: str | None, at: tuple[int, int]
) -> tuple[Reentry, Any]:
    value = node.get("reentry")
    if value is None:
        if event is None and "trigger" in node:  # an invalid trigger is INVALID_EVENT
            source.error(
                at,
                "reentry-required",
                "a scheduled rule needs `reentry`: once or "
                "{every: 30d}, or it would fire at every run",
            )
        return Reentry.PER_EVENT, None
    value_at = Source.value(node, "reentry")
    if value in ("once", "per_event"):
        if value == "per_event" and event is None:
            source.error(value_at, "reentry-required", "per_event needs an event trigger")
        return Reentry(value), None
    if isinstance(value, CommentedMap) and set(value) == {"every"}:
        try:
            return Reentry.EVERY, parse_duration(value["every"])
        except ValueError as error:
            source.error(Source.value(value, "every"), "bad-duration", str(error))
            return Reentry.EVERY, None
    source.error(value_at, "wrong-type", "`reentry` is once, per_event or {every: 30d}")
    return Reentry.ONCE, None


def _tags(source: Source, node: CommentedMap) -> tuple[str, ...]:
    value = node.get("tags", [])
    if not isinstance(value, CommentedSeq | list) or not all(
        isinstance(tag, str) and TAG.match(tag) for tag in value
    ):
        source.error(
            Source.value(node, "tags"), "wrong-type", "`tags` is a list of snake_case words"
        )
        return ()
    return tuple(str(tag) for tag in value)


def _load_parameters(
    source: Source, node: Any, at: tuple[int, int], state: _DirectoryState
) -> None:
    known = {f.name: f for f in fields(FactParameters) if f.name not in DERIVED_PARAMETERS}
    if not isinstance(node, CommentedMap):
        source.error(at, "wrong-type", "`parameters` is a mapping of name: number")
        return
    for key, value in node.items():
        key_at = Source.key(node, key)
        if key not in known:
            source.error(
                key_at, "unknown-key", f"unknown parameter {key!r}{did_you_mean(str(key), known)}"
            )
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            source.error(Source.value(node, key), "wrong-type", f"{key!r} is a number ≥ 0")
        else:
            whole = known[key].type in (int, "int")
            if whole and not isinstance(value, int):
                source.error(Source.value(node, key), "wrong-type", f"{key!r} is a whole number")
                continue
            if whole and value > MAX_WHOLE_PARAMETER:
                source.error(
                    Source.value(node, key),
                    "number-too-large",
                    f"{key!r} is at most {MAX_WHOLE_PARAMETER:,} (days: a hundred years)",
                )
                continue
            state.parameters[str(key)] = int(value) if whole else float(value)
    try:
        FactParameters(**state.parameters)
    except ValueError as error:
        source.error(at, "contradiction", str(error))


def _load_affinity(source: Source, node: Any, at: tuple[int, int], state: _DirectoryState) -> None:
    if not isinstance(node, CommentedMap):
        source.error(at, "wrong-type", "`affinity` maps a product to the products to suggest")
        return
    for product, suggestions in node.items():
        if not isinstance(suggestions, CommentedSeq) or not all(
            isinstance(s, str) for s in suggestions
        ):
            source.error(
                Source.value(node, product),
                "wrong-type",
                f"suggestions for {product!r} are a list of product ids",
            )
            continue
        state.affinity[str(product)] = tuple(str(s) for s in suggestions)
