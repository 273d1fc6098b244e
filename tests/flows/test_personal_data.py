"""Personal data never reaches an artifact, a log line, a stored error or a flow parameter.

A run is fed customers with awkward personal data — an internationalised address,
phone numbers written `+86 (138) 8183-6553` and `132.0466.5439`, WeChat ids, names in
three scripts — and providers that quote it back when they refuse a message (an SMTP
server naming the address in its 550, webhooks naming the recipient and the text).
Events are ingested from a file with a bad row and by id, the rules are evaluated and
the outbox dispatched. Then every artifact, every log line the runs wrote (to the
Prefect API and to the console), every stored reason and error, and every flow run's
parameters are scanned for the data, however it is written.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, insert, select

from storage.imports import import_event_list
from storage.outbox import store_messages
from storage.planned import PlannedMessage
from storage.tables import CUSTOMERS, MESSAGES
from tests.flows.test_flows import AS_OF, configure
from tests.loopback import (
    HttpRequest,
    HttpScript,
    SmtpScript,
    SmtpServer,
    http_server,
    reserve_port,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")

CUSTOMERS_ROWS: list[dict[str, Any]] = [
    {
        "id": "pd1",
        "name": "王芳",
        "email": "用户@例子.中国",
        "phone": "+86 (138) 8183-6553",
        "wechat": "wang_fang88",
        "consent_email": True,
    },
    {
        "id": "pd2",
        "name": "Zoë O'Brien-Łukasz",
        "email": "zoe.obrien@example.com",
        "phone": "132.0466.5439",
        "consent_sms": True,
    },
    {"id": "pd3", "name": "李雷", "wechat": "wxid_k2mf93ab01", "consent_wechat": True},
    {"id": "pd4", "name": "Ólafur Þórsson", "email": "olafur@xn--fiqs8s.xn--fiqz9s"},
]
WORDS = ["王芳", "用户", "wang_fang88", "Zoë", "O'Brien", "zoe.obrien", "李雷", "wxid_k2mf93ab01"]
WORDS += ["Ólafur", "olafur"]
PHONES = ["+86 (138) 8183-6553", "132.0466.5439", "+86 139-0011-2233"]


def needles() -> list[re.Pattern[str]]:
    """Each value as written, and each phone number's digits however they are separated
    (all but the last four: a masked number keeps those)."""
    found = [re.compile(re.escape(word)) for word in WORDS]
    for phone in PHONES:
        digits = re.sub(r"\D", "", phone)[-11:-4]
        found.append(re.compile(r"[\s().+-]*".join(digits)))
    return found


class QuotingSmtp(SmtpScript):
    """Refuses every recipient, quoting the address, as many servers do."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return f"550 5.1.1 <{address}>: recipient unknown"


class QuotingWebhook(HttpScript):
    """Refuses every message, quoting the recipient and the start of the text."""

    def answer(self, request: HttpRequest) -> tuple[int, str]:
        body = request.json()
        with self.lock:
            self.requests.append(request)
        return 400, f"unknown follower {body['recipient']}: {body['text'][:40]}"


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path
) -> Iterator[tuple[Engine, str]]:
    script = QuotingSmtp()
    server = SmtpServer(script, reserve_port())
    server.start()
    try:
        with http_server(QuotingWebhook()) as url:
            monkeypatch.setenv("RAPPORT_WEBHOOK_SMS_URL", f"{url}/sms")
            monkeypatch.setenv("RAPPORT_WEBHOOK_WECHAT_URL", f"{url}/wechat")
            configure(monkeypatch, engine, tmp_path, server.port)
            yield engine, url
    finally:
        server.stop()


def feed(engine: Engine, tmp_path: Path) -> tuple[Path, list[str]]:
    """The customers, one due service message each, an events file with a bad row, and
    events stored as the API stores them (their ids are what the flow is given)."""
    rows = [
        {
            "segment": "consumer",
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
            "attributes": {"note": "call +86 139-0011-2233"},
            **dict.fromkeys(("name", "email", "phone", "wechat")),
            **dict.fromkeys(
                ("consent_email", "consent_sms", "consent_wechat", "consent_app"), False
            ),
            **row,
        }
        for row in CUSTOMERS_ROWS
    ]
    planned = [
        PlannedMessage(
            f"pd.0:{row['id']}:once",
            row["id"],
            "pd",
            "base_service_reminder",
            ("email", "sms", "wechat"),
            "service",
            AS_OF,
            None,
        )
        for row in rows
    ]
    with engine.begin() as connection:
        connection.execute(insert(CUSTOMERS), rows)
        store_messages(connection, planned, AS_OF)
    events = tmp_path / "events.csv"
    when = (AS_OF - timedelta(minutes=5)).isoformat()
    events.write_text(
        "id,customer_id,type,occurred_at,level,category,text\n"
        f"f1,pd1,feedback,{when},major,complaint,王芳 here: call +86 (138) 8183-6553\n"
        f"f2,pd2,feedback,{when},loud,complaint,wang_fang88 and 132.0466.5439\n",
        encoding="utf-8",
    )
    stored = import_event_list(
        engine,
        [
            {
                "id": "f3",
                "customer_id": "pd3",
                "type": "feedback",
                "occurred_at": when,
                "level": "general",
                "category": "inquiry",
                "text": "李雷, WeChat wxid_k2mf93ab01, phone 132.0466.5439",
            }
        ],
        imported_at=AS_OF,
    )
    assert stored.stored_ids == ["f3"]
    return events, stored.stored_ids


def prefect(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A Prefect API query, once the log lines still queued in this process are sent."""
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL

    APILogHandler().flush()

    response = httpx.post(f"{PREFECT_API_URL.value()}{path}", json=body)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def test_no_personal_data_in_artifacts_logs_stored_errors_or_flow_parameters(
    world: tuple[Engine, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from flows.dispatch import dispatch_outbox
    from flows.evaluate import evaluate_rules
    from flows.ingest import ingest_events

    engine, _ = world
    events, ids = feed(engine, tmp_path)
    started = datetime.now(UTC).isoformat()
    ingested = ingest_events(path=str(events), as_of=AS_OF.isoformat())
    assert ingested["rejected"] == 1
    ingest_events(event_ids=ids, as_of=AS_OF.isoformat())
    evaluate_rules(as_of=AS_OF.isoformat())
    dispatched = asyncio.run(dispatch_outbox(as_of=AS_OF.isoformat()))
    assert dispatched["outcomes"].get("failed", 0) >= len(CUSTOMERS_ROWS) - 1

    runs = prefect("/flow_runs/filter", {"flow_runs": {"start_time": {"after_": started}}})
    run_ids = [run["id"] for run in runs]
    assert len(run_ids) == 5  # ingest twice, evaluate-rules and its one shard, dispatch
    artifacts = prefect("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": run_ids}}})
    logs = prefect("/logs/filter", {"logs": {"flow_run_id": {"any_": run_ids}}, "limit": 200})
    console = capfd.readouterr()
    console_lines = (console.out + console.err).splitlines()
    with engine.connect() as connection:
        stored = [
            text
            for row in connection.execute(select(MESSAGES.c.reason, MESSAGES.c.last_error))
            for text in row
            if text
        ]
    texts = {
        "artifact": [json.dumps(a["data"], ensure_ascii=False) for a in artifacts],
        "log line": [log["message"] for log in logs] + console_lines,
        "stored error": stored,
        "flow parameters": [json.dumps(run["parameters"], ensure_ascii=False) for run in runs],
    }
    hits = [
        f"{kind}: {needle.pattern!r} in {text!r}"
        for kind, found in texts.items()
        for text in found
        for needle in needles()
        if needle.search(text)
    ]
    counts = {kind: len(found) for kind, found in texts.items()}
    print(f"\npersonal data scan: {counts} checked, {len(hits)} hits")
    # The scan sees what it must: artifacts of every flow, failures with reasons.
    assert counts["artifact"] >= 8 and counts["log line"] >= 4 and counts["stored error"] >= 4
    assert any("refused" in text or "unknown" in text for text in stored)
    assert hits == []


def test_what_a_flow_run_logs_reaches_the_prefect_api_masked(world: tuple[Engine, str]) -> None:
    """Rapport's own log calls mask, but a library, Prefect's engine (a task's
    exception and traceback) or a careless log call may not: the handlers mask."""
    from prefect import flow, task
    from prefect.logging import get_run_logger

    from flows.context import flow_context

    @task(retries=0)
    def failing() -> None:
        raise LookupError("no route for 132.0466.5439")

    @flow(name="privacy-probe")
    def probe() -> str:
        flow_context(AS_OF.isoformat())
        get_run_logger().warning("bounced: %s, %s", "用户@例子.中国", "wxid_k2mf93ab01")
        failing(return_state=True)
        return str(get_run_logger().extra["flow_run_id"])

    run_id = probe()
    logs = prefect("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
    text = "\n".join(log["message"] for log in logs)
    assert "bounced: 用***@例***.中国, wxid_***" in text and "*******5439" in text
    assert not [n.pattern for n in needles() if n.search(text)]
