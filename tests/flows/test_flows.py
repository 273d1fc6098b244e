"""The flows under Prefect's test harness: one harness for the whole session.

Each flow is thin; these tests check the orchestration: that a run goes end to end on
a real database and a real SMTP server on loopback, publishes its artifacts, fails
visibly when a provider is down without losing a message, and that two dispatch runs
at once deliver each message once.
"""

from __future__ import annotations

import asyncio
import email
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, distinct, func, insert, select

from rapport.services.settings import Settings, get_settings
from storage.imports import import_customers, import_event_list, import_events
from storage.models import Customer
from storage.outbox import store_messages
from storage.planned import PlannedMessage
from storage.tables import CUSTOMERS, FIRINGS, MESSAGES, TASKS
from tests.loopback import LOOPBACK, SmtpScript, SmtpServer, port_of, reserve_port

pytestmark = pytest.mark.usefixtures("prefect_harness")

# Noon in Shanghai, the sample's main timezone: outside quiet hours for most customers.
AS_OF = datetime(2026, 6, 30, 4, 0, tzinfo=UTC)


def configure(monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path, port: int) -> None:
    """Point Rapport's settings (and the flows' cached engines) at this test's world."""
    from flows import context

    monkeypatch.setenv("RAPPORT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RAPPORT_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("RAPPORT_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("RAPPORT_SMTP_HOST", LOOPBACK)
    monkeypatch.setenv("RAPPORT_SMTP_PORT", str(port))
    monkeypatch.setenv("RAPPORT_SMTP_TLS", "none")
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "flow-test-secret")
    get_settings.cache_clear()
    context._engine.cache_clear()


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path, smtp: Any
) -> Iterator[tuple[Engine, SmtpScript]]:
    script, server = smtp
    configure(monkeypatch, engine, tmp_path, server.port)
    yield engine, script
    get_settings.cache_clear()


def sample(engine: Engine, tmp_path: Path, customers: int = 80) -> None:
    from rapport.demo.sample import write_sample

    files = write_sample(tmp_path / "sample", customers=customers, end=AS_OF)
    import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
    import_events(engine, files.events, imported_at=AS_OF)


def latest_artifact(key: str) -> Any:
    """The data of the newest artifact with `key`, as the API serves it to the UI."""
    from prefect.settings import PREFECT_API_URL

    response = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1},
    )
    response.raise_for_status()
    (artifact,) = response.json()
    return artifact["data"]


def statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(select(MESSAGES.c.status, func.count()).group_by("status"))
        return Counter({status: count for status, count in rows})


def emailed_ids(script: SmtpScript) -> list[str]:
    return [email.message_from_bytes(r.raw)["Message-ID"] for r in script.received]


def test_evaluate_dispatch_watch_and_report_end_to_end(
    world: tuple[Engine, SmtpScript], tmp_path: Path
) -> None:
    from flows.dispatch import dispatch_outbox
    from flows.evaluate import evaluate_rules
    from flows.report import daily_report
    from flows.sla import watch_sla

    engine, script = world
    sample(engine, tmp_path)
    evaluated = evaluate_rules(as_of=AS_OF.isoformat(), batch_size=25)
    assert evaluated["customers"] == 80 and evaluated["messages planned"] > 0
    firings = latest_artifact("evaluate-firings")
    fired = {row["rule"]: row["count"] for row in json.loads(str(firings))}
    assert sum(fired.values()) == evaluated["firings"] > 0
    owners = {
        row["owner"]: row["count"] for row in json.loads(str(latest_artifact("evaluate-tasks")))
    }
    assert sum(owners.values()) == evaluated["tasks opened"]

    dispatched = asyncio.run(dispatch_outbox(as_of=AS_OF.isoformat(), batch_size=20))
    planned = sum(statuses(engine).values())
    assert dispatched["claimed"] == planned == evaluated["messages planned"]
    assert statuses(engine)["sending"] == 0  # every claimed message was settled
    assert dispatched["channels"].get("email", 0) == len(script.received)
    assert len(set(emailed_ids(script))) == len(script.received)

    later = (AS_OF + timedelta(days=3)).isoformat()
    watched = watch_sla(as_of=later)
    with engine.connect() as connection:
        open_tasks = connection.scalar(
            select(func.count()).select_from(TASKS).where(TASKS.c.status == "open")
        )
    assert watched["overdue open tasks"] <= (open_tasks or 0)
    report = daily_report(day=AS_OF.date().isoformat(), as_of=later)
    assert report["messages sent"] == dispatched["outcomes"].get("sent", 0)
    page = tmp_path / "reports" / f"relationship-report-{AS_OF.date().isoformat()}.html"
    assert report["relationship report"] == str(page)
    assert "<svg" in page.read_text(encoding="utf-8")
    summary = str(latest_artifact("relationship-report"))
    assert "| Customers | 80 |" in summary and "| general |" in summary
    assert str(page) in summary


def plan_emails(engine: Engine, count: int) -> None:
    """`count` customers who accept email, each with one service message due now."""
    customers = [
        {
            "id": f"m{n:05d}",
            "email": f"m{n:05d}@example.com",
            "segment": "consumer",
            "locale": "en",
            "timezone": "Asia/Shanghai",  # AS_OF is noon there
            "consent_email": True,
            "attributes": {},
        }
        for n in range(count)
    ]
    planned = [
        PlannedMessage(
            key=f"flowtest.0:{c['id']}:once",
            customer_id=c["id"],
            rule_id="flowtest",
            template="base_service_reminder",
            channels=("email",),
            purpose="service",
            due_at=AS_OF,
            event_id=None,
        )
        for c in customers
    ]
    with engine.begin() as connection:
        connection.execute(insert(CUSTOMERS), customers)
        store_messages(connection, planned, AS_OF)


def test_smtp_down_fails_the_run_visibly_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path
) -> None:
    from flows.dispatch import DeliveryOutage, dispatch_outbox

    sock = reserve_port()  # bound, not listening: connections are refused
    configure(monkeypatch, engine, tmp_path, port_of(sock))
    plan_emails(engine, 30)
    state = asyncio.run(dispatch_outbox(as_of=AS_OF.isoformat(), return_state=True))
    assert state.is_failed()
    with pytest.raises(DeliveryOutage, match="nothing could be delivered on email"):
        state.result()
    assert statuses(engine) == {"pending": 30}  # back in the outbox, due after backoff

    script = SmtpScript()
    server = SmtpServer(script, sock)
    server.start()
    try:
        retry_at = (AS_OF + timedelta(minutes=5)).isoformat()
        resumed = asyncio.run(dispatch_outbox(as_of=retry_at))
    finally:
        server.stop()
        sock.close()
    assert resumed["outcomes"] == {"sent": 30}
    assert statuses(engine) == {"sent": 30}
    assert len(set(emailed_ids(script))) == len(script.received) == 30


@pytest.mark.parametrize("secret", [Settings.model_fields["secret_key"].default, ""])
def test_a_dispatch_run_with_a_known_or_empty_secret_fails_before_sending(
    world: tuple[Engine, SmtpScript], monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """A deployment run by a Prefect worker never passes through the command line's
    check: the flow refuses to sign links with a secret anyone knows, and says why."""
    from flows.dispatch import dispatch_outbox

    engine, script = world
    plan_emails(engine, 3)
    monkeypatch.setenv("RAPPORT_SECRET_KEY", secret)
    get_settings.cache_clear()
    state = asyncio.run(dispatch_outbox(as_of=AS_OF.isoformat(), return_state=True))
    assert state.is_failed()
    with pytest.raises(ValueError, match="^RAPPORT_SECRET_KEY is (the documented default|empty), "):
        state.result()
    assert statuses(engine) == {"pending": 3} and script.received == []


def test_a_major_complaint_gets_its_task_when_ingested(
    world: tuple[Engine, SmtpScript], tmp_path: Path
) -> None:
    from flows.ingest import ingest_events

    engine, _ = world
    sample(engine, tmp_path, customers=10)
    with engine.connect() as connection:
        customer = connection.scalar(select(Customer.id).order_by(Customer.id))  # type: ignore[arg-type]
    complaint = {
        "id": "api-complaint-1",
        "customer_id": customer,
        "type": "feedback",
        "occurred_at": (AS_OF - timedelta(minutes=5)).isoformat(),
        "level": "major",
        "category": "complaint",
        "text": "Several of our stores received the wrong goods.",
    }
    stored = import_event_list(engine, [complaint], imported_at=AS_OF).stored_ids
    assert stored == ["api-complaint-1"]
    figures = ingest_events(event_ids=stored, as_of=AS_OF.isoformat())
    assert figures["tasks opened"] >= 1
    with engine.connect() as connection:
        owners = set(
            connection.scalars(select(TASKS.c.owner_role).where(TASKS.c.customer_id == customer))
        )
    assert "management" in owners
    again = ingest_events(event_ids=stored, as_of=AS_OF.isoformat())
    assert again["tasks opened"] == 0


def test_two_dispatch_runs_at_once_deliver_each_message_once(
    world: tuple[Engine, SmtpScript],
) -> None:
    from flows.dispatch import dispatch_outbox

    engine, script = world
    plan_emails(engine, 400)
    # The SMTP server holds every message until both runs hold claims, so the runs
    # certainly overlap (Prefect may start the second one a few seconds late).
    script.gate = threading.Event()
    watcher = threading.Thread(target=open_when_two_dispatchers_claim, args=(engine, script.gate))
    watcher.start()

    async def both() -> list[dict[str, Any]]:
        runs = (dispatch_outbox(as_of=AS_OF.isoformat(), batch_size=10) for _ in range(2))
        return list(await asyncio.gather(*runs))

    try:
        first, second = asyncio.run(both())
    finally:
        script.gate.set()
        watcher.join()
    assert first["claimed"] > 0 and second["claimed"] > 0
    assert first["claimed"] + second["claimed"] == 400
    assert statuses(engine) == {"sent": 400}
    ids = emailed_ids(script)
    assert len(ids) == len(set(ids)) == 400


def open_when_two_dispatchers_claim(engine: Engine, gate: threading.Event) -> None:
    """Sets `gate` once rows are claimed by two different dispatchers (or after 60 s)."""
    claimers = select(func.count(distinct(MESSAGES.c.claimed_by))).where(
        MESSAGES.c.status == "sending"
    )
    for _ in range(1_200):
        with engine.connect() as connection:
            if (connection.scalar(claimers) or 0) >= 2:
                break
        if gate.wait(0.05):
            return
    gate.set()


def test_an_embedded_job_runs_its_flow(world: tuple[Engine, SmtpScript]) -> None:
    """What APScheduler calls at a scheduled time: the entrypoint's flow, here the async
    dispatch flow (run to completion on its own event loop)."""
    from flows.schedules import run_flow

    engine, script = world
    plan_emails(engine, 5)
    now = datetime.now(UTC)  # the job runs on the clock, not at AS_OF
    noon_zone = f"Etc/GMT{now.hour - 12:+d}"  # where it is about noon now (POSIX sign)
    with engine.begin() as connection:
        connection.execute(MESSAGES.update().values(due_at=now))
        connection.execute(CUSTOMERS.update().values(timezone=noon_zone))
    run_flow("flows/dispatch.py:dispatch_outbox")
    assert statuses(engine) == {"sent": 5}
    assert len(script.received) == 5


def test_a_bare_date_as_of_is_read_in_the_configured_timezone(
    world: tuple[Engine, SmtpScript], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flows parse `as_of` as the command line does: `2026-06-30` is the start of
    that day in RAPPORT_TIMEZONE (it used to be rejected for lacking an offset)."""
    from flows.evaluate import evaluate_rules

    engine, _ = world
    monkeypatch.setenv("RAPPORT_TIMEZONE", "Asia/Shanghai")
    get_settings.cache_clear()
    sample(engine, tmp_path, customers=20)
    evaluated = evaluate_rules(as_of="2026-06-30", batch_size=25)
    assert evaluated["customers"] == 20 and evaluated["firings"] > 0
    with engine.connect() as connection:
        moments = set(connection.scalars(select(FIRINGS.c.as_of).distinct()))
    as_utc = {m.replace(tzinfo=UTC) if m.tzinfo is None else m.astimezone(UTC) for m in moments}
    assert as_utc == {datetime(2026, 6, 29, 16, 0, tzinfo=UTC)}
