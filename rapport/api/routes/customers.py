"""The `customers` tag: one customer's facts, rule explanation and history, for `staff`
keys."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from rapport.api.errors import problems, unprocessable
from rapport.api.inputs import JsonObject, known_text
from rapport.api.keys import ApiKey
from rapport.api.security import require_role
from rapport.api.state import Config, Database, Rules
from rapport.services.clock import as_of_or_now
from rapport.services.explanation import explain_customer
from rapport.services.history import customer_history
from storage.facts import facts_of

# `as_of` well inside what datetime can hold: storing it converts it to UTC, and facts
# look days and years away from it; either would overflow near year 1 or 9999.
AS_OF_YEARS = range(1000, 9000)
_IN_YEARS = "^[1-8][0-9]{3}-"  # the years of AS_OF_YEARS, as the document says it
# Text, read by the commands' own parser, so `as_of` means what `--as-of` means. The
# document lists the two forms a client can rely on (RFC 3339 time, date); the parser
# also takes a time without offset, read in RAPPORT_TIMEZONE, as `--as-of` does.
_MOMENT = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": _IN_YEARS},
        {"type": "string", "format": "date", "pattern": _IN_YEARS},
        {"type": "null"},
    ]
}
AsOf = Annotated[
    str | None,
    Query(
        description="ISO 8601 time (default: now), years 1000 to 8999; a date, or a time "
        "without offset, is read in RAPPORT_TIMEZONE, e.g. 2026-07-01 or "
        "2026-07-01T09:00+08:00.",
        json_schema_extra=_MOMENT,
    ),
]
Since = Annotated[
    str | None,
    Query(
        description="Only entries from this time on, read as `as_of` is (default: all).",
        json_schema_extra=_MOMENT,
    ),
]

router = APIRouter(
    tags=["customers"],
    dependencies=[Depends(require_role("staff"))],
    responses=problems(401, 403, 404),
)


@router.get("/customers/{customer_id}/facts")
def customer_facts(
    settings: Config,
    engine: Database,
    rules: Rules,
    customer_id: str,
    as_of: AsOf = None,
) -> JsonObject:
    """Every fact of one customer as of a time (default: now)."""
    known_text(customer_id)
    moment = _moment(as_of, settings.timezone)
    ruleset = rules.get()
    with engine.connect() as connection:
        facts = facts_of(connection, moment, ruleset.parameters, customer_id)
    if facts is None:
        raise HTTPException(404, f"no customer {customer_id!r}")
    return {"as_of": moment.isoformat(), "facts": facts}


@router.get("/customers/{customer_id}/explain")
def explain(
    settings: Config,
    engine: Database,
    rules: Rules,
    customer_id: str,
    as_of: AsOf = None,
) -> JsonObject:
    """Every rule with fired / not fired, each condition's actual value and what the
    guards would do with the messages fired rules plan."""
    known_text(customer_id)
    moment = _moment(as_of, settings.timezone)
    explanation = explain_customer(engine, rules.get(), customer_id, moment)
    if explanation is None:
        raise HTTPException(404, f"no customer {customer_id!r}")
    return asdict(explanation)


@router.get("/customers/{customer_id}/history")
def history(
    settings: Config,
    engine: Database,
    key: Annotated[ApiKey, Depends(require_role("staff"))],
    customer_id: str,
    since: Since = None,
) -> JsonObject:
    """Every event, rule firing (with the values it saw), message (planned, each guard
    decision and attempt, the result) and task (opened, escalated, closed with its
    note) of one customer, oldest first. Events' free text (a complaint's words) only
    for admin keys, masked."""
    known_text(customer_id)
    start = None if since is None else _moment(since, settings.timezone, "since")
    entries = customer_history(
        engine, customer_id, settings.timezone, start, with_text=key.role == "admin"
    )
    if entries is None:
        raise HTTPException(404, f"no customer {customer_id!r}")
    return {"customer_id": customer_id, "entries": [asdict(entry) for entry in entries]}


def _moment(as_of: str | None, zone: str, name: str = "as_of") -> datetime:
    """`as_of` (or the parameter `name`) as an aware datetime (now when not given), or a
    422 saying what is wrong."""
    try:
        moment = as_of_or_now(as_of, zone)
    except ValueError as error:
        raise unprocessable(str(error), "query", name) from None
    if moment.year not in AS_OF_YEARS:
        raise unprocessable(f"{name} must lie in the years 1000 to 8999", "query", name)
    return moment
