"""Writing one batch while the next is read: order, failures and the one-batch bound."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from storage.batch_pipeline import BatchPipeline
from storage.db import make_engine


@pytest.fixture
def file_engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'pipeline.db'}")


class Recorder:
    """A write that notes which thread ran it and how many writes overlapped."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on = fail_on
        self.threads: set[str] = set()
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def write(self, batch: int) -> int:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.threads.add(threading.current_thread().name)
        try:
            if batch == self.fail_on:
                raise RuntimeError(f"batch {batch} refused")
            return batch * 10
        finally:
            with self.lock:
                self.running -= 1


def test_results_reach_the_caller_in_order_on_its_own_thread(file_engine: Engine) -> None:
    recorder, seen = Recorder(), []
    caller = threading.current_thread().name

    def done(result: int) -> None:
        seen.append((result, threading.current_thread().name))

    with BatchPipeline(file_engine, recorder.write, done) as pipeline:
        for batch in range(1, 6):
            pipeline.submit(batch)
    assert seen == [(10, caller), (20, caller), (30, caller), (40, caller), (50, caller)]
    assert recorder.threads == {"rapport-batch-writer_0"}
    assert recorder.most_at_once == 1


def test_an_in_memory_database_is_written_from_the_callers_thread() -> None:
    """Each thread would get its own empty in-memory database."""
    recorder, seen = Recorder(), []
    with BatchPipeline(create_engine("sqlite://"), recorder.write, seen.append) as pipeline:
        pipeline.submit(1)
        pipeline.submit(2)
    assert seen == [10, 20]
    assert recorder.threads == {threading.current_thread().name}


def test_a_failed_write_stops_the_batches_after_it(file_engine: Engine) -> None:
    recorder, seen = Recorder(fail_on=2), []
    with (
        pytest.raises(RuntimeError, match="batch 2 refused"),
        BatchPipeline(file_engine, recorder.write, seen.append) as pipeline,
    ):
        for batch in range(1, 5):
            pipeline.submit(batch)
    assert seen == [10]  # batch 3 waited for batch 2 and was never written


def test_a_reader_that_fails_leaves_the_batch_in_flight_written(file_engine: Engine) -> None:
    """The caller's own error wins, but not before the batch being written is done."""
    finished: list[int] = []
    release = threading.Event()

    def slow_write(batch: int) -> int:
        release.wait(timeout=10)
        finished.append(batch)
        return batch

    with (
        pytest.raises(ValueError, match="unreadable"),
        BatchPipeline(file_engine, slow_write, lambda _result: None) as pipeline,
    ):
        pipeline.submit(1)
        release.set()
        raise ValueError("unreadable file")
    assert finished == [1]
