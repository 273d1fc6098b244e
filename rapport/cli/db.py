"""`rapport db`: create and upgrade the schema."""

from __future__ import annotations

import typer

from rapport.cli.common import console, database, fail
from rapport.services.staff_language import _
from storage.migrate import upgrade_database

app = typer.Typer(help="Create or upgrade Rapport's database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Create the schema, or bring it to the newest version (safe to repeat)."""
    engine = database(ready=False)
    try:
        upgrade_database(engine)
    except Exception as error:
        raise fail(
            _("upgrade failed: {problem}").format(problem=str(error).splitlines()[0])
        ) from None
    console.print(f"database {engine.url.render_as_string(hide_password=True)} is up to date")
