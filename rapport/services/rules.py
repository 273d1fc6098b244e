"""The rules in force: one answer for the command line, the API and the flows.

A rules directory replaces the running revision only when it is valid as a whole,
templates included. When it is not, the problems are logged and the last good
revision, stored in the database with its files, stays in force, so a typo saved at
2 a.m. never stops the morning run. Every entrance asks here, so evaluate, explain,
`customers show` and the API see a customer with the same parameters (tier
thresholds, windows, holidays).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from actions.templates import template_checker
from engine.loader import load_rules
from engine.model import RuleSet
from engine.problems import Problem
from storage.revisions import activate, active_revision, stored_revision

log = logging.getLogger("rapport.rules")


class NoRulesInForce(RuntimeError):
    """The rules directory is invalid and no earlier revision was ever valid."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        super().__init__(
            f"the rules are invalid ({len(problems)} problems) and no earlier revision is stored"
        )


def rules_in_force(
    engine: Engine,
    directory: Path,
    templates: Path | None,
    now: datetime,
    *,
    record: bool = True,
) -> tuple[RuleSet, tuple[Problem, ...]]:
    """The directory's rules when valid, else the last good ones stored.

    With `record`, a valid directory is stored (once) and made the active revision;
    without it (dry runs, read-only commands) nothing is written. Returns the rules in
    force and the problems found in the directory.
    """
    result = load_rules(directory, template_checker(templates) if templates else None)
    if result.ruleset is not None:
        if record:
            activate(engine, result.ruleset, now)
        return result.ruleset, result.problems
    for problem in result.errors:
        log.error("rules not applied: %s", problem)
    previous = active_revision(engine)
    if previous is None:
        raise NoRulesInForce(result.problems)
    log.warning("keeping rules revision %s in force", previous.revision[:12])
    return previous, result.problems


def rules_of_revision(engine: Engine, revision: str) -> RuleSet:
    """Exactly the stored revision `revision`: what a shard of an evaluation runs, so a
    rules edit while the shards run cannot split one evaluation across two revisions."""
    ruleset = stored_revision(engine, revision)
    if ruleset is None:
        raise LookupError(f"rules revision {revision[:12]} is not stored in this database")
    if ruleset.revision != revision:  # the stored files no longer load as they did
        raise LookupError(f"rules revision {revision[:12]} loads as {ruleset.revision[:12]}")
    return ruleset


class WatchedRules:
    """The rules in force for a long-lived process (the API), read again only when a
    file under the rules or templates folder changes: reading them takes a quarter of
    a second, too much to pay per request."""

    def __init__(self, engine: Engine, rules_dir: Path, templates_dir: Path) -> None:
        self._engine = engine
        self._folders = (rules_dir, templates_dir)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[tuple[str, int, int], ...], RuleSet] | None = None

    def get(self) -> RuleSet:
        stamp = tuple(entry for folder in self._folders for entry in _fingerprint(folder))
        with self._lock:
            if self._cached is None or self._cached[0] != stamp:
                ruleset, _ = rules_in_force(self._engine, *self._folders, datetime.now(UTC))
                self._cached = (stamp, ruleset)
            return self._cached[1]


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Each file's path, size and modification time: cheap, and changes with any edit."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
