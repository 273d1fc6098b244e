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

from sqlalchemy import Engine

from rapport.services.reactions import react_to_events
from rapport.services.rules import WatchedRules

URGENT = frozenset({"feedback"})
LOG = logging.getLogger(__name__)


class Reactor:
    def __init__(self, engine: Engine, rules: WatchedRules) -> None:
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
