"""Reading rule files: safe YAML with line and column kept on every mapping and list.

A hostile file is refused with a position before it can cost more than reading it:
past 1 MiB, past `MAX_DEPTH` levels of nesting (ruamel's own `max_depth`; deeper
documents overflow the stack of the composer, the constructor or the loader's walks),
past `MAX_VALUES` values once every alias is counted as the values it repeats (a
"billion laughs" file is a few lines that name 10^9 values for every walk after the
parser), an alias inside the value it names (a loop no walk ends), or an integer the
engine cannot hold exactly.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, StreamMark, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner

from engine.problems import Problem, did_you_mean

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32  # levels of nesting; the rules shipped use 9
MAX_VALUES = 20_000  # aliases counted as what they repeat; the largest shipped file has 458
# (ruamel reads 10,000-15,000 values a second: this bound is also a bound of 2 s)
MAX_INTEGER = 2**53  # the integers a JSON number (the engine's messages) holds exactly


class LimitError(MarkedYAMLError):
    """A document past one of the bounds above, or with a value other YAML tools would
    read otherwise (an unquoted date); `code` is its problem code."""

    def __init__(self, code: str, problem: str, mark: StreamMark) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.code = code


class _Scanner(RoundTripScanner):
    """Stops at the bracket that nests past `MAX_DEPTH`: the scanner looks ahead over
    every open bracket for a possible key, so 20,000 of them took it 4 s (quadratic)
    before the composer's own depth bound was reached."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        if self.flow_level >= MAX_DEPTH:
            message = f"brackets are nested more than {MAX_DEPTH} levels deep"
            raise LimitError("yaml-too-deep", message, self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)


class _Composer(Composer):
    """Counts every value as it is composed and every alias as the values it repeats,
    and refuses an alias inside the value it names or reaching past `MAX_DEPTH`."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._values = 0
        self._open: list[str] = []  # anchors of the values being composed
        self._expanded: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)
        self._alias_at: StreamMark | None = None

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            self._alias_at = event.start_mark
            return super().compose_node(parent, index)
        self._count(1, event.start_mark)
        self._open.append(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.pop()

    def return_alias(self, a: Any) -> Any:
        at = self._alias_at
        assert at is not None
        if any(a is self.anchors.get(anchor) for anchor in self._open):
            raise LimitError(
                "yaml-too-many-values",
                "this alias sits inside the value it names, which would repeat without end",
                at,
            )
        values, height = self._measure(a)
        if self.depth + height > MAX_DEPTH:
            raise LimitError(
                "yaml-too-deep",
                f"this alias nests its value {self.depth + height} levels deep, "
                f"more than {MAX_DEPTH} levels",
                at,
            )
        self._count(values, at, f"alias *{a.anchor}" if a.anchor else "an alias")
        return a

    def _count(self, values: int, at: StreamMark, what: str = "this value") -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise LimitError(
                "yaml-too-many-values",
                f"{what} brings the file past {MAX_VALUES:,} values "
                "(an alias counts as every value it repeats)",
                at,
            )

    def _measure(self, node: Node) -> tuple[int, int]:
        """The values `node` stands for with its aliases expanded, and its height."""
        known = self._expanded.get(id(node))
        if known is not None:
            return known
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        measured = [self._measure(child) for child in children]
        result = (
            1 + sum(values for values, _ in measured),
            1 + max((height for _, height in measured), default=0),
        )
        self._expanded[id(node)] = result
        return result


class _Constructor(RoundTripConstructor):
    """Round-trip loading, but unquoted dates are refused and integers stay within what
    the engine holds."""

    def construct_quoted_date(self, node: Any) -> Any:
        """An unquoted 2026-12-24 is a date to YAML 1.1 loaders (PyYAML, editors) and
        text to YAML 1.2 ones: the JSON Schema, which wants text, would then pass or fail
        by tool. Quoted, it is text everywhere; the loader validates it with a position."""
        raise LimitError(
            "wrong-type",
            f'quote the date: "{node.value}" (unquoted, YAML tools disagree on its type)',
            node.start_mark,
        )

    def construct_bounded_int(self, node: Any) -> Any:
        try:
            value = self.construct_yaml_int(node)
        except ValueError:  # more digits than Python converts (4,300)
            value = None
        if value is None or abs(value) > MAX_INTEGER:
            raise LimitError(
                "number-too-large",
                f"integers in rule files are within ±{MAX_INTEGER:,} (2^53)",
                node.start_mark,
            )
        return value

    def construct_bounded_float(self, node: Any) -> Any:
        """A float the engine can read: durable_rules' JSON reader refuses the exponent
        form Python writes below 0.0001 and from 10^16 up ("error code: 204", seen
        when evaluate compiled `gte: 0.00001`). NaN and infinities pass through: the
        condition checks call them "not a finite number"."""
        value = self.construct_yaml_float(node)
        if math.isfinite(value) and "e" in repr(float(value)):
            raise LimitError(
                "number-too-large",
                f"{float(value)!r} is beyond the numbers the rule engine reads: write one "
                "from ±0.0001 to ±10^15, or 0",
                node.start_mark,
            )
        return value


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_quoted_date)
_Constructor.add_constructor("tag:yaml.org,2002:float", _Constructor.construct_bounded_float)
_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_bounded_int)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _Constructor
    yaml.Scanner = _Scanner
    yaml.Composer = _Composer
    yaml.max_depth = MAX_DEPTH
    return yaml


@dataclass
class Source:
    """One file being validated: where problems go, and positions of YAML nodes."""

    path: str
    problems: list[Problem] = field(default_factory=list)

    def error(self, at: tuple[int, int], code: str, message: str) -> None:
        self.problems.append(Problem(self.path, at[0], at[1], code, message))

    def unknown_keys(self, node: CommentedMap, allowed: tuple[str, ...], what: str) -> bool:
        """Reports every key of `node` not in `allowed`, with a did-you-mean; any found?"""
        unknown = [key for key in node if key not in allowed]
        for key in unknown:
            hint = did_you_mean(str(key), allowed)
            self.error(Source.key(node, key), "unknown-key", f"unknown {what} {key!r}{hint}")
        return bool(unknown)

    def section(self, node: CommentedMap, key: str, shape: str) -> CommentedMap | None:
        """`node[key]` if it is a mapping; otherwise reports it (as `shape`) and None."""
        value = node[key]
        if not isinstance(value, CommentedMap):
            self.error(Source.value(node, key), "wrong-type", f"`{key}` is a mapping {shape}")
            return None
        return value

    @staticmethod
    def of(node: Any, fallback: tuple[int, int] = (1, 1)) -> tuple[int, int]:
        """1-based (line, column) where a mapping or list starts."""
        if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
            return node.lc.line + 1, node.lc.col + 1
        return fallback

    @staticmethod
    def key(node: CommentedMap, key: Any) -> tuple[int, int]:
        try:
            line, column = node.lc.key(key)
        except KeyError:  # a key merged in with `<<: *anchor` has no position of its own
            return Source.of(node)
        return line + 1, column + 1

    @staticmethod
    def value(node: CommentedMap, key: Any) -> tuple[int, int]:
        try:
            line, column = node.lc.value(key)
        except KeyError:
            return Source.of(node)
        return line + 1, column + 1

    @staticmethod
    def item(node: CommentedSeq, index: int) -> tuple[int, int]:
        line, column = node.lc.item(index)
        return line + 1, column + 1


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory: `*.yaml` and `*.yml` at its top level, sorted."""
    return sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


def content_hash(files: dict[str, bytes]) -> str:
    """The revision id: a SHA-256 over every file's relative path and bytes."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()


def parse(source: Source, raw: bytes) -> Any:
    """The YAML document of a file, or None with the parse problem recorded."""
    if len(raw) > MAX_FILE_BYTES:
        source.error((1, 1), "file-too-large", f"{len(raw):,} bytes; the limit is 1 MiB")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        source.error((line, 1), "not-utf8", f"byte 0x{raw[error.start]:02x} is not UTF-8")
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        document = _yaml().load(text)
    except LimitError as error:
        mark = error.problem_mark
        source.error((mark.line + 1, mark.column + 1), error.code, str(error.problem))
        return None
    except MaxDepthExceededError as error:
        mark = error.problem_mark
        message = f"values are nested more than {MAX_DEPTH} levels deep"
        source.error((mark.line + 1, mark.column + 1), "yaml-too-deep", message)
        return None
    except MarkedYAMLError as error:
        # An unclosed [ or { is worth pointing at where it opened, not where parsing gave up.
        unclosed = error.context is not None and "flow" in error.context
        mark = (error.context_mark if unclosed else None) or error.problem_mark
        at = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = f"{error.context} here is not closed" if unclosed else error.problem
        source.error(at, "yaml-syntax", str(detail or error.context))
        return None
    except ReaderError as error:  # a control character: where it is, not where YAML began
        before = text[: error.position]
        at = (before.count("\n") + 1, len(before) - before.rfind("\n"))
        source.error(at, "yaml-syntax", str(error).splitlines()[0])
        return None
    except YAMLError as error:
        source.error((1, 1), "yaml-syntax", str(error).splitlines()[0])
        return None
    if document is None:
        source.error((1, 1), "empty-file", "the file holds no rules, parameters or tables")
    return None if _reject_tags(source, document, (1, 1)) else document


def _reject_tags(source: Source, node: Any, at: tuple[int, int]) -> bool:
    """Reports YAML tags (`!!python/object`, `!rule`): rule files are plain data only."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, TaggedScalar) or tag is not None:
        source.error(
            Source.of(node, at),
            "wrong-type",
            f"YAML tags such as {tag or node.tag.value} are not allowed in rule files",
        )
        return True
    found = False
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            found |= _reject_tags(source, value, Source.value(node, key))
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            found |= _reject_tags(source, value, Source.item(node, index))
    return found
