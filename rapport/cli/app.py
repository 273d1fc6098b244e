"""The `rapport` command: one entry point, a subcommand group per concern."""

from __future__ import annotations

import logging
import os
import sys
from importlib import metadata
from typing import Annotated

import typer

from actions.privacy import MaskingFilter
from rapport.cli import (
    api,
    backtest,
    customers,
    db,
    demo,
    dispatch,
    evaluate,
    imports,
    preview,
    report,
    rules,
    run,
    serve,
    tasks,
)

app = typer.Typer(
    name="rapport",
    help="Rapport keeps customer relationships alive by rule.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's own help: it rewraps each paragraph to the terminal (rich mode kept the
    # docstrings' line breaks in the command list) and shows no type on a flag.
    rich_markup_mode=None,
)


def _version(wanted: bool) -> None:
    if wanted:
        versions = ", ".join(
            f"{name} {metadata.version(name)}" for name in ("prefect", "durable_rules")
        )
        typer.echo(
            f"rapport {metadata.version('rapport')} ({versions}, Python {sys.version.split()[0]})"
        )
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Rapport keeps customer relationships alive by rule."""


app.add_typer(db.app, name="db")
app.add_typer(imports.app, name="import")
app.add_typer(customers.app, name="customers")
app.add_typer(rules.app, name="rules")
app.add_typer(tasks.app, name="tasks")
app.command("explain")(evaluate.explain)
app.command("evaluate")(evaluate.evaluate)
app.command("preview")(preview.preview)
app.command("dispatch")(dispatch.dispatch)
app.command("run")(run.run)
app.command("report")(report.report)
app.command("backtest")(backtest.backtest)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("ui")(serve.ui)
app.command("deploy")(serve.deploy)
app.command("api")(api.api)
app.command("api-key")(api.api_key)
app.command("openapi")(api.openapi)


def main() -> None:
    """Console-script entry point: logs go to stderr with personal data masked."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    # Flows without PREFECT_API_URL (the demo, `serve --embedded`) start Prefect's
    # temporary server, which waits 20 s for it by default; Prefect 3.9's took 54 s on
    # this 2-core machine under load, and a late start fails the whole run.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    app()
