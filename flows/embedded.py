"""`rapport serve --embedded`: the scheduled flows in this process, one temporary
Prefect API shared by all of them, and everything stopped on SIGTERM or Ctrl-C.

Left to Prefect, every flow run without PREFECT_API_URL starts its temporary API server
on first use: two flows due in the same minute raced to start two, and the server
outlived the process on SIGTERM (Prefect stops it at interpreter exit only, which a
SIGTERM skips). So this process starts the one server itself, before any flow runs,
points every flow at it, and stops it when it stops.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from apscheduler.schedulers.base import BaseScheduler
from prefect.context import refresh_global_settings_context
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DRAIN_SECONDS = 5.0  # Prefect's own bound when it flushes its log queue


class Stopped(Exception):
    """SIGTERM or SIGINT reached the process: stop in order."""


@contextmanager
def temporary_api() -> Iterator[str]:
    """The Prefect API every flow of this process records to: PREFECT_API_URL if one is
    configured (nothing is started), else one temporary server, stopped on leaving.

    The address goes into the process's environment and Prefect's global settings, not a
    settings context: the scheduler runs flows on pool threads, which do not inherit
    context variables. Prefect's own ephemeral path finds the same server too (it is a
    per-process singleton), so no flow can start a second one."""
    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    server = SubprocessASGIServer()
    try:
        server.start()
        os.environ["PREFECT_API_URL"] = server.api_url
        refresh_global_settings_context()
        yield server.api_url
    finally:
        # Logs and events still queued go out while the server is up (as Prefect's
        # test harness does), not into connection errors after it stopped.
        APILogWorker.drain_all(timeout=DRAIN_SECONDS)
        EventsWorker.drain_all(timeout=DRAIN_SECONDS)
        server.stop()
        os.environ.pop("PREFECT_API_URL", None)
        refresh_global_settings_context()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) and SIGINT (Ctrl-C) raise `Stopped` in the main
    thread, so the `finally` blocks that stop the scheduler and the API run; Python's
    default for SIGTERM ends the process without them."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signal.Signals(signum).name)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_embedded(scheduler: BaseScheduler, announce: Callable[[str], None]) -> None:
    """Run a blocking scheduler until SIGTERM or SIGINT, its flows recording to one API.

    The first signal stops scheduling, lets running flows finish (their end is recorded)
    and then stops the API; a second one stops without waiting for them (their work is
    idempotent: keys and leases make the next run's repeat add nothing)."""
    with stop_on_signals():
        try:
            with temporary_api() as api:
                announce(f"flows record to the Prefect API at {api}")
                try:
                    announce("embedded scheduler running; Ctrl-C or SIGTERM stops it")
                    scheduler.start()
                except Stopped as stopped:
                    announce(f"{stopped}: waiting for running flows, then stopping")
                    if scheduler.running:
                        scheduler.shutdown(wait=True)
        except Stopped as again:
            announce(f"{again}: stopped the Prefect API without waiting for running flows")
