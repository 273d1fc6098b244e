"""What the routes share, kept on `app.state` and handed to them as dependencies.

`create_app` builds it once per application; routes are plain module-level functions
that ask for what they use (`engine: Database`), so nothing reaches them by closure
and a test can build two applications side by side.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine

from rapport.api.keys import ApiKey, parse_keys
from rapport.api.reactor import Reactor
from rapport.services.rules import WatchedRules
from rapport.services.settings import Settings


def share(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """Puts the settings, database, keys, rules and reaction worker on `app.state`;
    a malformed RAPPORT_API_KEYS raises ValueError here, at start-up."""
    app.state.keys = parse_keys(settings.api_keys)
    app.state.settings = settings
    app.state.engine = engine
    app.state.rules = WatchedRules(engine, settings.rules_dir, settings.templates_dir)
    app.state.reactor = Reactor(engine, app.state.rules)


def _state(name: str) -> Any:
    """A dependency handing a route the `app.state` attribute `name` set by `share`."""

    def shared(request: Request) -> Any:
        return getattr(request.app.state, name)

    return Depends(shared)


Config = Annotated[Settings, _state("settings")]
Database = Annotated[Engine, _state("engine")]
Keys = Annotated[list[ApiKey], _state("keys")]
Rules = Annotated[WatchedRules, _state("rules")]
Reactions = Annotated[Reactor, _state("reactor")]
