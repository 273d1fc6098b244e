"""`rapport customers show ID`: one customer's facts as the rules will see them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from engine.facts import FACTS
from rapport.cli.common import (
    AS_OF_HELP,
    as_of_option,
    console,
    database,
    fail,
    rules_for_run,
)
from storage.facts import facts_of

app = typer.Typer(help="Look at customers as the rules see them.", no_args_is_help=True)


@app.command("show")
def show(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
) -> None:
    """Print every fact of one customer as of a time (events after it are ignored), with
    the parameters of the rules in force (tier thresholds, windows)."""
    moment = as_of_option(as_of)
    parameters = rules_for_run(record=False).parameters
    with database().connect() as connection:
        facts = facts_of(connection, moment, parameters, customer_id)
    if facts is None:
        raise fail(f"no customer with id {customer_id!r}")
    table = Table(title=f"Customer {customer_id} as of {moment.isoformat()}")
    for column in ("fact", "value", "unit", "description"):
        table.add_column(column)
    for fact in FACTS:
        value = facts[fact.name]
        table.add_row(fact.name, "—" if value is None else str(value), fact.unit, fact.description)
    console.print(table)
