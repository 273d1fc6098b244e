"""`rapport preview TEMPLATE --customer ID`: a template rendered with real data."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from jinja2 import TemplateError
from sqlalchemy import select

from actions.templates import LOCALES, TemplateNotFound, Templates, message_context
from engine.loader import load_rules
from rapport.commands.common import AS_OF_HELP, as_of_option, console, database, fail, settings
from storage.facts import iter_customer_facts
from storage.models import Customer

CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]


def preview(
    template: Annotated[str, typer.Argument(help="Template name, e.g. thank_you_guide.")],
    customer_id: Annotated[str, typer.Option("--customer", help="The customer's id.")],
    locale: Annotated[
        str | None, typer.Option(help=f"One of {', '.join(LOCALES)}; default: the customer's.")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
    event: Annotated[
        str | None,
        typer.Option(help='Event fields for event templates, e.g. \'{"product": "grinder"}\'.'),
    ] = None,
) -> None:
    """Render a message template for one customer: subject, text and HTML."""
    config = settings()
    moment = as_of_option(as_of)
    engine = database()
    with engine.connect() as connection:
        row = connection.execute(select(CUSTOMERS).where(CUSTOMERS.c.id == customer_id)).first()
        facts = list(iter_customer_facts(connection, moment, customer_ids=[customer_id]))
    if row is None or not facts:
        raise fail(f"no customer with id {customer_id!r}")
    try:
        fields = json.loads(event) if event else None
    except json.JSONDecodeError as error:
        raise fail(f"--event is not JSON: {error.msg}") from None
    customer = dict(row._mapping)
    ruleset = load_rules(config.rules_dir).ruleset
    product = (fields or {}).get("product")
    suggestions = ruleset.affinity.get(product, ()) if ruleset and product else ()
    context = message_context(
        customer, facts[0], config.company(), "[unsubscribe link]", fields, suggestions
    )
    try:
        message = Templates(config.templates_dir).render(
            template, locale or customer["locale"], context
        )
    except (TemplateNotFound, TemplateError) as error:
        raise fail(str(error)) from None
    console.print(f"[bold]{message.template}[/bold] ({message.locale})", highlight=False)
    console.print(f"Subject: {message.subject}", markup=False, highlight=False)
    console.print(f"\n{message.text}", markup=False, highlight=False)
    if message.html is not None:
        console.print(f"--- html ---\n{message.html}", markup=False, highlight=False)
