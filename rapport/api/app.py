"""The HTTP API (FastAPI): a thin layer over the same functions the commands use.

Roles: `ingest` keys may post events and customers; `staff` keys read facts,
explanations and tasks, close tasks and record unsubscribes; `admin` keys may do all.
A missing or unknown key gets 401, a key of the wrong role 403. Responses to `ingest`
keys carry ids, counts and masked reasons only — no names, addresses or phone numbers.

Accepted events are handed to a background worker (`rapport.api.reactor`) that runs
the event rules at once, so the tasks and messages they plan exist seconds later; the
`ingest-events` flow, every minute, picks up any the worker did not get to (for
example after a restart).
"""

from __future__ import annotations

import html
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from actions.privacy import mask
from actions.unsubscribe import verify_unsubscribe
from engine.vocabulary import MESSAGE_CHANNELS
from rapport.api.keys import ApiKey, Role, find_key, parse_keys
from rapport.api.limits import BodyLimit
from rapport.api.reactor import Reactor, RulesInForce
from rapport.services.explanation import explain_customer
from rapport.services.settings import Settings
from storage.customers import withdraw_consent
from storage.db import ping
from storage.facts import iter_customer_facts
from storage.import_rows import strings_in
from storage.imports import RowError, import_customer_list, import_event_list
from storage.tasks import TaskNotClosable, close_task, list_tasks

MAX_BATCH = 1_000  # events or customers per request
MAX_TASK_ID = 2**31 - 1  # the largest id the tasks table holds (a PostgreSQL integer)
# `as_of` well inside what datetime can hold: storing it converts it to UTC, and facts
# look days and years away from it; either would overflow near year 1 or 9999.
AS_OF_RANGE = (datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))

JsonObject = dict[str, Any]


class Rejection(BaseModel):
    index: int = Field(description="0-based position in the request.")
    reason: str


class EventResult(BaseModel):
    index: int
    id: str | None
    status: str = Field(description="stored, duplicate (already stored) or rejected")
    reason: str | None = None


class EventsAccepted(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class CustomersAccepted(BaseModel):
    inserted: int
    updated: int
    rejected: int
    rejections: list[Rejection]


class CloseTask(BaseModel):
    note: str | None = Field(default=None, max_length=5_000)


class Unsubscribe(BaseModel):
    customer_id: str = Field(max_length=64)
    channel: str


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """The application; `engine` is Rapport's database (schema already current)."""
    keys = parse_keys(settings.api_keys)
    rules = RulesInForce(engine, settings)
    reactor = Reactor(engine, rules)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        reactor.shutdown()

    app = FastAPI(
        title="Rapport",
        version="1",
        description="Events and customers in; facts, explanations and staff tasks out.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.state.reactor = reactor

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        """FastAPI's own 422, but input it echoes that JSON cannot carry (bytes that are
        not UTF-8, lone surrogates, NaN, infinities) is made printable, not a 500."""
        # Where and why, not the input itself: it may be a name or an address.
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in error.errors()]
        detail = jsonable_encoder(errors, custom_encoder=_PRINTABLE)
        return JSONResponse(status_code=422, content={"detail": detail})

    def role(*allowed: Role) -> Callable[..., ApiKey]:
        def check(
            x_api_key: Annotated[str | None, Header()] = None,
            authorization: Annotated[str | None, Header()] = None,
        ) -> ApiKey:
            presented = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
            key = find_key(keys, presented) if presented else None
            if key is None:
                raise HTTPException(401, "a valid API key is required (X-API-Key)")
            if key.role != "admin" and key.role not in allowed:
                raise HTTPException(403, f"a {key.role} key may not do this")
            return key

        return check

    ingest = Depends(role("ingest"))
    staff = Depends(role("staff"))

    @app.get("/healthz", tags=["service"])
    def healthz() -> JsonObject:
        """Liveness and database reachability; no key needed."""
        ping(engine)
        return {"status": "ok"}

    @app.post("/events", tags=["intake"], dependencies=[ingest])
    def post_events(
        payload: Annotated[JsonObject | list[JsonObject], Body()],
    ) -> EventsAccepted:
        """Store one event or a batch, with the fields and checks of the file import;
        an id already stored is reported as a duplicate and changes nothing."""
        _encodable(payload)
        events = payload if isinstance(payload, list) else [payload]
        if len(events) > MAX_BATCH:
            raise HTTPException(413, f"at most {MAX_BATCH} events per request")
        errors: dict[int, str] = {}
        report = import_event_list(
            engine, events, imported_at=datetime.now(UTC), on_error=_collect(errors)
        )
        stored = set(report.stored_ids or [])
        unclaimed = set(stored)  # an id sent twice in one batch is stored once
        results = []
        for index, event in enumerate(events):
            event_id = _text(event.get("id"))
            if index in errors:
                result = EventResult(
                    index=index, id=event_id, status="rejected", reason=errors[index]
                )
            else:
                status = "stored" if event_id in unclaimed else "duplicate"
                unclaimed.discard(event_id)
                result = EventResult(index=index, id=event_id, status=status)
            results.append(result)
        reactor.submit(
            [(str(e["id"]), str(e["type"])) for e in events if _text(e.get("id")) in stored]
        )
        return EventsAccepted(
            stored=len(stored),
            duplicates=sum(r.status == "duplicate" for r in results),
            rejected=len(errors),
            results=results,
        )

    @app.post("/customers", tags=["intake"], dependencies=[ingest])
    def post_customers(
        payload: Annotated[JsonObject | list[JsonObject], Body()],
    ) -> CustomersAccepted:
        """Insert or update one customer or a batch (same fields as the file import)."""
        _encodable(payload)
        customers = payload if isinstance(payload, list) else [payload]
        if len(customers) > MAX_BATCH:
            raise HTTPException(413, f"at most {MAX_BATCH} customers per request")
        errors: dict[int, str] = {}
        report = import_customer_list(
            engine, customers, default_timezone=settings.timezone, on_error=_collect(errors)
        )
        return CustomersAccepted(
            inserted=report.inserted,
            updated=report.updated,
            rejected=report.rejected,
            rejections=[Rejection(index=i, reason=r) for i, r in sorted(errors.items())],
        )

    @app.get("/customers/{customer_id}/facts", tags=["customers"], dependencies=[staff])
    def customer_facts(
        customer_id: str, as_of: Annotated[datetime | None, Query()] = None
    ) -> JsonObject:
        """Every fact of one customer as of a time (default: now)."""
        _known_text(customer_id)
        moment = _moment(as_of)
        ruleset = rules.get()
        with engine.connect() as connection:
            found = list(iter_customer_facts(connection, moment, ruleset.parameters, [customer_id]))
        if not found:
            raise HTTPException(404, f"no customer {customer_id!r}")
        return {"as_of": moment.isoformat(), "facts": found[0]}

    @app.get("/customers/{customer_id}/explain", tags=["customers"], dependencies=[staff])
    def explain(customer_id: str, as_of: Annotated[datetime | None, Query()] = None) -> JsonObject:
        """Every rule with fired / not fired, each condition's actual value and what the
        guards would do with the messages fired rules plan."""
        _known_text(customer_id)
        moment = _moment(as_of)
        ruleset = rules.get()
        explanation = explain_customer(engine, ruleset, customer_id, moment)
        if explanation is None:
            raise HTTPException(404, f"no customer {customer_id!r}")
        return asdict(explanation)

    @app.get("/tasks", tags=["tasks"], dependencies=[staff])
    def tasks(
        owner: Annotated[str | None, Query(max_length=100)] = None,
        overdue: bool = False,
    ) -> list[JsonObject]:
        """Open staff tasks, soonest due first; `owner` is a role or a person."""
        if owner is not None and "\x00" in owner:
            return []  # no role or person has NUL in their name
        with engine.connect() as connection:
            found = list_tasks(connection, datetime.now(UTC), owner=owner, overdue=overdue)
        return [asdict(task) for task in found]

    @app.post("/tasks/{task_id}/close", tags=["tasks"], dependencies=[staff])
    def close(task_id: int, body: CloseTask) -> JsonObject:
        """Close a task; remediation-ledger items need the verified outcome as `note`."""
        if not 0 < task_id <= MAX_TASK_ID:  # the database could not even look it up
            raise HTTPException(409, f"no task {task_id}")
        _encodable(body.note)
        try:
            with engine.begin() as connection:
                close_task(connection, task_id, body.note, datetime.now(UTC))
        except TaskNotClosable as error:
            raise HTTPException(409, str(error)) from None
        return {"id": task_id, "status": "closed"}

    @app.get("/unsubscribe", tags=["unsubscribe"], response_class=HTMLResponse)
    def unsubscribe_page(customer: str, channel: str, token: str) -> HTMLResponse:
        """The page a signed link in a message opens: one button confirms."""
        if not _signed(settings, customer, channel, token):
            return HTMLResponse(_page("This link is not valid."), status_code=403)
        form = (
            f'<form method="post"><p>Stop receiving marketing by {html.escape(channel)}?</p>'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return HTMLResponse(_page(form))

    @app.post("/unsubscribe", tags=["unsubscribe"])
    def unsubscribe(
        request: Request,
        customer: Annotated[str | None, Query(max_length=64)] = None,
        channel: Annotated[str | None, Query()] = None,
        token: Annotated[str | None, Query()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
        body: Unsubscribe | None = None,
    ) -> JsonObject:
        """Withdraw a customer's consent to one channel: from a signed link (its query
        parameters) without a key, or with a `staff` key and a JSON body."""
        if token is not None:
            if (
                customer is None
                or channel is None
                or not _signed(settings, customer, channel, token)
            ):
                raise HTTPException(403, "this unsubscribe link is not valid")
        else:
            role("staff")(x_api_key, authorization)
            if body is None:
                raise HTTPException(422, "give customer_id and channel")
            _encodable([body.customer_id, body.channel])
            customer, channel = body.customer_id, body.channel
            _known_text(customer)
        if channel not in MESSAGE_CHANNELS:
            raise HTTPException(422, f"channel must be one of {', '.join(MESSAGE_CHANNELS)}")
        with engine.begin() as connection:
            withdrawn = withdraw_consent(connection, customer, channel)
        if not withdrawn:
            raise HTTPException(404, "no such customer")
        return {"customer_id": customer, "channel": channel, "consent": False}

    return app


def _collect(errors: dict[int, str]) -> Callable[[RowError], None]:
    """Collects rejected rows by 0-based position, with masked reasons."""

    def add(error: RowError) -> None:
        errors[error.line - 1] = mask(error.reason)

    return add


_PRINTABLE: dict[Any, Callable[[Any], Any]] = {
    bytes: lambda value: value.decode("utf-8", "replace"),
    str: lambda value: value.encode("utf-8", "replace").decode("utf-8"),
    float: lambda value: value if math.isfinite(value) else str(value),
}


def _known_text(value: str) -> None:
    """An id with NUL (0x00) in it names nothing that could be stored."""
    if "\x00" in value:
        raise HTTPException(404, "no such customer")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _encodable(value: Any) -> None:
    """Refuses text JSON can spell but UTF-8 cannot (a lone surrogate such as "\\ud800"):
    it could be neither stored nor sent back."""
    for string in strings_in(value):
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPException(422, "the body holds a lone surrogate (\\udXXX)") from None


def _moment(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    if as_of.utcoffset() is None:
        raise HTTPException(422, "as_of needs a UTC offset, e.g. 2026-11-24T09:00:00+08:00")
    if not AS_OF_RANGE[0] <= as_of <= AS_OF_RANGE[1]:
        raise HTTPException(422, "as_of must lie between the years 1000 and 9000")
    return as_of


def _signed(settings: Settings, customer: str, channel: str, token: str) -> bool:
    # compare_digest refuses non-ASCII text with a TypeError; no valid token has any
    return token.isascii() and verify_unsubscribe(settings.secret_key, customer, channel, token)


def _page(body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Unsubscribe</title></head>"
        f"<body>{body}</body></html>"
    )
