"""The `unsubscribe` tag: a customer withdraws consent to a channel.

Either through the signed link in a message, which needs no key (the signature is the
proof), or recorded by staff with a `staff` key.
"""

from __future__ import annotations

import html
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from actions.unsubscribe import verify_unsubscribe
from engine.facts import MESSAGE_CHANNELS
from rapport.api.errors import problems
from rapport.api.inputs import JsonObject, encodable, known_text
from rapport.api.security import authorize, presented_key
from rapport.api.state import Config, Database, Keys
from rapport.services.settings import Settings
from storage.customers import withdraw_consent

router = APIRouter(tags=["unsubscribe"])


class Unsubscribe(BaseModel):
    customer_id: str = Field(max_length=64)
    channel: Literal[MESSAGE_CHANNELS]  # type: ignore[valid-type]


@router.get(
    "/unsubscribe",
    response_class=HTMLResponse,
    responses={403: {"description": "The link is not valid.", "content": {"text/html": {}}}},
)
def unsubscribe_page(settings: Config, customer: str, channel: str, token: str) -> HTMLResponse:
    """The page a signed link in a message opens: one button confirms."""
    if not _signed(settings, customer, channel, token):
        return HTMLResponse(_page("This link is not valid."), status_code=403)
    form = (
        f'<form method="post"><p>Stop receiving marketing by {html.escape(channel)}?</p>'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return HTMLResponse(_page(form))


# The key schemes are listed (the staff way); `{}` adds the keyless signed-link way.
@router.post(
    "/unsubscribe",
    openapi_extra={"security": [{}]},
    responses=problems(
        400, 401, 403, 404, 413, c403="The link is not valid, or the key's role may not do this."
    ),
)
def unsubscribe(
    settings: Config,
    engine: Database,
    keys: Keys,
    presented: Annotated[str | None, Depends(presented_key)],
    customer: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query()] = None,
    token: Annotated[str | None, Query()] = None,
    body: Unsubscribe | None = None,
) -> JsonObject:
    """Withdraw a customer's consent to one channel: from a signed link (its query
    parameters) without a key, or with a `staff` key and a JSON body."""
    if token is not None:
        if customer is None or channel is None or not _signed(settings, customer, channel, token):
            raise HTTPException(403, "this unsubscribe link is not valid")
    else:
        authorize(keys, presented, ("staff",))
        if body is None:
            raise HTTPException(422, "give customer_id and channel")
        encodable([body.customer_id, body.channel])
        customer, channel = body.customer_id, body.channel
        known_text(customer)
    if channel not in MESSAGE_CHANNELS:
        raise HTTPException(422, f"channel must be one of {', '.join(MESSAGE_CHANNELS)}")
    with engine.begin() as connection:
        withdrawn = withdraw_consent(connection, customer, channel)
    if not withdrawn:
        raise HTTPException(404, "no such customer")
    return {"customer_id": customer, "channel": channel, "consent": False}


def _signed(settings: Settings, customer: str, channel: str, token: str) -> bool:
    # compare_digest refuses non-ASCII text with a TypeError; no valid token has any
    return token.isascii() and verify_unsubscribe(settings.secret_key, customer, channel, token)


def _page(body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Unsubscribe</title></head>"
        f"<body>{body}</body></html>"
    )
