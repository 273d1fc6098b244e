"""`rapport explain` and `rapport evaluate`: what the rules make of customers."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from rapport.cli.common import (
    AS_OF_HELP,
    as_of_option,
    console,
    database,
    errors,
    event_option,
    fail,
    firings_line,
    print_json,
    rules_for_run,
    settings,
)
from rapport.services.explanation import explain_customer
from rapport.services.reactions import react_to_events
from rapport.services.scheduled import RunSummary, evaluate_customers
from rapport.services.staff_language import N_, _, format_moment, format_number
from rapport.services.terminal import progress
from storage.customers import customer_count
from storage.firings import firing_json

STATES = {
    "fired": N_("FIRED"),
    "not fired": N_("not fired"),
    "fired, held out (control group: plans nothing)": N_(
        "FIRED, HELD OUT (CONTROL GROUP: PLANS NOTHING)"
    ),
}
HELD_BACK = "held back by re-entry: last fired "
OUTCOMES = {"send": N_("send"), "defer": N_("defer"), "suppress": N_("suppress")}

AsOf = Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)]


def explain(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    as_of: AsOf = None,
    event: Annotated[
        str | None,
        typer.Option(
            help='Also evaluate event rules for this event, e.g. \'{"type": "feedback", '
            '"level": "major"}\'.'
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The explanation as one JSON object.")
    ] = False,
) -> None:
    """List every rule with fired / not fired and each condition's actual value."""
    moment = as_of_option(as_of)
    ruleset = rules_for_run(record=False)
    explanation = explain_customer(database(), ruleset, customer_id, moment, event_option(event))
    if explanation is None:
        raise fail(_("no customer with id {id}").format(id=repr(customer_id)))
    if as_json:
        print_json(
            {"customer_id": customer_id, "as_of": moment, "revision": ruleset.revision}
            | asdict(explanation)
        )
        return
    heading = _("Customer {id} as of {moment}, rules revision {revision}")
    console.print(
        heading.format(
            id=customer_id,
            moment=format_moment(moment, settings().timezone),
            revision=ruleset.revision[:12],
        )
    )
    for rule in explanation.rules:
        if rule.state == "waits for an event":
            waits = _("- {rule}: waits for a {event} event").format(
                rule=rule.rule_id, event=rule.event
            )
            console.print(f"\n[dim]{waits}[/dim]")
            continue
        fired = rule.state.startswith("fired")
        disabled = "" if rule.enabled else _(" (disabled)")
        console.print(
            f"\n[bold]{'✔' if fired else '✘'} {rule.rule_id}[/bold]: "
            f"{rule_state(rule.state)}{disabled} — {rule.description}"
        )
        table = Table(show_header=False, box=None, pad_edge=False)
        for check in rule.checks:
            mark = "[green]✔[/green]" if check.holds else "[red]✘[/red]"
            table.add_row("  " * (check.depth + 1) + mark, check.text, check.actual)
        console.print(table)
        for guard in rule.guards:
            line = _("guards for {template}: {outcome} — {reason}").format(
                template=guard.template,
                outcome=_(OUTCOMES[guard.outcome]) if guard.outcome in OUTCOMES else guard.outcome,
                reason=guard.reason,
            )
            console.print(f"    {line}", highlight=False)


def rule_state(state: str) -> str:
    """A rule's state in `explain` (the explanation's English words, kept as they are in
    its JSON), in the staff language; a fired one in capitals."""
    if state in STATES:
        return _(STATES[state])
    moment = state.removeprefix(HELD_BACK)
    if moment != state:
        return _("held back by re-entry: last fired {moment}").format(moment=moment)
    return state.upper() if state.startswith("fired") else state


def evaluate(
    as_of: AsOf = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write nothing; show what would fire.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per firing.")] = False,
) -> None:
    """Evaluate the scheduled rules for every customer as of a time and record the firings."""
    moment = as_of_option(as_of)
    ruleset = rules_for_run(record=not dry_run)
    summary = RunSummary()
    engine = database()
    with engine.connect() as connection:
        customers = customer_count(connection)
    firings = evaluate_customers(
        engine,
        ruleset,
        moment,
        record=not dry_run,
        created_at=datetime.now(UTC),
        summary=summary,
    )
    with progress(errors, "evaluating customers", customers) as advance:
        seen = 0
        for firing in firings:
            advance(summary.customers - seen)
            seen = summary.customers
            if as_json:
                typer.echo(json.dumps(firing_json(firing), ensure_ascii=False))
    if as_json:
        return
    title = _("Firings as of {moment}").format(moment=format_moment(moment, settings().timezone))
    title += _(" — dry run, nothing written") * dry_run
    print_run(summary, title, ruleset.revision)
    if dry_run:  # what the next reaction run would add (see `rapport run`)
        pending = react_to_events(database(), ruleset, moment, record=False)
        line = firings_line(pending, dry_run=True)
        console.print(_("event reactions pending: {firings}").format(firings=line))


def print_run(summary: RunSummary, title: str, revision: str) -> None:
    """Firings per rule, then what re-entry let through."""
    table = Table(title=title)
    table.add_column(_("rule"))
    table.add_column(_("firings"), justify="right")
    for rule_id, count in Counter(summary.firings).most_common():
        table.add_row(rule_id, format_number(count))
    console.print(table)
    admitted = sum(summary.firings.values())
    line = _(
        "{matched} matches over {customers} customers, {admitted} admitted "
        "({held} held back by re-entry); revision {revision}"
    )
    console.print(
        line.format(
            matched=format_number(summary.matched),
            customers=format_number(summary.customers),
            admitted=format_number(admitted),
            held=format_number(summary.matched - admitted),
            revision=revision[:12],
        )
    )
