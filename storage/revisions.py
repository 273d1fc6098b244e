"""Stored revisions of the rules: each valid revision once, with its files, and which
one is active. Deciding which rules are in force is `rapport.services.rules`."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select, update

from engine.loader import load_rules
from engine.model import RuleSet
from storage.dialect import insert_ignoring_conflicts
from storage.tables import REVISIONS


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
    return None if files is None else _rebuilt(files)


def stored_revision(engine: Engine, revision: str) -> RuleSet | None:
    """The stored revision with this hash, rebuilt from its files (None if unknown)."""
    with engine.connect() as connection:
        files = connection.scalar(select(REVISIONS.c.files).where(REVISIONS.c.hash == revision))
    return None if files is None else _rebuilt(files)


def _rebuilt(files: dict[str, str]) -> RuleSet | None:
    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        return load_rules(Path(folder)).ruleset
