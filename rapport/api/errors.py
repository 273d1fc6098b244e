"""Error answers, and the OpenAPI entries that document them.

Every error body is JSON with a `detail`: a sentence (`Problem`) for 4xx answers other
than 422, a list of `{loc, msg, type}` for every 422 (FastAPI's `HTTPValidationError`),
whether FastAPI or a route found the problem. Where and why the request was refused,
never the input itself: it may be a name or an address. Input JSON cannot carry
(bytes that are not UTF-8, lone surrogates, NaN, infinities) is made printable rather
than turned into a 500.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

_PRINTABLE: dict[Any, Callable[[Any], Any]] = {
    bytes: lambda value: value.decode("utf-8", "replace"),
    str: lambda value: value.encode("utf-8", "replace").decode("utf-8"),
    float: lambda value: value if math.isfinite(value) else str(value),
}


class Problem(BaseModel):
    """Why a request was refused, in one sentence."""

    detail: str = Field(description="What was wrong, never the input itself.")


MEANINGS = {
    400: "The body could not be read (not UTF-8, not what its content type says).",
    401: "No API key, or one that is not configured (X-API-Key or Authorization: Bearer).",
    403: "The key's role may not do this.",
    404: "No such customer.",
    409: "The task is unknown, already closed, or needs a note to close.",
    413: "The request body is over RAPPORT_API_MAX_BODY_BYTES.",
}


def problems(*codes: int, **meanings: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error codes, each a `Problem` body;
    `meanings` (`c404="…"`) overrides the general sentence for one operation."""
    return {
        code: {"model": Problem, "description": meanings.get(f"c{code}", MEANINGS[code])}
        for code in codes
    }


def unprocessable(message: str, *loc: str | int) -> RequestValidationError:
    """A route's own 422, shaped like FastAPI's: `loc` names the parameter at fault."""
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    """The 422 answer: each error's location, type and message, printable."""
    errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in error.errors()]
    detail = jsonable_encoder(errors, custom_encoder=_PRINTABLE)
    return JSONResponse(status_code=422, content={"detail": detail})


async def refused(request: Request, error: StarletteHTTPException) -> Response:
    """Any other refusal as FastAPI answers it, except that a 422 raised with a sentence
    gets the one 422 shape (the sentence as `msg`, no `loc`), and a 405 lists in `Allow`
    every method of its path (Starlette names only those of the first route that
    matched the path, so `/unsubscribe` would say GET alone)."""
    if error.status_code == 422 and isinstance(error.detail, str):
        return await invalid_request(request, unprocessable(error.detail))
    if error.status_code == 405:
        error.headers = {**(error.headers or {}), "Allow": ", ".join(_methods_of(request))}
    return await http_exception_handler(request, error)


def _methods_of(request: Request) -> list[str]:
    """The methods the application's OpenAPI document lists for the request's path."""
    paths = request.app.openapi()["paths"]
    return sorted(
        method.upper()
        for template, operations in paths.items()
        if compile_path(template)[0].match(request.url.path)
        for method in operations
    )


EXCEPTION_HANDLERS: dict[Any, Callable[..., Any]] = {
    RequestValidationError: invalid_request,
    StarletteHTTPException: refused,
}
