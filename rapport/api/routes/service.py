"""The `service` tag: whether the API and its database are up."""

from __future__ import annotations

from fastapi import APIRouter

from rapport.api.inputs import JsonObject
from rapport.api.state import Database
from storage.db import ping

router = APIRouter(tags=["service"])


@router.get("/healthz")
def healthz(engine: Database) -> JsonObject:
    """Liveness and database reachability; no key needed."""
    ping(engine)
    return {"status": "ok"}
