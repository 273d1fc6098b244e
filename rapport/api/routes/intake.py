"""The `intake` tag: events and customers in, for `ingest` keys.

Answers carry ids, counts and masked reasons only — no names, addresses or phone
numbers. Stored events are handed to the reaction worker at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, Field

from actions.privacy import mask
from rapport.api.errors import problems
from rapport.api.inputs import JsonObject, encodable
from rapport.api.security import require_role
from rapport.api.state import Config, Database, Reactions
from storage.imports import RowError, import_customer_list, import_event_list

MAX_BATCH = 1_000  # events or customers per request

router = APIRouter(
    tags=["intake"],
    dependencies=[Depends(require_role("ingest"))],
    responses=problems(400, 401, 403, 413, c413="Over RAPPORT_API_MAX_BODY_BYTES or 1,000 items."),
)


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


@router.post("/events")
def post_events(
    settings: Config,
    engine: Database,
    reactor: Reactions,
    payload: Annotated[JsonObject | list[JsonObject], Body()],
) -> EventsAccepted:
    """Store one event or a batch, with the fields and checks of the file import;
    an id already stored is reported as a duplicate and changes nothing, an id twice
    in the batch is rejected the second time (the first is kept)."""
    encodable(payload)
    events = payload if isinstance(payload, list) else [payload]
    if len(events) > MAX_BATCH:
        raise HTTPException(413, f"at most {MAX_BATCH} events per request")
    errors: dict[int, str] = {}
    report = import_event_list(
        engine,
        events,
        imported_at=datetime.now(UTC),
        future_horizon=settings.future_horizon(),
        on_error=_collect(errors),
    )
    stored = set(report.stored_ids or [])
    results = []
    for index, event in enumerate(events):
        event_id = _text(event.get("id"))
        if index in errors:
            result = EventResult(index=index, id=event_id, status="rejected", reason=errors[index])
        else:  # an id sent twice in one batch is rejected the second time
            status = "stored" if event_id in stored else "duplicate"
            result = EventResult(index=index, id=event_id, status=status)
        results.append(result)
    reactor.submit([(str(e["id"]), str(e["type"])) for e in events if _text(e.get("id")) in stored])
    return EventsAccepted(
        stored=len(stored),
        duplicates=sum(r.status == "duplicate" for r in results),
        rejected=len(errors),
        results=results,
    )


@router.post("/customers")
def post_customers(
    settings: Config,
    engine: Database,
    payload: Annotated[JsonObject | list[JsonObject], Body()],
) -> CustomersAccepted:
    """Insert or update one customer or a batch (same fields as the file import). An
    update merges: a field the object leaves out keeps its stored value, a null clears
    it (a consent becomes false); an id twice in one batch is rejected the second time."""
    encodable(payload)
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


def _collect(errors: dict[int, str]) -> Callable[[RowError], None]:
    """Collects rejected rows by 0-based position, with masked reasons."""

    def add(error: RowError) -> None:
        errors[error.line - 1] = mask(error.reason)

    return add


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
