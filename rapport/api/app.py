"""The HTTP API (FastAPI): a thin layer over the same functions the commands use.

`create_app` builds the application; the endpoints live in `rapport.api.routes`, one
router per OpenAPI tag, and who may call them in `rapport.api.security`.

Accepted events are handed to a background worker (`rapport.api.reactor`) that runs
the event rules at once, so the tasks and messages they plan exist seconds later; the
`ingest-events` flow, every minute, picks up any the worker did not get to (for
example after a restart).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from rapport.api.errors import EXCEPTION_HANDLERS
from rapport.api.limits import BodyLimit
from rapport.api.routes import ROUTERS
from rapport.api.state import share
from rapport.services.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Lets the reaction worker finish the events it was given before the server stops."""
    yield
    app.state.reactor.shutdown()


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """The application; `engine` is Rapport's database (schema already current)."""
    app = FastAPI(
        title="Rapport",
        version="1",
        description="Events and customers in; facts, explanations and staff tasks out.",
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    share(app, settings, engine)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    for router in ROUTERS:
        app.include_router(router)
    return app
