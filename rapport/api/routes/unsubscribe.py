"""The `unsubscribe` tag: a customer withdraws consent to a channel.

Either through the signed link in a message, which needs no key (the signature is the
proof), or recorded by staff with a `staff` key. The link's POST is what a mailbox
provider sends for its own unsubscribe button (RFC 8058: the form body
`List-Unsubscribe=One-Click`, no key, no cookie) and what the link's page sends; it
answers a page (`rapport.api.pages`). Staff send a JSON body and get JSON back.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine

from actions.unsubscribe import verify_unsubscribe
from engine.facts import MESSAGE_CHANNELS
from rapport.api import pages
from rapport.api.errors import problems
from rapport.api.inputs import encodable, known_text
from rapport.api.security import authorize, presented_key
from rapport.api.state import Config, Database, Keys
from rapport.services.settings import InsecureSecret, Settings
from storage.customers import customer_rows, withdraw_consent

router = APIRouter(tags=["unsubscribe"])


class Unsubscribe(BaseModel):
    customer_id: str = Field(max_length=64)
    channel: str = Field(json_schema_extra={"enum": list(MESSAGE_CHANNELS)})

    @field_validator("channel")
    @classmethod
    def _message_channel(cls, value: str) -> str:
        if value not in MESSAGE_CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(MESSAGE_CHANNELS)}")
        return value


class Unsubscribed(BaseModel):
    customer_id: str
    channel: str
    consent: bool


_HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
_DETAIL: dict[str, Any] = {
    "application/json": {"schema": {"type": "object", "properties": {"detail": {"type": "string"}}}}
}
_PAGES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The page", "content": _HTML},
    403: {"description": "The link is not valid (a page)", "content": _HTML},
    404: {"description": "The link's customer is no longer stored (a page)", "content": _HTML},
}
# The body is read by hand (see `_staff_request`), so it is documented here.
_POST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": Unsubscribe.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
                }
            },
        },
    },
    # The key schemes are listed (the staff way); `{}` adds the keyless signed-link way.
    "security": [{}],
}


@router.get("/unsubscribe", response_class=HTMLResponse, responses=_PAGES)
def unsubscribe_page(
    settings: Config, engine: Database, customer: str, channel: str, token: str
) -> HTMLResponse:
    """The page a signed link in a message opens, in the customer's language: it names
    the channel it stops, and one button confirms."""
    if not _signed(settings, customer, channel, token):
        return HTMLResponse(pages.invalid_page(), status_code=403)
    with engine.connect() as connection:
        locale = _stored_locale(connection, customer)
    if locale is None:
        return HTMLResponse(pages.unknown_page(), status_code=404)
    return HTMLResponse(pages.confirm_page(locale, channel, settings.company_name))


async def _content(request: Request) -> bytes:
    """The raw body: JSON from staff, a form (or nothing) from the link."""
    return await request.body()


@router.post(
    "/unsubscribe",
    response_model=None,
    responses={
        **problems(400, 401, 413),
        200: {
            "description": "Unsubscribed: a page for the link, the record for staff",
            "model": Unsubscribed,
            "content": _HTML,
        },
        403: {
            "description": "The link is not valid (a page), or the key's role",
            "content": {**_HTML, **_DETAIL},
        },
        404: {"description": "No such customer", "content": {**_HTML, **_DETAIL}},
    },
    openapi_extra=_POST_BODY,
)
def unsubscribe(
    settings: Config,
    engine: Database,
    keys: Keys,
    presented: Annotated[str | None, Depends(presented_key)],
    content: Annotated[bytes, Depends(_content)],
    customer: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query()] = None,
    token: Annotated[str | None, Query()] = None,
) -> HTMLResponse | Unsubscribed:
    """Withdraw a customer's consent to one channel: from a signed link (its query
    parameters) without a key, answered with a page; or with a `staff` key and a JSON
    body `{"customer_id", "channel"}`, answered with JSON."""
    if token is not None:
        return _by_link(settings, engine, customer, channel, token)
    authorize(keys, presented, ("staff",))
    body = _staff_request(content)
    encodable([body.customer_id, body.channel])
    known_text(body.customer_id)
    with engine.begin() as connection:
        withdrawn = withdraw_consent(connection, body.customer_id, body.channel)
    if not withdrawn:
        raise HTTPException(404, "no such customer")
    return Unsubscribed(customer_id=body.customer_id, channel=body.channel, consent=False)


def _by_link(
    settings: Settings, engine: Engine, customer: str | None, channel: str | None, token: str
) -> HTMLResponse:
    """The signed link's unsubscribe; whatever the body says (the one-click form, or
    nothing), the signature alone decides."""
    if customer is None or channel is None or not _signed(settings, customer, channel, token):
        return HTMLResponse(pages.invalid_page(), status_code=403)
    with engine.begin() as connection:
        locale = _stored_locale(connection, customer)
        if locale is not None:
            withdraw_consent(connection, customer, channel)
    if locale is None:
        return HTMLResponse(pages.unknown_page(), status_code=404)
    return HTMLResponse(pages.done_page(locale, channel, settings.company_name))


def _staff_request(content: bytes) -> Unsubscribe:
    """The staff body, refused as FastAPI refuses an invalid body (422, where and why)."""
    if not content.strip():
        missing = {"type": "missing", "loc": ("body",), "msg": "give customer_id and channel"}
        raise RequestValidationError([missing])
    try:
        return Unsubscribe.model_validate_json(content)
    except ValidationError as error:
        found = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(found) from None


def _signed(settings: Settings, customer: str, channel: str, token: str) -> bool:
    """Signed with our key, for a channel that can be unsubscribed from. A key anyone
    knows proves nothing (`rapport api` refuses to start with one; an application built
    otherwise refuses every link)."""
    try:
        key = settings.signing_key()
    except InsecureSecret:
        return False
    # compare_digest refuses non-ASCII text with a TypeError; no valid token has any
    return (
        channel in MESSAGE_CHANNELS
        and token.isascii()
        and verify_unsubscribe(key, customer, channel, token)
    )


def _stored_locale(connection: Connection, customer: str) -> str | None:
    """The page language of a stored customer; None when there is no such customer."""
    if "\x00" in customer:  # names nothing that could be stored (PostgreSQL refuses it)
        return None
    row = customer_rows(connection, [customer]).get(customer)
    return None if row is None else pages.page_locale(row["locale"])
