"""Validating `when:` blocks into condition trees, against the fact vocabulary.

A condition is a one-key mapping: `all:`/`any:` with a list, `not:` with a condition,
or a fact (or `event.<field>`) with either a value (meaning `eq`) or a mapping of
operators, e.g. `spend_12m: {gte: 10000, lt: 100000}`. Numeric operators also take
another fact: `purchases_recent: {lt: {fact: purchases_previous, times: 0.5}}`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from engine.durations import parse_duration
from engine.facts import (
    FACT_PARAMETERS,
    FACTS_BY_NAME,
    PARAMETERISED_FACTS,
    Fact,
    FactType,
    ProductWindow,
)
from engine.model import AllOf, AnyOf, Comparison, Condition, FactRef, Not, Position
from engine.problems import did_you_mean
from engine.vocabulary import EVENT_TYPES, NUMERIC, OPERATORS, Operand
from engine.yamlsource import Source

PYTHON_TYPES: dict[FactType, tuple[type, ...]] = {
    FactType.INTEGER: (int,),
    FactType.NUMBER: (int, float),
    FactType.STRING: (str,),
    FactType.BOOLEAN: (bool,),
    FactType.DATE: (str,),
}


class ConditionParser:
    """Parses one rule's conditions; problems go to the file's `Source`."""

    def __init__(self, source: Source, event: str | None) -> None:
        self.source, self.event = source, event

    def parse_block(self, node: Any, at: tuple[int, int]) -> AllOf:
        """`when:` is a list (all must hold) or a single condition."""
        if node is None:
            return AllOf(())
        if isinstance(node, CommentedSeq):
            items = [
                self.parse(item, Source.of(item, Source.item(node, i)))
                for i, item in enumerate(node)
            ]
            return AllOf(tuple(item for item in items if item is not None))
        item = self.parse(node, at)
        return AllOf((item,) if item is not None else ())

    def parse(self, node: Any, at: tuple[int, int]) -> Condition | None:
        if not isinstance(node, CommentedMap) or len(node) != 1:
            self.source.error(
                at,
                "wrong-type",
                "a condition is a mapping with exactly one key, e.g. `tier: high` or `any: [...]`",
            )
            return None
        ((key, value),) = node.items()
        key_at = Source.key(node, key)
        if key in ("all", "any"):
            if not isinstance(value, CommentedSeq) or not value:
                self.source.error(key_at, "wrong-type", f"`{key}` takes a non-empty list")
                return None
            items = [
                self.parse(item, Source.of(item, Source.item(value, i)))
                for i, item in enumerate(value)
            ]
            kept = tuple(item for item in items if item is not None)
            return AllOf(kept) if key == "all" else AnyOf(kept)
        if key == "not":
            inner = self.parse(value, Source.of(value, key_at))
            return Not(inner) if inner is not None else None
        return self._comparison(node, str(key), value, key_at)

    def _subject(self, name: str, at: tuple[int, int]) -> Fact | None:
        if name.startswith("event."):
            if self.event == INVALID_EVENT:
                return None  # the trigger's own error says what is wrong
            if self.event is None:
                self.source.error(
                    at,
                    "unknown-field",
                    f"{name!r}: only rules triggered by an event can test its fields",
                )
                return None
            fields = {field.name: field for field in EVENT_TYPES[self.event].fields}
            field = fields.get(name[len("event.") :])
            if field is None:
                hint = did_you_mean(name, [f"event.{n}" for n in fields])
                self.source.error(
                    at, "unknown-field", f"a {self.event} event has no field {name!r}{hint}"
                )
            return field
        fact = FACTS_BY_NAME.get(name) or PARAMETERISED_FACTS.get(name)
        if fact is None:
            known = [*FACTS_BY_NAME, *PARAMETERISED_FACTS, "all", "any", "not"]
            hint = did_you_mean(name, known)
            self.source.error(at, "unknown-fact", f"unknown fact {name!r}{hint}")
        return fact

    def _comparison(
        self, node: CommentedMap, name: str, value: Any, at: tuple[int, int]
    ) -> Condition | None:
        fact = self._subject(name, at)
        if fact is None:
            return None
        if fact.name in PARAMETERISED_FACTS:
            window = self._product_window(value, at)
            if window is None:
                return None
            name = window.fact
        skip = FACT_PARAMETERS if fact.name in PARAMETERISED_FACTS else {}
        position = Position(self.source.path, *at)
        if not isinstance(value, CommentedMap):  # shorthand: `tier: high` means eq
            if fact.type not in OPERATORS["eq"].types:
                self.source.error(
                    at,
                    "operator-type",
                    f"{name!r} ({fact.type}) cannot be compared for equality; use `exists`",
                )
                return None
            operand = self._value(fact, value, Source.value(node, name))
            return None if operand is _INVALID else Comparison(name, "eq", operand, position)
        if len(value) == len(skip):
            self.source.error(at, "wrong-type", f"{name!r} needs at least one operator")
            return None
        parts: list[Condition] = []
        for op_name, operand in value.items():
            if op_name in skip:
                continue
            op_at = Source.key(value, op_name)
            operator = OPERATORS.get(str(op_name))
            if operator is None:
                hint = did_you_mean(str(op_name), OPERATORS)
                self.source.error(op_at, "unknown-operator", f"unknown operator {op_name!r}{hint}")
                continue
            if fact.type not in operator.types:
                self.source.error(
                    op_at, "operator-type", f"`{op_name}` does not apply to {name!r} ({fact.type})"
                )
                continue
            parsed = self._operand(fact, operator.operand, operand, Source.value(value, op_name))
            if parsed is not _INVALID:
                parts.append(
                    Comparison(name, operator.name, parsed, Position(self.source.path, *op_at))
                )
        if len(parts) != len(value) - len(skip):
            return None
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def _product_window(self, node: Any, at: tuple[int, int]) -> ProductWindow | None:
        """`{product: ID, within: 90d, <operators>}`: the product and window counted."""
        shape = "`product_purchases` takes {product: ID, within: 90d} and operators, e.g. gte: 2"
        if not isinstance(node, CommentedMap):
            self.source.error(at, "wrong-type", shape)
            return None
        for key in FACT_PARAMETERS:
            if key not in node:
                self.source.error(at, "missing-key", f"`product_purchases` needs `{key}`; {shape}")
                return None
        product = node["product"]
        if not isinstance(product, str) or not product.strip() or "," in product:
            self.source.error(
                Source.value(node, "product"), "wrong-type", "`product` is a product id"
            )
            return None
        within_at = Source.value(node, "within")
        try:
            within = parse_duration(node["within"])
        except ValueError as error:
            self.source.error(within_at, "bad-duration", str(error))
            return None
        days = within // timedelta(days=1)
        if within % timedelta(days=1) or days > MAX_WINDOW_DAYS:
            self.source.error(
                within_at,
                "bad-duration",
                f"`within` is whole days or weeks up to {MAX_WINDOW_DAYS:,}d, e.g. 90d or 13w",
            )
            return None
        return ProductWindow(str(product), days)

    def _operand(self, fact: Fact, kind: Operand, node: Any, at: tuple[int, int]) -> Any:
        if kind is Operand.FLAG:
            if not isinstance(node, bool):
                self.source.error(at, "wrong-type", "`exists` takes true or false")
                return _INVALID
            return node
        if kind is Operand.RANGE:
            if not isinstance(node, CommentedSeq) or len(node) != 2:
                self.source.error(at, "wrong-type", "`between` takes [low, high]")
                return _INVALID
            low, high = (self._value(fact, item, at) for item in node)
            if _INVALID in (low, high):
                return _INVALID
            if low > high:
                self.source.error(at, "contradiction", f"between {low} and {high}: low > high")
                return _INVALID
            return (low, high)
        if kind is Operand.LIST:
            if not isinstance(node, CommentedSeq) or not node:
                self.source.error(at, "wrong-type", "`in` and `not_in` take a non-empty list")
                return _INVALID
            values = tuple(
                self._value(fact, item, Source.item(node, i)) for i, item in enumerate(node)
            )
            return _INVALID if _INVALID in values else values
        if isinstance(node, CommentedMap):
            return self._fact_ref(fact, node, at)
        return self._value(fact, node, at)

    def _fact_ref(self, fact: Fact, node: CommentedMap, at: tuple[int, int]) -> Any:
        unknown = set(node) - {"fact", "times", "plus"}
        if unknown or "fact" not in node:
            self.source.error(
                at,
                "wrong-type" if not unknown else "unknown-key",
                "compare with another fact as {fact: NAME, times: N, plus: N}",
            )
            return _INVALID
        other = FACTS_BY_NAME.get(str(node["fact"]))
        if str(node["fact"]) in PARAMETERISED_FACTS:
            self.source.error(
                Source.value(node, "fact"),
                "operator-type",
                f"{node['fact']!r} takes a product and a window; compare it with a number",
            )
            return _INVALID
        if other is None:
            hint = did_you_mean(str(node["fact"]), FACTS_BY_NAME)
            self.source.error(
                Source.value(node, "fact"), "unknown-fact", f"unknown fact {node['fact']!r}{hint}"
            )
            return _INVALID
        if fact.type not in NUMERIC or other.type not in NUMERIC:
            self.source.error(at, "operator-type", "only numbers can be compared with other facts")
            return _INVALID
        factors = [node.get(name, default) for name, default in (("times", 1.0), ("plus", 0.0))]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in factors):
            self.source.error(at, "wrong-type", "`times` and `plus` take numbers")
            return _INVALID
        return FactRef(other.name, float(factors[0]), float(factors[1]))

    def _value(self, fact: Fact, value: Any, at: tuple[int, int]) -> Any:
        expected = PYTHON_TYPES[fact.type]
        if isinstance(value, bool) and fact.type is not FactType.BOOLEAN:
            expected = ()
        if not isinstance(value, expected):
            self.source.error(at, "wrong-type", f"{fact.name!r} is {fact.type}; {value!r} is not")
            return _INVALID
        if fact.choices and value not in fact.choices:
            hint = did_you_mean(str(value), fact.choices)
            self.source.error(
                at,
                "bad-choice",
                f"{fact.name!r} is one of {', '.join(fact.choices)}; not {value!r}{hint}",
            )
            return _INVALID
        if isinstance(value, float) and not math.isfinite(value):
            self.source.error(at, "wrong-type", f"{fact.name!r} needs a finite number")
            return _INVALID
        return _PLAIN[fact.type](value)  # ruamel's scalar subclasses become plain values


_PLAIN: dict[FactType, Any] = {
    FactType.INTEGER: int,
    FactType.NUMBER: float,
    FactType.STRING: str,
    FactType.BOOLEAN: bool,
    FactType.DATE: str,
}
_INVALID: Any = object()
MAX_WINDOW_DAYS = 36_500  # a hundred years, as for the windows of `parameters:`
INVALID_EVENT = "?"  # the trigger names no valid event; its error was reported already


def comparisons(condition: Condition) -> Iterator[Comparison]:
    """Every comparison in `condition`, in the order written."""
    if isinstance(condition, Comparison):
        yield condition
    elif isinstance(condition, AllOf | AnyOf):
        for item in condition.items:
            yield from comparisons(item)
    elif isinstance(condition, Not):
        yield from comparisons(condition.item)
