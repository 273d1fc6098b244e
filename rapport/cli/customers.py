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
    moment_option,
    print_json,
    rules_for_run,
    settings,
)
from rapport.services.clock import local_time
from rapport.services.history import customer_history
from rapport.services.staff_language import _, format_moment, format_number, ngettext
from storage.facts import facts_of

app = typer.Typer(help="Look at customers as the rules see them.", no_args_is_help=True)


@app.command("show")
def show(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="{customer_id, as_of, facts} as JSON.")
    ] = False,
) -> None:
    """Print every fact of one customer as of a time (events after it are ignored), with
    the parameters of the rules in force (tier thresholds, windows)."""
    moment = as_of_option(as_of)
    parameters = rules_for_run(record=False).parameters
    with database().connect() as connection:
        facts = facts_of(connection, moment, parameters, customer_id)
    if facts is None:
        raise fail(_("no customer with id {id}").format(id=repr(customer_id)))
    if as_json:
        print_json({"customer_id": customer_id, "as_of": moment, "facts": facts})
        return
    zone = settings().timezone
    title = _("Customer {id} as of {moment}").format(
        id=customer_id, moment=format_moment(moment, zone)
    )
    table = Table(title=title)
    for column in (_("fact"), _("value"), _("unit"), _("description")):
        table.add_column(column)
    for fact in FACTS:
        value = "—" if facts[fact.name] is None else str(facts[fact.name])
        table.add_row(fact.name, value, fact.unit, _(fact.description))
    console.print(table)


@app.command("history")
def history(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Only from this time on; " + AS_OF_HELP)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The entries as a JSON list.")] = False,
    text: Annotated[
        bool, typer.Option("--text", help="Show events' free text (masked), e.g. complaints.")
    ] = False,
) -> None:
    """Every event, rule firing (with the values it saw), message (planned, each guard
    decision and attempt, the result) and task (opened, escalated, closed with its note)
    of one customer, oldest first, times in RAPPORT_TIMEZONE."""
    zone = settings().timezone
    entries = customer_history(
        database(), customer_id, zone, moment_option(since, "--since"), with_text=text
    )
    if entries is None:
        raise fail(_("no customer with id {id}").format(id=repr(customer_id)))
    if as_json:
        print_json(entries)
        return
    title = ngettext(
        "Customer {id}: {count} entry ({zone})",
        "Customer {id}: {count} entries ({zone})",
        len(entries),
    )
    table = Table(title=title.format(id=customer_id, count=format_number(len(entries)), zone=zone))
    for column in (_("time"), _("kind"), _("what")):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(local_time(entry.at, zone), entry.kind, entry.what)
    console.print(table)
