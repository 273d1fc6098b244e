"""`rapport dispatch` as real processes against a real SMTP server on loopback.

Crash safety: a dispatcher is killed with SIGKILL at random points while it sends
2,000 messages and restarted until everything is sent (five rounds of two kills, each
round with a fresh database and SMTP server). One customer in 50 has a poison message
mixed into the batches: a template that fails for them (a misspelt variable in a branch
only they take, a division by zero), an address the server refuses, one with a line
break, or an internationalised one while the server does not offer SMTPUTF8 (every
other round it does, and those go out). Nothing may be lost, no message may arrive
under a key that was not planned or that was poison, every poison row ends `failed`
with its reason and every other row `sent`, and a key may arrive twice only when the
dispatcher died between the server's acceptance and the commit of `sent` (at most one
repeat per kill).

Killed dispatchers leave claimed rows behind. Instead of waiting for their leases to
run out, each restart passes an `--as-of` later than the previous run's lease, so the
rows are reclaimable at once: the test waits for processes, never for the clock.

Concurrency: two dispatchers started together on the same PostgreSQL database share
5,000 due messages, and each message is delivered exactly once.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, func, insert, select

from actions.channels.mime import message_id
from storage.outbox import store_messages
from storage.planned import PlannedMessage
from storage.tables import CUSTOMERS, MESSAGES
from tests.conftest import fresh_engine
from tests.loopback import LOOPBACK, SmtpScript, SmtpServer, reserve_port

NOON = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
LEASE = 5  # seconds, the smallest `rapport dispatch --lease` accepts
STEP = timedelta(seconds=2 * LEASE)  # each restart's clock is past the last run's leases
ROUNDS = 5  # the issue asks for at least five repetitions
KILLS_PER_ROUND = 2
SMTP_CONNECTIONS = 4  # SmtpSender's default max_connections, as `rapport dispatch` uses
MESSAGE_COUNT = 2_000
SEED = 20260701

POLICY = """\
policy:
  quiet_hours: {start: "00:00", end: "00:00"}  # equal: no quiet hours
  frequency_cap: {marketing: 1000, window: 1d}
"""
RULE = """\
rules:
  - id: crash_note
    description: Never fires here; the loader needs at least one rule.
    trigger: schedule
    when:
      - tier: high
    actions: [{tag: {tag: crash}}]
    reentry: once
"""
TEMPLATE = (
    'subject: "Hello {{ customer.name }}"\n'
    "text: \"{% if customer.name.startswith('Poison') %}{{ customer.nme }}{% endif %}"
    "{% if customer.name.startswith('Zero') %}{{ 1 // (customer.id | length - 6) }}{% endif %}"
    'Service note for {{ customer.id }}"\n'
)
POISON_EVERY = 50  # one customer in 50: 40 poison messages among 2,000
POISONS = ("template", "runtime", "refused", "header", "idn")
REASONS = {  # what the failed row's reason says, per poison
    "template": "text: UndefinedError: 'dict object' has no attribute 'nme'",
    "runtime": "did not render: ZeroDivisionError",
    "refused": "recipient refused: 550",
    "header": "invalid message: To contains a line break",
    "idn": "the server does not offer SMTPUTF8",
}

KEY_HEADER = re.compile(rb"^X-Rapport-Key: (.*?)\r?$", re.MULTILINE | re.IGNORECASE)
MESSAGE_ID_HEADER = re.compile(rb"^Message-ID: (.*?)\r?$", re.MULTILINE | re.IGNORECASE)
RecordProperty = Callable[[str, object], None]  # pytest's `record_property` fixture
CLAIMED = re.compile(r"Dispatch: ([\d,]+) messages claimed")  # 1,698: grouped as en writes it


def rapport_command() -> list[str]:
    """The `rapport` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "rapport"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from rapport.cli.app import main; main()"]


# --- the SMTP sink ------------------------------------------------------------------


@dataclass
class KeySink(SmtpScript):
    """Records the `X-Rapport-Key` of every accepted message, checking its Message-ID
    and recipient against the key.

    `arrived` is notified on every message, so the test can wait for progress
    instead of sleeping.
    """

    keys: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # a foreign Message-ID or recipient
    addresses: dict[str, str] = field(default_factory=dict)  # customer → address, if unusual
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = bytes(envelope.original_content or b"")
        head = content.split(b"\r\n\r\n", 1)[0]
        key_match, id_match = KEY_HEADER.search(head), MESSAGE_ID_HEADER.search(head)
        key = key_match[1].decode() if key_match else "<no key>"
        with self.arrived:
            self.keys.append(key)
            customer = key.split(":")[1] if key.count(":") == 2 else "?"
            if id_match is None or id_match[1].decode() != message_id(key):
                self.mismatched.append(f"{key}: Message-ID {id_match and id_match[1]!r}")
            if envelope.rcpt_tos != [self.addresses.get(customer, f"{customer}@example.com")]:
                self.mismatched.append(f"{key}: sent to {envelope.rcpt_tos}")
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.keys)

    def wait_for(self, count: int, process: subprocess.Popen[str], limit: float) -> bool:
        """Until `count` messages arrived (True) or `process` ended (False)."""
        deadline = time.monotonic() + limit
        with self.arrived:
            while len(self.keys) < count:
                if process.poll() is not None:
                    return False
                if time.monotonic() > deadline:
                    raise AssertionError(f"no progress: {len(self.keys)} of {count} messages")
                self.arrived.wait(0.05)  # wakes on every message; the timeout re-checks poll()
        return True


@pytest.fixture
def sink() -> Iterator[tuple[KeySink, SmtpServer]]:
    script = KeySink()
    server = SmtpServer(script, reserve_port())
    server.start()
    yield script, server
    server.stop()


# --- setting up a database and running `rapport dispatch` ---------------------------


def poison_for(number: int) -> str | None:
    """Which poison customer `number`'s message carries, if any (see the docstring)."""
    if number % POISON_EVERY != 7:
        return None
    return POISONS[number // POISON_EVERY % len(POISONS)]


def poison_customer(customer: dict[str, Any], poison: str | None) -> dict[str, Any]:
    """What makes a customer's message poison: their name (for the template), their
    address, or (`refused`) the server's answer, set up in `KeySink.unknown_users`."""
    ident = customer["id"]
    if poison == "template":
        customer["name"] = f"Poison {ident}"
    elif poison == "runtime":
        customer["name"] = f"Zero {ident}"
    elif poison == "header":
        customer["email"] = f"{ident}@example.com>\r\nRCPT TO:<all@example.com>"
    elif poison == "idn":
        customer["email"] = f"客户{ident}@例子.中国"
    return customer


def plan_service_notes(engine: Engine, count: int, poisoned: bool = False) -> list[str]:
    """`count` customers with email consent, and one due service message each;
    `poisoned`: one customer in 50 has a poison message (`poison_for`)."""
    customers: list[dict[str, Any]] = [
        {
            "id": f"c{n:05d}",
            "name": f"Customer {n}",
            "email": f"c{n:05d}@example.com",
            "segment": "consumer",
            "locale": "en",
            "timezone": "UTC",
            "consent_email": True,
            "consent_sms": False,
            "consent_wechat": False,
            "consent_app": False,
            "attributes": {},
        }
        for n in range(count)
    ]
    if poisoned:
        customers = [poison_customer(c, poison_for(n)) for n, c in enumerate(customers)]
    planned = [
        PlannedMessage(
            f"crash_note.0:{c['id']}:once",
            c["id"],
            "crash_note",
            "note",
            ("email",),
            "service",
            NOON,
            None,
        )
        for c in customers
    ]
    with engine.begin() as connection:
        connection.execute(insert(CUSTOMERS), customers)
        assert store_messages(connection, planned, NOON) == count
    return [p.key for p in planned]


def dispatch_env(folder: Path, database_url: str, smtp_port: int) -> dict[str, str]:
    """A minimal rules folder and template, and the environment pointing at them."""
    rules, templates = folder / "rules", folder / "templates"
    rules.mkdir()
    templates.mkdir()
    (rules / "policy.yaml").write_text(POLICY)
    (rules / "crash.yaml").write_text(RULE)
    (templates / "note.en.yaml").write_text(TEMPLATE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(
        RAPPORT_DATABASE_URL=database_url,
        RAPPORT_RULES_DIR=str(rules),
        RAPPORT_TEMPLATES_DIR=str(templates),
        RAPPORT_OUTBOX_DIR=str(folder / "outbox"),
        RAPPORT_TIMEZONE="UTC",
        RAPPORT_SMTP_HOST=LOOPBACK,
        RAPPORT_SMTP_PORT=str(smtp_port),
        RAPPORT_SMTP_FROM="rapport@example.com",
        RAPPORT_SECRET_KEY="crash-test-secret",
        RAPPORT_STAFF_LOCALE="en",  # the dispatch summary is parsed in English
    )
    return env


def start_dispatcher(
    env: dict[str, str], as_of: datetime, batch_size: int
) -> subprocess.Popen[str]:
    command = [
        *rapport_command(),
        "dispatch",
        "--batch-size",
        str(batch_size),
        "--lease",
        str(LEASE),
        "--as-of",
        as_of.isoformat(),
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> int:
    """Waits for a dispatcher that runs to the end; returns how many it claimed."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"rapport dispatch failed ({process.returncode}):\n{err}"
    found = CLAIMED.search(out)
    assert found, f"no report in the output:\n{out}"
    return int(found[1].replace(",", ""))


def statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(MESSAGES.c.status, func.count()).group_by(MESSAGES.c.status)
        ).all()
    return Counter({status: count for status, count in rows})


# --- crash safety -------------------------------------------------------------------


@dataclass
class RoundResult:
    smtputf8: bool
    poison: int  # poison messages planned
    kills: int
    repeats_per_kill: list[int]  # deliveries by a killed run that were delivered again later
    repeats: int  # deliveries beyond the first, over all keys
    received: int
    seconds: float


def crash_round(
    folder: Path, sink: KeySink, port: int, rng: random.Random, smtputf8: bool
) -> tuple[RoundResult, dict[str, str | None], Engine]:
    """Plan, then kill dispatchers mid-send and restart them until all is settled;
    returns each planned key's poison (None: it must be delivered)."""
    folder.mkdir()
    engine = fresh_engine("sqlite", folder)
    planned = plan_service_notes(engine, MESSAGE_COUNT, poisoned=True)
    keys = {key: poison_for(n) for n, key in enumerate(planned)}
    if smtputf8:  # internationalised addresses go out: they are not poison then
        for n, key in enumerate(planned):
            if keys[key] == "idn":
                keys[key] = None
                sink.addresses[f"c{n:05d}"] = f"客户c{n:05d}@例子.中国"
    for n, key in enumerate(planned):
        if keys[key] == "refused":
            sink.unknown_users.add(f"c{n:05d}@example.com")
    env = dispatch_env(folder, str(engine.url), port)
    started = time.perf_counter()
    as_of = NOON
    killed_runs: list[tuple[int, int]] = []  # [first, last) delivery index of each killed run
    for _ in range(KILLS_PER_ROUND):
        first = sink.count()
        process = start_dispatcher(env, as_of, batch_size=50)
        # Kill after a random number of deliveries plus a random jitter, so the kill
        # lands anywhere: between SMTP transactions, between the server's "250" and
        # the commit of `sent`, during a claim, between batches.
        target = first + rng.randint(1, MESSAGE_COUNT // (KILLS_PER_ROUND + 1))
        if sink.wait_for(target, process, limit=60):
            time.sleep(rng.uniform(0, 0.03))
            process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=30)
        if process.returncode == -signal.SIGKILL:
            killed_runs.append((first, sink.count()))
        else:  # it finished before the kill
            assert process.returncode == 0, f"rapport dispatch failed:\n{err}"
        as_of += STEP
    # The last dispatcher runs undisturbed; later clocks would also take in retries.
    for _ in range(5):
        finish(start_dispatcher(env, as_of, batch_size=50))
        if not statuses(engine).keys() & {"pending", "sending"}:
            break
        as_of += timedelta(hours=1)
    seconds = time.perf_counter() - started
    with sink.lock:
        received = list(sink.keys)
    # A delivery that was not a key's last is one the dispatcher never recorded as sent.
    last = {key: index for index, key in enumerate(received)}
    superseded = [index for index, key in enumerate(received) if last[key] != index]
    repeats_per_kill = [
        sum(1 for index in superseded if begin <= index < end) for begin, end in killed_runs
    ]
    repeats = len(superseded)
    poison = sum(1 for p in keys.values() if p)
    result = RoundResult(
        smtputf8, poison, len(killed_runs), repeats_per_kill, repeats, len(received), seconds
    )
    return result, keys, engine


def failed_reasons(engine: Engine) -> dict[str, str]:
    """Each failed message's key and reason."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(MESSAGES.c.key, MESSAGES.c.last_error).where(MESSAGES.c.status == "failed")
        ).all()
    return {key: str(error) for key, error in rows}


def test_killed_dispatchers_lose_nothing_and_repeat_at_most_once_per_kill(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    rng = random.Random(SEED)
    results: list[RoundResult] = []
    repeated: list[str] = []
    for number in range(ROUNDS):
        smtputf8 = number % 2 == 1
        script = KeySink()
        server = SmtpServer(script, reserve_port(), enable_SMTPUTF8=smtputf8)
        server.start()
        try:
            result, planned, engine = crash_round(
                tmp_path / f"round{number}", script, server.port, rng, smtputf8
            )
        finally:
            server.stop()
        try:
            received = Counter(script.keys)
            good = {key for key, poison in planned.items() if poison is None}
            assert good - set(received) == set(), "lost messages"
            assert set(received) - good == set(), "poison or keys never planned delivered"
            assert script.mismatched == [], "a Message-ID or recipient not the key's"
            poison = len(planned) - len(good)
            assert statuses(engine) == Counter({"sent": len(good), "failed": poison})
            reasons = failed_reasons(engine)
            wrong = {
                key: reasons.get(key)
                for key, kind in planned.items()
                if kind and REASONS[kind] not in reasons.get(key, "")
            }
            assert wrong == {}, "poison rows without their reason"
            assert not any("@例子" in r or "@example.com" in r for r in reasons.values())
        finally:
            engine.dispose()
        results.append(result)
        repeated += sorted(key for key, n in received.items() if n > 1)
        print(
            f"\ncrash round {number}: {result.kills} kills, {result.repeats} repeats "
            f"(per kill: {result.repeats_per_kill}), {result.received} received for "
            f"{len(good)} deliverable, {poison} poison failed with their reason "
            f"(SMTPUTF8 {'offered' if smtputf8 else 'not offered'}), {result.seconds:.1f} s"
        )
    kills = sum(r.kills for r in results)
    repeats = sum(r.repeats for r in results)
    poisoned = sum(r.poison for r in results)
    print(
        f"crash rounds: {kills} kills, {repeats} repeats (same key), 0 lost, 0 foreign keys, "
        f"{poisoned} poison messages, all failed with their reason"
    )
    record_property("kills", kills)
    record_property("repeats", repeats)
    record_property("poison", poisoned)
    record_property("rounds", json.dumps([r.__dict__ for r in results]))
    assert kills >= 5
    # Every repeat comes from a run that was killed, and no kill repeats more than the
    # messages one dispatcher can have in flight (its SMTP connections) ...
    assert sum(sum(r.repeats_per_kill) for r in results) == repeats
    assert all(n <= SMTP_CONNECTIONS for r in results for n in r.repeats_per_kill)
    # ... but the requirement is at most one repeat per kill.
    per_kill = [n for r in results for n in r.repeats_per_kill]
    assert all(r.repeats <= r.kills for r in results), f"repeats per kill {per_kill}: {repeated}"
    assert max(per_kill) <= 1, f"repeats per kill {per_kill}: {repeated}"


# --- two dispatchers on PostgreSQL --------------------------------------------------


def test_two_dispatchers_on_postgresql_deliver_each_message_once(
    tmp_path: Path,
    sink: tuple[KeySink, SmtpServer],
    record_property: RecordProperty,
) -> None:
    script, server = sink
    engine = fresh_engine("postgresql", tmp_path)
    try:
        count = 5_000
        planned = plan_service_notes(engine, count)
        env = dispatch_env(tmp_path, engine.url.render_as_string(hide_password=False), server.port)
        started = time.perf_counter()
        processes = [start_dispatcher(env, NOON, batch_size=100) for _ in range(2)]
        claimed = [finish(process) for process in processes]
        seconds = time.perf_counter() - started
        received = Counter(script.keys)
        assert sorted(received) == sorted(planned)
        assert set(received.values()) == {1}, "a message delivered twice"
        assert statuses(engine) == Counter({"sent": count})
        assert sum(claimed) == count, f"claims overlapped: {claimed}"
        assert all(claimed), f"one dispatcher did all the work: {claimed}"
    finally:
        engine.dispose()
    print(f"\ntwo dispatchers on PostgreSQL: claimed {claimed} of {count}, {seconds:.1f} s")
    record_property("claimed", json.dumps(claimed))
