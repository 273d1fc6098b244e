"""FastAPI's own 422 for invalid requests, made safe to send back.

Where and why the request was refused, not the input itself: it may be a name or an
address. Input JSON cannot carry (bytes that are not UTF-8, lone surrogates, NaN,
infinities) is made printable rather than turned into a 500.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

_PRINTABLE: dict[Any, Callable[[Any], Any]] = {
    bytes: lambda value: value.decode("utf-8", "replace"),
    str: lambda value: value.encode("utf-8", "replace").decode("utf-8"),
    float: lambda value: value if math.isfinite(value) else str(value),
}


async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    """The 422 answer: each error's location, type and message, printable."""
    errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in error.errors()]
    detail = jsonable_encoder(errors, custom_encoder=_PRINTABLE)
    return JSONResponse(status_code=422, content={"detail": detail})
