"""Dispatching through a real SMTP server on loopback: every message accounted for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, select

from actions.channels.base import Delivery, Envelope, Ticket
from actions.channels.email import SmtpSender
from actions.dispatch import DispatchReport, DispatchSettings, dispatch_once
from actions.templates import Templates
from actions.unsubscribe import unsubscribe_url
from engine.model import RuleSet
from storage.models import Event, OutboxMessage
from storage.outbox import store_messages
from storage.planned import PlannedMessage
from storage.tables import CUSTOMERS, MESSAGES
from tests.conftest import fresh_engine
from tests.factories import add_customer, add_events
from tests.loopback import LOOPBACK, SmtpScript, SmtpServer, port_of, reserve_port

NOON = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
RULES = RuleSet(revision="test", rules=())
SETTINGS = DispatchSettings(
    worker="w1",
    company={"name": "Acme", "service_phone": "1", "website": "https://acme"},
    public_url="https://acme",
    secret_key="k",
    max_attempts=3,
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = fresh_engine("sqlite", tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    folder = tmp_path / "templates"
    folder.mkdir()
    for locale in ("zh-CN", "en"):
        (folder / f"note.{locale}.yaml").write_text(
            'subject: "Hello {{ customer.name }}"\ntext: "Service note for {{ customer.id }}"\n'
        )
    return Templates(folder)


def plan(engine: Engine, count: int, zone: str = "UTC", **customer: object) -> list[str]:
    keys = []
    for n in range(count):
        cid = f"c{n}"
        add_customer(
            engine,
            cid,
            timezone=zone,
            email=f"{cid}@example.com",
            consent_email=True,
            name=f"Customer {n}",
            locale="en",
            **customer,
        )
        keys.append(f"note.0:{cid}:once")
    with engine.begin() as connection:
        store_messages(
            connection,
            [
                PlannedMessage(key, f"c{n}", "note", "note", ("email",), "service", NOON, None)
                for n, key in enumerate(keys)
            ],
            NOON,
        )
    return keys


def dispatch(
    engine: Engine,
    templates: Templates,
    port: int,
    at: datetime,
    settings: DispatchSettings = SETTINGS,
) -> DispatchReport:
    async def run() -> DispatchReport:
        sender = SmtpSender(
            LOOPBACK,
            port,
            sender_address="rapport@example.com",
            timeout=2.0,
            local_hostname="client.loopback",
        )
        try:
            return await dispatch_once(engine, {"email": sender}, templates, RULES, at, settings)
        finally:
            await sender.close()

    return asyncio.run(run())


def statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(OutboxMessage.key, OutboxMessage.status)).all())


def test_delivery_records_sent_and_a_contact_event(engine, templates, smtp) -> None:
    script, server = smtp
    keys = plan(engine, 5)
    report = dispatch(engine, templates, server.port, NOON)
    assert report.outcomes["sent"] == 5 and report.channels["email"] == 5
    assert sorted(r.message["X-Rapport-Key"] for r in script.received) == sorted(keys)
    assert set(statuses(engine).values()) == {"sent"}
    with engine.connect() as connection:
        contacts = connection.execute(select(Event.id).where(Event.type == "contact")).all()
    assert len(contacts) == 5
    assert dispatch(engine, templates, server.port, NOON + timedelta(days=1)).claimed == 0


def plan_purposes(engine: Engine, *purposes: str) -> dict[str, str]:
    """One email customer per purpose, each with one message of it due at noon; returns
    each purpose's idempotency key."""
    keys = {}
    for purpose in purposes:
        add_customer(engine, purpose, email=f"{purpose}@example.com", consent_email=True)
        keys[purpose] = f"note.0:{purpose}:once"
    planned = [
        PlannedMessage(key, cid, "note", "note", ("email",), cid, NOON, None)
        for cid, key in keys.items()
    ]
    with engine.begin() as connection:
        store_messages(connection, planned, NOON)
    return keys


def test_marketing_email_carries_one_click_unsubscribe_headers(engine, templates, smtp) -> None:
    """RFC 2369 and RFC 8058, as large mailbox providers require of bulk senders: every
    message but a service one names its signed https link, and says a POST to it
    unsubscribes; `unsubscribe_mailto` adds a mailto: address after it."""
    script, server = smtp
    keys = plan_purposes(engine, "marketing", "care", "service")
    assert dispatch(engine, templates, server.port, NOON).outcomes["sent"] == 3
    received = {r.message["X-Rapport-Key"]: r.message for r in script.received}
    for purpose in ("marketing", "care"):
        message = received[keys[purpose]]
        link = unsubscribe_url("https://acme", "k", purpose, "email")
        assert message["List-Unsubscribe"] == f"<{link}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    service = received[keys["service"]]
    assert service["List-Unsubscribe"] is None and service["List-Unsubscribe-Post"] is None


def test_a_configured_mailbox_adds_a_mailto_unsubscribe(engine, templates, smtp) -> None:
    script, server = smtp
    plan_purposes(engine, "marketing")
    settings = replace(SETTINGS, unsubscribe_mailto="unsubscribe@acme.example")
    assert dispatch(engine, templates, server.port, NOON, settings).outcomes["sent"] == 1
    (message,) = (r.message for r in script.received)
    link = unsubscribe_url("https://acme", "k", "marketing", "email")
    mailto = "mailto:unsubscribe@acme.example?subject=unsubscribe&body=" + quote(link, safe="")
    assert message["List-Unsubscribe"] == f"<{link}>, <{mailto}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_4xx_is_retried_with_backoff_until_it_succeeds(engine, templates, smtp) -> None:
    script, server = smtp
    plan(engine, 4)
    script.defer_data = 2
    first = dispatch(engine, templates, server.port, NOON)
    assert (first.outcomes["sent"], first.outcomes["retrying"]) == (2, 2)
    assert dispatch(engine, templates, server.port, NOON + timedelta(seconds=30)).claimed == 0
    second = dispatch(engine, templates, server.port, NOON + timedelta(minutes=1))
    assert second.outcomes["sent"] == 2
    assert set(statuses(engine).values()) == {"sent"}
    assert len({r.message["X-Rapport-Key"] for r in script.received}) == 4


def test_a_5xx_fails_with_the_servers_reply_and_is_never_retried(engine, templates, smtp) -> None:
    script, server = smtp
    plan(engine, 2)
    script.unknown_users = {"c1@example.com"}
    report = dispatch(engine, templates, server.port, NOON)
    assert (report.outcomes["sent"], report.outcomes["failed"]) == (1, 1)
    with engine.connect() as connection:
        failed = connection.execute(
            select(OutboxMessage.last_error).where(OutboxMessage.status == "failed")
        ).scalar_one()
    assert "550" in failed
    assert dispatch(engine, templates, server.port, NOON + timedelta(days=1)).claimed == 0


def test_a_connection_dropped_mid_message_is_retried(engine, templates, smtp) -> None:
    script, server = smtp
    plan(engine, 1)
    script.drop_data = 1
    assert dispatch(engine, templates, server.port, NOON).outcomes["retrying"] == 1
    assert (
        dispatch(engine, templates, server.port, NOON + timedelta(minutes=1)).outcomes["sent"] == 1
    )


def test_server_down_then_up_loses_nothing(engine, templates) -> None:
    sock = reserve_port()
    plan(engine, 3)
    down = dispatch(engine, templates, port_of(sock), NOON)
    assert down.outcomes["retrying"] == 3
    script = SmtpScript()
    server = SmtpServer(script, sock)
    server.start()
    try:
        up = dispatch(engine, templates, server.port, NOON + timedelta(minutes=1))
    finally:
        server.stop(no_assert=True)
        sock.close()
    assert up.outcomes["sent"] == 3 and len(script.received) == 3


def test_after_max_attempts_a_temporary_failure_becomes_final(engine, templates) -> None:
    sock = reserve_port()
    plan(engine, 1)
    at = NOON
    outcomes = []
    for _ in range(SETTINGS.max_attempts):
        outcomes.append(dispatch(engine, templates, port_of(sock), at).outcomes)
        at += timedelta(hours=3)
    sock.close()
    assert [o.most_common(1)[0][0] for o in outcomes] == ["retrying", "retrying", "failed"]
    assert statuses(engine) == {"note.0:c0:once": "failed"}


def test_guards_defer_at_night_and_suppress_without_consent(engine, templates, smtp) -> None:
    script, server = smtp
    plan(engine, 1, zone="Asia/Shanghai")  # 12:00 UTC is 20:00 in Shanghai: allowed
    night = NOON + timedelta(hours=2)  # 22:00 in Shanghai
    with engine.begin() as connection:
        connection.execute(MESSAGES.update().values(due_at=night))
    report = dispatch(engine, templates, server.port, night)
    assert report.outcomes["deferred"] == 1 and report.reasons["quiet_hours"] == 1
    with engine.connect() as connection:
        due = connection.execute(select(OutboxMessage.due_at)).scalar_one()
    assert due == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert dispatch(engine, templates, server.port, due).outcomes["sent"] == 1
    assert len(script.received) == 1


def test_cross_sell_skips_what_the_customer_already_bought(engine, tmp_path, smtp) -> None:
    """rules/affinity.yaml promises it: after an espresso machine, suggest the grinder,
    tamper, beans ... the customer does not own yet (a grinder bought last year and
    beans bought before `now` are left out; a purchase after `now` does not count)."""
    script, server = smtp
    folder = tmp_path / "cross"
    folder.mkdir()
    for locale in ("zh-CN", "en"):
        (folder / f"pairs.{locale}.yaml").write_text(
            'subject: "Pairs"\ntext: "{{ suggestions | join(\',\') }}"\n'
        )
    add_customer(engine, "c1", timezone="UTC", email="c1@example.com", consent_email=True)
    add_events(
        engine,
        "c1",
        {
            "id": "p1",
            "type": "purchase",
            "occurred_at": NOON - timedelta(days=400),
            "amount": 80.0,
            "product": "grinder",
        },
        {
            "id": "p2",
            "type": "purchase",
            "occurred_at": NOON - timedelta(days=3),
            "amount": 20.0,
            "product": "coffee-beans",
        },
        {
            "id": "p3",
            "type": "purchase",
            "occurred_at": NOON - timedelta(hours=1),
            "amount": 900.0,
            "product": "espresso-machine",
        },
        {
            "id": "p4",
            "type": "purchase",
            "occurred_at": NOON + timedelta(days=1),
            "amount": 15.0,
            "product": "tamper",
        },
    )
    with engine.begin() as connection:
        planned = PlannedMessage(
            "x.0:c1:event:p3", "c1", "x", "pairs", ("email",), "marketing", NOON, "p3"
        )
        store_messages(connection, [planned], NOON)
    rules = RuleSet(
        revision="test",
        rules=(),
        affinity={"espresso-machine": ("grinder", "tamper", "coffee-beans", "milk-frother")},
    )

    async def run() -> DispatchReport:
        sender = SmtpSender(LOOPBACK, server.port, sender_address="r@example.com", timeout=2.0)
        try:
            return await dispatch_once(
                engine, {"email": sender}, Templates(folder), rules, NOON, SETTINGS
            )
        finally:
            await sender.close()

    assert asyncio.run(run()).outcomes["sent"] == 1
    (received,) = script.received
    assert received.message.get_payload(decode=True).decode().strip() == "tamper,milk-frother"


# --- poison messages: one message is the unit of failure ----------------------------

IDN = "用户@例子.中国"


def poisoned_templates(folder: Path) -> Templates:
    """The issue's template: a variable misspelt in a branch only some customers reach."""
    folder.mkdir()
    for locale in ("zh-CN", "en"):
        (folder / f"note.{locale}.yaml").write_text(
            'subject: "Hello {{ customer.name }}"\n'
            "text: \"{% if customer.name == 'Poison' %}{{ customer.nme }}{% endif %}Note\"\n"
        )
    return Templates(folder)


def outcomes(engine: Engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(OutboxMessage.customer_id, OutboxMessage.status, OutboxMessage.last_error)
        ).all()
    return {customer: (status, error) for customer, status, error in rows}


@pytest.mark.parametrize("smtputf8", [True, False])
def test_a_poison_message_fails_alone_with_its_reason(engine, tmp_path, smtputf8) -> None:
    """c1's template branch has a misspelt variable, c2's address is internationalised:
    c1 fails with the template's error, c2 goes out where the server offers SMTPUTF8 and
    fails for good where it does not; everyone else is sent, nothing stays `sending`."""
    script = SmtpScript()
    server = SmtpServer(script, reserve_port(), enable_SMTPUTF8=smtputf8)
    server.start()
    try:
        plan(engine, 4)
        with engine.begin() as connection:
            connection.execute(
                CUSTOMERS.update().where(CUSTOMERS.c.id == "c1").values(name="Poison")
            )
            connection.execute(CUSTOMERS.update().where(CUSTOMERS.c.id == "c2").values(email=IDN))
        report = dispatch(engine, poisoned_templates(tmp_path / "poison"), server.port, NOON)
    finally:
        server.stop()
    settled = outcomes(engine)
    assert settled["c1"][0] == "failed" and "nme" in str(settled["c1"][1])
    assert "render" in str(settled["c1"][1])
    assert {settled[c] for c in ("c0", "c3")} == {("sent", None)}
    if smtputf8:
        assert settled["c2"] == ("sent", None)
        (idn,) = [r for r in script.received if r.rcpt_tos == [IDN]]
        assert "SMTPUTF8" in idn.mail_options and idn.message["To"] == IDN
    else:
        assert settled["c2"][0] == "failed" and "SMTPUTF8" in str(settled["c2"][1])
        assert "用户" not in str(settled["c2"][1])  # the reason does not quote the address
    assert report.outcomes["failed"] == (1 if smtputf8 else 2)
    assert report.claimed == 4 and sum(report.outcomes.values()) == 4


class BrokenSender:
    """A channel adapter with a bug for one recipient: it raises what it should not."""

    def __init__(self, inner: SmtpSender, broken_for: str) -> None:
        self.inner, self.broken_for = inner, broken_for

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        if envelope.recipient == self.broken_for:
            raise KeyError(f"no route for {envelope.recipient}")
        return await self.inner.send(envelope, ticket)

    async def close(self) -> None:
        await self.inner.close()


def test_a_channel_that_raises_fails_that_message_only(engine, templates, smtp) -> None:
    script, server = smtp
    plan(engine, 3)

    async def run() -> DispatchReport:
        inner = SmtpSender(LOOPBACK, server.port, sender_address="r@example.com", timeout=2.0)
        sender = BrokenSender(inner, "c1@example.com")
        try:
            return await dispatch_once(engine, {"email": sender}, templates, RULES, NOON, SETTINGS)
        finally:
            await sender.close()

    report = asyncio.run(run())
    settled = outcomes(engine)
    assert settled["c1"][0] == "failed"
    assert "KeyError" in str(settled["c1"][1]) and "c1@example.com" not in str(settled["c1"][1])
    assert settled["c0"] == settled["c2"] == ("sent", None)
    assert report.outcomes == {"sent": 2, "failed": 1}
    assert len(script.received) == 2
