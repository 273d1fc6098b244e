"""Who may call what: the API key a request presents, and the role it needs.

Roles: `ingest` keys may post events and customers; `staff` keys read facts,
explanations and tasks, close tasks and record unsubscribes; `admin` keys may do all.
A missing or unknown key gets 401, a key of the wrong role 403.

The key is read through FastAPI's security schemes rather than plain headers, so the
OpenAPI document names them (`securitySchemes`) and every protected operation lists
them under `security`. `X-API-Key` is the documented way; `Authorization` carries the
same key, as `Bearer <key>`, for clients that only know that header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader

from rapport.api.keys import ApiKey, Role, find_key
from rapport.api.state import Keys

API_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="An API key made by `rapport api-key`.",
    auto_error=False,  # a missing key is our 401, with our message
)
# An apiKey scheme, not HTTPBearer: the key is taken after a literal "Bearer " prefix
# (or as the whole header), exactly as before the schemes were declared.
BEARER_KEY = APIKeyHeader(
    name="Authorization",
    scheme_name="BearerKey",
    description="The same key as `Bearer <key>`, for clients that only send Authorization.",
    auto_error=False,
)


def presented_key(
    x_api_key: Annotated[str | None, Security(API_KEY)],
    authorization: Annotated[str | None, Security(BEARER_KEY)],
) -> str | None:
    """The key a request presents: `X-API-Key`, else `Authorization: Bearer …`."""
    return x_api_key or (authorization or "").removeprefix("Bearer ").strip() or None


def authorize(keys: list[ApiKey], presented: str | None, allowed: tuple[Role, ...]) -> ApiKey:
    """The configured key presented, if its role is `allowed` (admin always is)."""
    key = find_key(keys, presented) if presented else None
    if key is None:
        raise HTTPException(401, "a valid API key is required (X-API-Key)")
    if key.role != "admin" and key.role not in allowed:
        raise HTTPException(403, f"a {key.role} key may not do this")
    return key


def require_role(*allowed: Role) -> Callable[..., ApiKey]:
    """A dependency that lets through only keys of the `allowed` roles (and admin)."""

    def check(keys: Keys, presented: Annotated[str | None, Depends(presented_key)]) -> ApiKey:
        return authorize(keys, presented, allowed)

    return check
