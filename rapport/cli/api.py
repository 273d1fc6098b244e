"""`rapport api`, `rapport api-key` and `rapport openapi`: the HTTP API from the shell."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from rapport.cli.common import console, database, fail, signing_settings
from rapport.services.staff_language import _

OPENAPI_FILE = Path("docs/openapi.json")


def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (events, customers, facts, explain, tasks, unsubscribe)."""
    import uvicorn

    from rapport.api.access_log import log_config
    from rapport.api.app import create_app

    config = signing_settings(sends_mail=False)
    try:
        app = create_app(config, database())
    except ValueError as error:  # a malformed RAPPORT_API_KEYS
        raise fail(str(error)) from None
    uvicorn.run(
        app, host=host, port=port, log_level="info", log_config=log_config(), proxy_headers=False
    )


def api_key(
    name: Annotated[str, typer.Option(help="Who uses the key, e.g. shop-east.")],
    role: Annotated[str, typer.Option(help="ingest, staff or admin.")],
) -> None:
    """Make a new API key: the key once, and the entry to add to RAPPORT_API_KEYS."""
    from rapport.api.keys import ROLES, new_key

    if role not in ROLES:
        raise fail(_("role must be one of {roles}").format(roles=", ".join(ROLES)))
    key, entry = new_key(name, role)
    console.print(_("key (shown once, give it to {name}): {key}").format(name=name, key=key))
    console.print(_("add to RAPPORT_API_KEYS (a JSON list):"))
    console.print(json.dumps(asdict(entry)), soft_wrap=True, highlight=False)


def openapi(
    output: Annotated[Path, typer.Option(help="Where to write it.")] = OPENAPI_FILE,
) -> None:
    """Write the API's OpenAPI document (committed as docs/openapi.json)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(openapi_document() + "\n", encoding="utf-8")
    console.print(f"wrote {output}")


def openapi_document() -> str:
    """The OpenAPI document, as committed (no database is touched)."""
    from sqlalchemy import create_engine

    from rapport.api.app import create_app
    from rapport.services.settings import Settings

    app = create_app(Settings(api_keys=""), create_engine("sqlite://"))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=True)
