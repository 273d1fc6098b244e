"""The HTTP API through a real uvicorn server on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, func, select

from actions.templates import LOCALES
from actions.unsubscribe import unsubscribe_url
from engine.facts import MESSAGE_CHANNELS
from rapport.api.app import create_app
from rapport.api.keys import new_key
from rapport.api.pages import TEXTS
from rapport.cli.api import OPENAPI_FILE, openapi_document
from rapport.services.settings import DOCUMENTED_SECRET_KEY, Settings
from storage.models import Customer
from storage.tables import CUSTOMERS, EVENTS
from tests.factories import NOW, add_customer, add_events

SECRET = "test-secret"


class Api:
    """A running server and a key per role."""

    def __init__(self, url: str, keys: dict[str, str], app: Any) -> None:
        self.url, self.keys, self.app = url, keys, app

    def call(
        self, method: str, path: str, role: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if role is not None:
            headers["X-API-Key"] = self.keys[role]
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def reactions_done(self) -> None:
        """Waits for the reaction worker to finish what it was given (it runs in order)."""
        self.app.state.reactor.wait()


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    keys, entries = {}, []
    for role in ("ingest", "staff", "admin"):
        key, entry = new_key(f"test-{role}", role)  # type: ignore[arg-type]
        keys[role] = key
        entries.append(asdict(entry))
    settings = Settings(
        api_keys=json.dumps(entries),
        secret_key=SECRET,
        api_max_body_bytes=50_000,
        database_url=engine.url.render_as_string(hide_password=False),
    )
    app = create_app(settings, engine)
    with serving(app) as url:
        yield Api(url, keys, app)


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """`app` on a real uvicorn server on 127.0.0.1, with these uvicorn `options`;
    yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, **{"log_level": "warning", "lifespan": "on", **options})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)  # server start-up, not a clock the test depends on
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def feedback(event_id: str, customer: str, level: str = "general", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "customer_id": customer,
        "type": "feedback",
        # Now, not the fixed NOW: the API reacts at the wall clock, within the window.
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "level": level,
        "category": "complaint",
        "text": "The parcel arrived damaged.",
        **extra,
    }


def stored_events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(EVENTS)) or 0)


def test_health_needs_no_key(api: Api) -> None:
    assert api.call("GET", "/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "role", "status"),
    [
        ("POST", "/events", None, 401),
        ("POST", "/events", "staff", 403),
        ("GET", "/tasks", None, 401),
        ("GET", "/tasks", "ingest", 403),
        ("GET", "/customers/c1/explain", "ingest", 403),
        ("GET", "/customers/c1/facts", "ingest", 403),
        ("GET", "/customers/c1/history", "ingest", 403),
        ("POST", "/tasks/1/close", "ingest", 403),
        ("GET", "/tasks", "staff", 200),
        ("GET", "/tasks", "admin", 200),
    ],
)
def test_keys_and_roles(api: Api, method: str, path: str, role: str | None, status: int) -> None:
    body = {} if method == "POST" else None
    assert api.call(method, path, role, json=body).status_code == status


def test_an_unknown_key_is_refused(api: Api) -> None:
    response = api.call("GET", "/tasks", headers={"X-API-Key": "rk_not-a-key"})
    assert response.status_code == 401


def test_the_key_may_come_as_a_bearer_token(api: Api) -> None:
    bearer = {"Authorization": f"Bearer {api.keys['staff']}"}
    assert api.call("GET", "/tasks", headers=bearer).status_code == 200
    assert api.call("POST", "/events", headers=bearer, json={}).status_code == 403


def test_the_openapi_document_names_the_key_on_every_protected_operation() -> None:
    document = json.loads(openapi_document())
    assert document["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    secured = {
        (method, path): spec.get("security")
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    }
    assert {key for key, security in secured.items() if not security} == {
        ("get", "/healthz"),
        ("get", "/unsubscribe"),  # the signed link is its own proof
    }
    assert {} in secured[("post", "/unsubscribe")]  # a signed link needs no key either


def test_a_batch_with_good_and_bad_events_and_its_replay(api: Api, engine: Engine) -> None:
    add_customer(engine, "c1")
    batch = [
        feedback("e1", "c1"),
        {"id": "e2", "customer_id": "c1", "type": "login", "occurred_at": NOW.isoformat()},
        {"id": "e3", "customer_id": "c1", "type": "purchase", "occurred_at": NOW.isoformat()},
        feedback("e4", "nobody"),
        {"id": "e5", "customer_id": "c1", "type": "login", "occurred_at": "2026-06-30 12:00"},
    ]
    first = api.call("POST", "/events", "ingest", json=batch).json()
    statuses = [(r["id"], r["status"]) for r in first["results"]]
    assert statuses == [
        ("e1", "stored"),
        ("e2", "stored"),
        ("e3", "rejected"),  # a purchase needs an amount
        ("e4", "rejected"),  # unknown customer
        ("e5", "rejected"),  # a time without an offset
    ]
    assert "amount" in first["results"][2]["reason"]
    assert first["stored"] == 2 and first["rejected"] == 3
    replay = api.call("POST", "/events", "ingest", json=batch[:2]).json()
    assert [r["status"] for r in replay["results"]] == ["duplicate", "duplicate"]
    assert stored_events(engine) == 2


def test_malformed_json_changes_nothing(api: Api, engine: Engine) -> None:
    response = api.call(
        "POST",
        "/events",
        "ingest",
        content=b'[{"id": "e1", ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and "JSON" in response.text
    assert stored_events(engine) == 0


def test_a_body_over_the_limit_is_refused(api: Api, engine: Engine) -> None:
    add_customer(engine, "c1")
    batch = [feedback(f"e{n}", "c1") for n in range(400)]  # about 80 kB
    response = api.call("POST", "/events", "ingest", json=batch)
    assert response.status_code == 413
    assert stored_events(engine) == 0


def test_a_major_complaint_gets_its_task_right_away(api: Api, engine: Engine) -> None:
    add_customer(engine, "c1")
    response = api.call("POST", "/events", "ingest", json=feedback("m1", "c1", level="major"))
    assert response.json()["stored"] == 1
    api.reactions_done()
    tasks = api.call("GET", "/tasks", "staff", params={"owner": "management"}).json()
    assert [t["customer_id"] for t in tasks] == ["c1"] and tasks[0]["ledger"] is True
    refused = api.call("POST", f"/tasks/{tasks[0]['id']}/close", "staff", json={})
    assert refused.status_code == 409 and "remediation-ledger" in refused.text
    closed = api.call(
        "POST", f"/tasks/{tasks[0]['id']}/close", "staff", json={"note": "Replaced; confirmed."}
    )
    assert closed.status_code == 200
    assert api.call("GET", "/tasks", "staff", params={"owner": "management"}).json() == []


def test_a_customers_history_shows_the_complaints_words_to_admin_keys_only(
    api: Api, engine: Engine
) -> None:
    add_customer(engine, "c1", name="Li Lei")
    words = "Li Lei: the parcel arrived damaged, call 13888886553"
    api.call("POST", "/events", "ingest", json=feedback("m1", "c1", level="major", text=words))
    api.reactions_done()
    staff = api.call("GET", "/customers/c1/history", "staff").json()["entries"]
    admin = api.call("GET", "/customers/c1/history", "admin").json()["entries"]

    kinds = [(entry["kind"], entry["details"].get("step")) for entry in staff]
    assert kinds[0] == ("event", None) and ("task", "opened") in kinds
    assert "text" not in staff[0]["details"]
    shown = admin[0]["details"]["text"]
    assert "parcel arrived damaged" in shown
    assert "Li Lei" not in shown and "13888886553" not in shown
    later = api.call("GET", "/customers/c1/history", "staff", params={"since": "2999-01-01"})
    assert later.json()["entries"] == []
    assert api.call("GET", "/customers/nobody/history", "staff").status_code == 404
    bad = api.call("GET", "/customers/c1/history", "staff", params={"since": "soon"})
    assert bad.status_code == 422 and "since" in bad.text


def test_ingest_responses_carry_no_personal_data(api: Api) -> None:
    customer = {"id": "c9", "name": "王芳", "email": "fang@example.cn", "phone": "13800138000"}
    bad = {"id": "c10", "email": "not-an-address fang@example.cn"}
    response = api.call("POST", "/customers", "ingest", json=[customer, bad])
    assert response.status_code == 200
    body = response.text
    assert "王芳" not in body and "fang@example.cn" not in body and "13800138000" not in body
    assert response.json()["inserted"] == 1 and response.json()["rejected"] == 1


def test_facts_and_explain_for_staff(api: Api, engine: Engine) -> None:
    add_customer(engine, "c1")
    as_of = {"as_of": NOW.isoformat()}
    facts = api.call("GET", "/customers/c1/facts", "staff", params=as_of).json()
    assert facts["facts"]["customer_id"] == "c1" and facts["facts"]["lifetime_orders"] == 0
    explained = api.call("GET", "/customers/c1/explain", "staff", params=as_of).json()
    states = {rule["rule_id"]: rule["state"] for rule in explained["rules"]}
    assert states["feedback_major_to_management"] == "waits for an event"
    tiers = next(r for r in explained["rules"] if r["rule_id"] == "base_monthly_service_reminder")
    assert tiers["state"] == "not fired" and tiers["checks"]  # each condition with its value
    assert all({"text", "actual", "holds"} <= set(check) for check in tiers["checks"])
    assert api.call("GET", "/customers/nobody/facts", "staff").status_code == 404


@pytest.fixture
def shanghai(monkeypatch: pytest.MonkeyPatch) -> None:
    """RAPPORT_TIMEZONE=Asia/Shanghai for the `api` fixture's settings (ask for it first)."""
    monkeypatch.setenv("RAPPORT_TIMEZONE", "Asia/Shanghai")


def test_as_of_is_read_like_the_commands_as_of(shanghai: None, api: Api, engine: Engine) -> None:
    """A bare date is the start of that day in RAPPORT_TIMEZONE, as for `--as-of`."""
    add_customer(engine, "c1")
    # 1 July 02:00 in Shanghai: after the start of 1 July there, before it in UTC.
    purchase = datetime(2026, 6, 30, 18, 0, tzinfo=UTC)
    add_events(engine, "c1", {"type": "purchase", "occurred_at": purchase, "amount": 10})

    def facts(as_of: str) -> httpx.Response:
        return api.call("GET", "/customers/c1/facts", "staff", params={"as_of": as_of})

    bare, offset = facts("2026-07-01"), facts("2026-07-01T00:00:00+08:00")
    assert bare.status_code == 200
    assert bare.json() == offset.json()
    assert bare.json()["facts"]["lifetime_orders"] == 0
    assert facts("2026-07-01T00:00:00Z").json()["facts"]["lifetime_orders"] == 1
    refused = facts("1 July")
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "loc": ["query", "as_of"],
            "msg": "'1 July' is not an ISO 8601 time such as 2026-07-01T09:00+08:00",
            "type": "value_error",
        }
    ]
    assert facts("0999-12-31").status_code == 422  # outside the years 1000 to 9000


def consent(engine: Engine, customer: str) -> bool:
    with engine.connect() as connection:
        column = CUSTOMERS.c.consent_email
        return bool(connection.scalar(select(column).where(Customer.id == customer)))


def test_the_signed_unsubscribe_link_round_trip(api: Api, engine: Engine) -> None:
    add_customer(engine, "c1", consent_email=True)
    link = unsubscribe_url(api.url, SECRET, "c1", "email").removeprefix(api.url)
    tampered = link.replace("customer=c1", "customer=c2")
    assert api.call("GET", tampered).status_code == 403
    refused = api.call("POST", tampered)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert consent(engine, "c1")
    page = api.call("GET", link)
    assert page.status_code == 200 and "<form" in page.text
    done = api.call("POST", link, data={"List-Unsubscribe": "One-Click"})  # the page's form
    assert done.status_code == 200 and done.headers["content-type"].startswith("text/html")
    assert "<form" not in done.text and "电子邮件" in done.text  # c1 reads zh-CN
    assert not consent(engine, "c1")


def test_links_signed_with_the_documented_secret_prove_nothing(engine: Engine) -> None:
    """`rapport api` refuses to start with it; an application built some other way
    with it refuses every link, so forged links unsubscribe no one."""
    add_customer(engine, "c1", consent_email=True)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    with serving(create_app(settings, engine)) as url:
        forged = unsubscribe_url(url, DOCUMENTED_SECRET_KEY, "c1", "email")
        assert httpx.get(forged).status_code == 403
        assert httpx.post(forged, data={"List-Unsubscribe": "One-Click"}).status_code == 403
    assert consent(engine, "c1")


def test_a_one_click_post_to_the_link_unsubscribes(api: Api, engine: Engine) -> None:
    """RFC 8058: a mailbox provider POSTs `List-Unsubscribe=One-Click`, form-encoded, to
    the https link of the List-Unsubscribe header; no key, no cookie, no page."""
    add_customer(engine, "c1", consent_email=True)
    link = unsubscribe_url(api.url, SECRET, "c1", "email").removeprefix(api.url)
    one_click = api.call("POST", link, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200, one_click.text
    assert not consent(engine, "c1")
    again = api.call("POST", link, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200  # providers may retry: still unsubscribed, still 200


@pytest.mark.parametrize(
    ("locale", "channel", "asks", "button", "done"),
    [
        ("zh-CN", "email", "电子邮件", "退订", "已退订"),
        ("zh-CN", "wechat", "微信", "退订", "已退订"),
        ("en", "sms", "by SMS", "Unsubscribe", "You are unsubscribed"),
        ("en", "app", "by app notification", "Unsubscribe", "You are unsubscribed"),
    ],
)
def test_the_unsubscribe_page_speaks_the_customers_language_and_names_the_channel(
    api: Api, engine: Engine, locale: str, channel: str, asks: str, button: str, done: str
) -> None:
    add_customer(engine, "c1", locale=locale, **{f"consent_{channel}": True})
    link = unsubscribe_url(api.url, SECRET, "c1", channel).removeprefix(api.url)
    page = api.call("GET", link)
    assert page.status_code == 200 and f'<html lang="{locale}">' in page.text
    assert asks in page.text and f">{button}</button>" in page.text
    answer = api.call("POST", link, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and f'<html lang="{locale}">' in answer.text
    assert done in answer.text and asks in answer.text


def test_staff_can_record_an_unsubscribe(api: Api, engine: Engine) -> None:
    add_customer(engine, "c1", consent_email=True)
    body = {"customer_id": "c1", "channel": "email"}
    assert api.call("POST", "/unsubscribe", json=body).status_code == 401
    done = api.call("POST", "/unsubscribe", "staff", json=body)
    assert done.json() == {"customer_id": "c1", "channel": "email", "consent": False}
    assert not consent(engine, "c1")
    fax = api.call("POST", "/unsubscribe", "staff", json={**body, "channel": "fax"})
    assert fax.status_code == 422 and fax.json()["detail"][0]["loc"] == ["body", "channel"]
    empty = api.call("POST", "/unsubscribe", "staff")
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body"]
    stranger = api.call("POST", "/unsubscribe", "staff", json={**body, "customer_id": "c9"})
    assert stranger.status_code == 404


def test_every_language_of_the_messages_has_its_unsubscribe_page() -> None:
    assert set(TEXTS) == set(LOCALES)
    for texts in TEXTS.values():
        assert set(texts.channels) == set(MESSAGE_CHANNELS)


def test_the_committed_openapi_document_is_current() -> None:
    assert OPENAPI_FILE.read_text(encoding="utf-8") == openapi_document() + "\n", (
        "run `rapport openapi` and commit docs/openapi.json"
    )


def test_every_stored_event_is_reacted_to_once_the_worker_is_done(api: Api, engine: Engine) -> None:
    """Requests arriving while the worker is busy are merged into its next run."""
    for customer in ("c1", "c2", "c3"):
        add_customer(engine, customer)
    for n in range(6):
        batch = [feedback(f"b{n}-{c}", c) for c in ("c1", "c2", "c3")]
        assert api.call("POST", "/events", "ingest", json=batch).json()["stored"] == 3
    api.reactions_done()
    with engine.connect() as connection:
        waiting = connection.scalar(
            select(func.count())
            .select_from(EVENTS)
            .where(EVENTS.c.reacted_at.is_(None))
            .where(EVENTS.c.type == "feedback")
        )
    assert waiting == 0


def test_posting_some_fields_of_a_customer_keeps_the_others(api: Api, engine: Engine) -> None:
    full = {"id": "c9", "name": "王芳", "email": "fang@example.cn", "phone": "13800138000"}
    full |= {"wechat": "fang_w", "consent_email": True, "consent_sms": True}
    assert api.call("POST", "/customers", "ingest", json=full).json()["inserted"] == 1
    update = api.call("POST", "/customers", "ingest", json={"id": "c9", "city": "杭州"}).json()
    assert update["updated"] == 1
    with engine.connect() as connection:
        row = connection.execute(select(CUSTOMERS).where(Customer.id == "c9")).mappings().one()
    assert {name: row[name] for name in full} == full
    assert row["attributes"] == {"city": "杭州"}
    api.call("POST", "/customers", "ingest", json={"id": "c9", "wechat": None})
    with engine.connect() as connection:
        cleared = connection.execute(select(CUSTOMERS).where(Customer.id == "c9")).mappings().one()
    assert cleared["wechat"] is None and cleared["email"] == "fang@example.cn"


def test_a_batch_rejects_rows_by_index_and_keeps_the_rest(api: Api, engine: Engine) -> None:
    add_customer(engine, "c1")
    login = {"customer_id": "c1", "type": "login", "occurred_at": NOW.isoformat()}
    batch = [
        {"id": "e1", **login},
        {"id": "e2", **login, "ratio": float("nan")},
        {"id": "e1", **login, "device": "other"},
        {"id": "e3", **login, "occurred_at": "2199-01-01T00:00:00Z"},
    ]
    body = json.dumps(batch)  # NaN as the literal JSON parsers accept
    response = api.call(
        "POST", "/events", "ingest", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    results = [(r["status"], r["reason"]) for r in response.json()["results"]]
    assert results == [
        ("stored", None),
        ("rejected", "ratio: NaN is not a number that can be stored"),
        ("rejected", "duplicate id 'e1': index 0 has it too; index 0 is kept"),
        (
            "rejected",
            "occurred_at: 2199-01-01T00:00:00+00:00 is more than 24 hours after the import"
            " (RAPPORT_IMPORT_FUTURE_HOURS)",
        ),
    ]
    assert stored_events(engine) == 1
    customers = [{"id": "c7", "email": "a@b>,<cd.example"}, {"id": "c8"}, {"id": "c8"}]
    answer = api.call("POST", "/customers", "ingest", json=customers).json()
    assert answer["inserted"] == 1
    assert [(r["index"], r["reason"][:40]) for r in answer["rejections"]] == [
        (0, "email: The part after the @-sign contain"),
        (2, "duplicate id 'c8': index 1 has it too; i"),
    ]


def test_a_method_not_allowed_lists_every_method_of_its_path(api: Api) -> None:
    response = api.call("OPTIONS", "/unsubscribe")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert api.call("DELETE", "/events", "ingest").headers["allow"] == "POST"
