"""Reading rule files: safe YAML with line and column kept on every mapping and list."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.problems import Problem, did_you_mean

MAX_FILE_BYTES = 1024 * 1024


class _Constructor(RoundTripConstructor):
    """Round-trip loading, but dates stay text: the loader validates them with a position."""


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _Constructor
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
    except MarkedYAMLError as error:
        # An unclosed [ or { is worth pointing at where it opened, not where parsing gave up.
        unclosed = error.context is not None and "flow" in error.context
        mark = (error.context_mark if unclosed else None) or error.problem_mark
        at = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = f"{error.context} here is not closed" if unclosed else error.problem
        source.error(at, "yaml-syntax", str(detail or error.context))
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
