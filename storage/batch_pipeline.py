"""Writing one batch while the next is read: an import's two halves on two cores.

An events import spends about half its time reading and checking rows (Python, holding
the GIL) and half in the database (SQLite's index upkeep and commit, PostgreSQL's COPY
and INSERT ... SELECT in the server), during which the driver releases the GIL. One
thread of its own for the writes lets both halves run at once when a second core is
free. (Measured on 400,000 events into SQLite on a busy 2-core machine, with the larger
batches and the SQLite settings of the same change: 31.2 s before, 23.3 s after.)

At most one batch is in flight, so memory holds two batches whatever the file's size,
and batches are written in order, each in its own transaction, exactly as one thread
would. What each write returns is handed to `done` in the caller's thread, so reports
and callbacks never see a second thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool

Batch = TypeVar("Batch")
Result = TypeVar("Result")


class BatchPipeline(Generic[Batch, Result]):
    """`write(batch)` in a background thread, one batch at a time; `done(result)` in the
    caller's thread, in the order the batches came. Use as a context manager: leaving
    it waits for the last write, and a write's exception is raised in the caller."""

    def __init__(
        self,
        engine: Engine,
        write: Callable[[Batch], Result],
        done: Callable[[Result], None],
    ) -> None:
        self._write, self._done = write, done
        # An in-memory SQLite database lives in one connection per thread (or one
        # connection shared unguarded): a second thread would not see the same rows.
        shared = isinstance(engine.pool, SingletonThreadPool | StaticPool)
        self._threads = None if shared else ThreadPoolExecutor(1, "rapport-batch-writer")
        self._pending: Future[Result] | None = None

    def submit(self, batch: Batch) -> None:
        """Waits for the batch before (reporting what it did), then starts this one."""
        self._settle()
        if self._threads is None:
            self._done(self._write(batch))
        else:
            self._pending = self._threads.submit(self._write, batch)

    def _settle(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._done(pending.result())

    def __enter__(self) -> BatchPipeline[Batch, Result]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """The last write is always waited for: a batch is never left half-written by a
        reader that failed. Its own failure is raised unless another one already is."""
        try:
            if kind is None:
                self._settle()
            elif self._pending is not None:
                self._pending.exception()  # wait; the caller's exception wins
        finally:
            if self._threads is not None:
                self._threads.shutdown(wait=True)
