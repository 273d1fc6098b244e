"""The API's reaction worker: event rules run on freshly stored events, off the request.

One thread does the work. Event ids handed to it while it is busy are merged into its
next run, so a burst of requests costs one reaction run, not one per request, and
feedback (a complaint waiting for its task) goes before everything else.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from engine.model import RuleSet
from rapport.services.reactions import react_to_events
from rapport.services.settings import Settings
from storage.revisions import rules_in_force

URGENT = frozenset({"feedback"})
LOG = logging.getLogger(__name__)


class RulesInForce:
    """The rules in force, read again only when a file under the rules or templates
    folder changes (reading them takes a quarter of a second)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._folders = (settings.rules_dir, settings.templates_dir)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[tuple[str, int, int], ...], RuleSet] | None = None

    def get(self) -> RuleSet:
        stamp = tuple(entry for folder in self._folders for entry in _fingerprint(folder))
        with self._lock:
            if self._cached is None or self._cached[0] != stamp:
                ruleset, _ = rules_in_force(self._engine, *self._folders, datetime.now(UTC))
                self._cached = (stamp, ruleset)
            return self._cached[1]


class Reactor:
    def __init__(self, engine: Engine, rules: RulesInForce) -> None:
        self._engine = engine
        self._rules = rules
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rapport-reactions")
        self._lock = threading.Lock()
        self._urgent: list[str] = []
        self._other: list[str] = []
        self._running = False

    def submit(self, events: list[tuple[str, str]]) -> None:
        """Queue stored events, given as (id, type)."""
        if not events:
            return
        with self._lock:
            for event_id, kind in events:
                (self._urgent if kind in URGENT else self._other).append(event_id)
            start, self._running = not self._running, True
        if start:
            self._executor.submit(self._drain)

    def wait(self) -> None:
        """Returns once everything queued so far has been reacted to (tests, shutdown)."""
        self._executor.submit(lambda: None).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch = self._urgent or self._other
                if not batch:
                    self._running = False
                    return
                if batch is self._urgent:
                    self._urgent = []
                else:
                    self._other = []
            try:
                react_to_events(self._engine, self._rules.get(), datetime.now(UTC), event_ids=batch)
            except Exception:  # the events stay unreacted: the every-minute flow retries them
                LOG.exception("event rules failed on %d events", len(batch))


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Each file's path, size and modification time: cheap, and changes with any edit."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
