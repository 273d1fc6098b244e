"""Which revision of the rules is in force, kept in the database.

A rules directory replaces the running revision only when it is valid as a whole.
When it is not, the problems are logged and the last good revision, stored with its
files, stays in force, so a typo saved at 2 a.m. never stops the morning run.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select, update

from actions.templates import template_checker
from engine.loader import load_rules
from engine.model import RuleSet
from engine.problems import Problem
from storage.dialect import insert_ignoring_conflicts
from storage.tables import REVISIONS

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
) -> tuple[RuleSet, tuple[Problem, ...]]:
    """The directory's rules when valid (stored and made active), else the last good ones.

    Returns the rules in force and the problems found in the directory.
    """
    result = load_rules(directory, template_checker(templates) if templates else None)
    if result.ruleset is not None:
        activate(engine, result.ruleset, now)
        return result.ruleset, result.problems
    for problem in result.errors:
        log.error("rules not applied: %s", problem)
    previous = active_revision(engine)
    if previous is None:
        raise NoRulesInForce(result.problems)
    log.warning("keeping rules revision %s in force", previous.revision[:12])
    return previous, result.problems


def activate(engine: Engine, ruleset: RuleSet, now: datetime) -> None:
    """Stores the revision (once) and makes it the active one."""
    with engine.begin() as connection:
        connection.execute(
            insert_ignoring_conflicts(connection, REVISIONS, ["hash"]),
            [{"hash": ruleset.revision, "loaded_at": now, "files": ruleset.files, "active": False}],
        )
        connection.execute(
            update(REVISIONS).where(REVISIONS.c.hash != ruleset.revision).values(active=False)
        )
        connection.execute(
            update(REVISIONS).where(REVISIONS.c.hash == ruleset.revision).values(active=True)
        )


def active_revision(engine: Engine) -> RuleSet | None:
    """The active stored revision, rebuilt from its files."""
    with engine.connect() as connection:
        files = connection.scalar(select(REVISIONS.c.files).where(REVISIONS.c.active))
    if files is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        return load_rules(Path(folder)).ruleset
