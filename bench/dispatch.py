"""Dispatch throughput: Rapport's dispatcher against plain aiosmtplib, same SMTP sink.

Run as `python -m bench.dispatch [--messages N] [--rounds R]`; prints one JSON object
last. The sink (`rapport.demo.smtp_sink`) runs in a process of its own on 127.0.0.1.

- Rapport: N service messages are planned into a fresh SQLite database, then
  `dispatch_once` runs batch after batch (500 per batch) with an `SmtpSender` of 4
  connections until nothing is due: claim, guards, rendering, MIME, SMTP and the
  recorded outcome of every message.
- Plain: the very messages Rapport rendered, built by the standard library into
  `EmailMessage` objects before the clock starts, sent with aiosmtplib's
  `send_message` over 4 reused connections and nothing else: what a program using
  aiosmtplib as documented does. The ratio Rapport ÷ plain has a goal of ≥ 0.8.
- Plain bytes: the same, but Rapport's own MIME bytes (built beforehand) handed to
  `sendmail`: the wire alone, no message handling at all — the floor.

Each side's best round counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import Engine, insert

from actions.channels.base import Delivery, Envelope, Ticket
from actions.channels.email import SmtpSender
from actions.channels.mime import build_message, message_id
from actions.dispatch import DispatchReport, DispatchSettings, dispatch_batches, dispatch_once
from actions.templates import Templates
from bench.databases import fresh_database
from engine.model import RuleSet
from rapport.demo.smtp_sink import running_sink
from storage.outbox import store_messages
from storage.planned import PlannedMessage
from storage.tables import CUSTOMERS

LOOPBACK = "127.0.0.1"
NOON = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # outside the default quiet hours in UTC
SENDER = "Rapport <noreply@example.com>"
SENDER_ADDRESS = "noreply@example.com"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "messages"
TEMPLATE = "base_service_reminder"  # a real template: text and HTML parts
RULES = RuleSet(revision="bench", rules=())  # the default policy
SETTINGS = DispatchSettings(
    worker="bench",
    company={"name": "Rapport", "service_phone": "400-000-0000", "website": "https://example.com"},
    public_url="https://example.com",
    secret_key="bench",
)


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
        connection.execute(insert(CUSTOMERS), customers)
        store_messages(connection, planned, NOON)


class Recording:
    """A sender that keeps each envelope it passes on (for the plain side's messages)."""

    def __init__(self, inner: SmtpSender) -> None:
        self.inner = inner
        self.envelopes: list[Envelope] = []

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        self.envelopes.append(envelope)
        return await self.inner.send(envelope, ticket)

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
    started = time.perf_counter()
    total = await dispatch_batches(
        lambda: dispatch_once(engine, {"email": sender}, templates, RULES, NOON, settings),
        {"email": sender},
        max_batches=1_000_000,
    )
    return time.perf_counter() - started, total, sender.envelopes


def stdlib_message(envelope: Envelope) -> EmailMessage:
    """The envelope as the standard library builds it: what a program using aiosmtplib's
    `send_message` on its own would send."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = envelope.recipient
    message["Subject"] = envelope.subject
    message["Date"] = format_datetime(NOON)
    message["Message-ID"] = message_id(envelope.key)
    message.set_content(envelope.text)
    if envelope.html is not None:
        message.add_alternative(envelope.html, subtype="html")
    return message


async def plain_round(
    port: int, envelopes: list[Envelope], connections: int, *, raw: bool
) -> float:
    """Sends the envelopes' messages over `connections` reused aiosmtplib connections,
    every message built before the clock starts.

    `raw`: Rapport's own bytes with `sendmail` (the wire alone); otherwise
    `send_message` with the standard library's `EmailMessage` (aiosmtplib as documented).
    """
    built: list[tuple[Envelope, bytes | EmailMessage]] = [
        (e, build_message(e, SENDER, date=NOON) if raw else stdlib_message(e)) for e in envelopes
    ]
    queue = iter(built)

    async def worker() -> int:
        client = aiosmtplib.SMTP(hostname=LOOPBACK, port=port)
        await client.connect()
        sent = 0
        try:
            for envelope, message in queue:  # one shared iterator: each goes out once
                if isinstance(message, EmailMessage):
                    await client.send_message(message)
                else:
                    await client.sendmail(SENDER_ADDRESS, [envelope.recipient], message)
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
    seconds: dict[str, list[float]] = {"rapport": [], "plain": [], "plain_bytes": []}
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as name:
        folder = Path(name)
        with running_sink(folder) as (port, sink):
            for _ in range(rounds):
                engine = fresh_database(f"sqlite:///{folder / 'dispatch.db'}")
                plan(engine, count)
                took, report, envelopes = asyncio.run(
                    rapport_round(engine, port, batch, connections)
                )
                engine.dispose()
                if report.outcomes != {"sent": count}:
                    raise RuntimeError(f"Rapport did not send everything: {report.outcomes}")
                seconds["rapport"].append(took)
                for raw, side in ((False, "plain"), (True, "plain_bytes")):
                    seconds[side].append(
                        asyncio.run(plain_round(port, envelopes, connections, raw=raw))
                    )
    if sink.get("messages") != 3 * count * rounds:
        raise RuntimeError(f"the sink received {sink.get('messages')}, not {3 * count * rounds}")
    rates = {side: count / min(times) for side, times in seconds.items()}
    return {
        "messages": count,
        "batch": batch,
        "connections": connections,
        "rounds": rounds,
        "seconds": seconds,
        "rates": rates,
        "ratio": rates["rapport"] / rates["plain"],
        "ratio_to_bytes": rates["rapport"] / rates["plain_bytes"],
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
