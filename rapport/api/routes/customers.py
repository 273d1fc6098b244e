"""The `customers` tag: one customer's facts and rule explanation, for `staff` keys."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from rapport.api.inputs import JsonObject, known_text
from rapport.api.security import require_role
from rapport.api.state import Database, Rules
from rapport.services.explanation import explain_customer
from storage.facts import iter_customer_facts

# `as_of` well inside what datetime can hold: storing it converts it to UTC, and facts
# look days and years away from it; either would overflow near year 1 or 9999.
AS_OF_RANGE = (datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))

router = APIRouter(tags=["customers"], dependencies=[Depends(require_role("staff"))])


@router.get("/customers/{customer_id}/facts")
def customer_facts(
    engine: Database,
    rules: Rules,
    customer_id: str,
    as_of: Annotated[datetime | None, Query()] = None,
) -> JsonObject:
    """Every fact of one customer as of a time (default: now)."""
    known_text(customer_id)
    moment = _moment(as_of)
    ruleset = rules.get()
    with engine.connect() as connection:
        found = list(iter_customer_facts(connection, moment, ruleset.parameters, [customer_id]))
    if not found:
        raise HTTPException(404, f"no customer {customer_id!r}")
    return {"as_of": moment.isoformat(), "facts": found[0]}


@router.get("/customers/{customer_id}/explain")
def explain(
    engine: Database,
    rules: Rules,
    customer_id: str,
    as_of: Annotated[datetime | None, Query()] = None,
) -> JsonObject:
    """Every rule with fired / not fired, each condition's actual value and what the
    guards would do with the messages fired rules plan."""
    known_text(customer_id)
    moment = _moment(as_of)
    explanation = explain_customer(engine, rules.get(), customer_id, moment)
    if explanation is None:
        raise HTTPException(404, f"no customer {customer_id!r}")
    return asdict(explanation)


def _moment(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    if as_of.utcoffset() is None:
        raise HTTPException(422, "as_of needs a UTC offset, e.g. 2026-11-24T09:00:00+08:00")
    if not AS_OF_RANGE[0] <= as_of <= AS_OF_RANGE[1]:
        raise HTTPException(422, "as_of must lie between the years 1000 and 9000")
    return as_of
