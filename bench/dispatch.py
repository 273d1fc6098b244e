"""Dispatch throughput: Rapport's dispatcher against plain aiosmtplib, same SMTP sink.

Run as `python -m bench.dispatch [--messages N] [--rounds R]`; prints one JSON object
last. The sink (`bench.smtp_sink`) runs in a process of its own on 127.0.0.1.

- Rapport: N service messages are planned into a fresh SQLite database, then
  `dispatch_once` runs batch after batch (500 per batch) with an `SmtpSender` of 4
  connections until nothing is due: claim, guards, rendering, MIME, SMTP and the
  recorded outcome of every message.
- Plain: the very messages Rapport rendered, built into MIME beforehand, sent with
  `aiosmtplib` over 4 reused connections and nothing else. The ratio Rapport ÷ plain
  has a goal of ≥ 0.8.
- Plain, built while timed: the same, with the MIME building (`build_message`) inside
  the timing, to show how much of the difference is building the messages.

Each side's best round counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import Engine, insert

from actions.channels.base import Delivery, Envelope
from actions.channels.email import SmtpSender, build_message
from actions.dispatch import DispatchReport, DispatchSettings, dispatch_once
from actions.planning import PlannedMessage
from actions.templates import Templates
from engine.model import RuleSet
from storage.db import make_engine
from storage.migrate import upgrade_database
from storage.models import Customer
from storage.outbox import store_messages

LOOPBACK = "127.0.0.1"
NOON = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # outside the default quiet hours in UTC
SENDER = "Rapport <noreply@example.com>"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "messages"
TEMPLATE = "base_service_reminder"  # a real template: text and HTML parts
RULES = RuleSet(revision="bench", rules=())  # the default policy
SETTINGS = DispatchSettings(
    worker="bench",
    company={"name": "Rapport", "service_phone": "400-000-0000", "website": "https://example.com"},
    public_url="https://example.com",
    secret_key="bench",
)


@contextmanager
def smtp_sink(folder: Path) -> Iterator[tuple[int, dict[str, int]]]:
    """Starts `bench.smtp_sink`; yields its port and, after the block, its counts."""
    port_file = folder / "sink.port"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.smtp_sink", str(port_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    counts: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the SMTP sink did not start")
            time.sleep(0.02)
        yield int(port_file.read_text()), counts
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        if out.strip():
            counts.update(json.loads(out.strip().splitlines()[-1]))


def fresh_database(path: Path) -> Engine:
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    return engine


def plan(engine: Engine, count: int) -> None:
    """`count` customers with email consent, one due service message each."""
    customers: list[dict[str, Any]] = [
        {
            "id": f"b{n:06d}",
            "name": f"Customer {n}",
            "email": f"b{n:06d}@example.com",
            "segment": "consumer",
            "locale": "en",
            "timezone": "UTC",
            "consent_email": True,
            "attributes": {},
        }
        for n in range(count)
    ]
    planned = [
        PlannedMessage(
            key=f"bench.0:{c['id']}:once",
            customer_id=c["id"],
            rule_id="bench",
            template=TEMPLATE,
            channels=("email",),
            purpose="service",
            due_at=NOON,
            event_id=None,
        )
        for c in customers
    ]
    with engine.begin() as connection:
        connection.execute(insert(Customer.__table__), customers)  # type: ignore[attr-defined]
        store_messages(connection, planned, NOON)


class Recording:
    """A sender that keeps each envelope it passes on (for the plain side's messages)."""

    def __init__(self, inner: SmtpSender) -> None:
        self.inner = inner
        self.envelopes: list[Envelope] = []

    async def send(self, envelope: Envelope) -> Delivery:
        self.envelopes.append(envelope)
        return await self.inner.send(envelope)

    async def close(self) -> None:
        await self.inner.close()


async def rapport_round(
    engine: Engine, port: int, batch: int, connections: int
) -> tuple[float, DispatchReport, list[Envelope]]:
    """Dispatches everything due; returns the seconds, the report and what was sent."""
    sender = Recording(
        SmtpSender(LOOPBACK, port, sender_address=SENDER, max_connections=connections)
    )
    templates = Templates(TEMPLATES)
    settings = replace(SETTINGS, batch=batch)
    total = DispatchReport()
    started = time.perf_counter()
    try:
        while True:
            report = await dispatch_once(
                engine, {"email": sender}, templates, RULES, NOON, settings
            )
            total.add(report)
            if report.claimed == 0:
                break
    finally:
        await sender.close()
    return time.perf_counter() - started, total, sender.envelopes


async def plain_round(
    port: int, envelopes: list[Envelope], connections: int, *, build_timed: bool
) -> float:
    """Sends the envelopes' messages over `connections` reused aiosmtplib connections.

    With `build_timed`, each MIME message is built while sending (timed); otherwise
    all are built before the clock starts.
    """
    prebuilt = [] if build_timed else [build_message(e, SENDER) for e in envelopes]
    queue: Iterator[Envelope | EmailMessage] = iter(envelopes if build_timed else prebuilt)

    async def worker() -> int:
        client = aiosmtplib.SMTP(hostname=LOOPBACK, port=port)
        await client.connect()
        sent = 0
        try:
            for item in queue:  # one shared iterator: each message goes out once
                message = build_message(item, SENDER) if isinstance(item, Envelope) else item
                await client.send_message(message)
                sent += 1
        finally:
            await client.quit()
        return sent

    started = time.perf_counter()
    sent = await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    assert sum(sent) == len(envelopes), f"plain aiosmtplib sent {sum(sent)} of {len(envelopes)}"
    return seconds


def run(count: int, batch: int, connections: int, rounds: int) -> dict[str, Any]:
    rapport_seconds: list[float] = []
    plain_seconds: list[float] = []
    built_seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as name:
        folder = Path(name)
        with smtp_sink(folder) as (port, sink):
            for _ in range(rounds):
                engine = fresh_database(folder / "dispatch.db")
                plan(engine, count)
                seconds, report, envelopes = asyncio.run(
                    rapport_round(engine, port, batch, connections)
                )
                engine.dispose()
                if report.outcomes != {"sent": count}:
                    raise RuntimeError(f"Rapport did not send everything: {report.outcomes}")
                rapport_seconds.append(seconds)
                for timed, into in ((False, plain_seconds), (True, built_seconds)):
                    into.append(
                        asyncio.run(plain_round(port, envelopes, connections, build_timed=timed))
                    )
    if sink.get("messages") != 3 * count * rounds:
        raise RuntimeError(f"the sink received {sink.get('messages')}, not {3 * count * rounds}")
    rapport_rate = count / min(rapport_seconds)
    plain_rate = count / min(plain_seconds)
    return {
        "messages": count,
        "batch": batch,
        "connections": connections,
        "rounds": rounds,
        "rapport_seconds": rapport_seconds,
        "plain_seconds": plain_seconds,
        "rapport_rate": rapport_rate,
        "plain_rate": plain_rate,
        "ratio": rapport_rate / plain_rate,
        "plain_built_seconds": built_seconds,
        "plain_built_rate": count / min(built_seconds),
        "sink_messages": sink["messages"],
        "sink_mib": sink["bytes"] / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.messages, args.batch, args.connections, args.rounds)))


if __name__ == "__main__":
    main()
