"""`rapport preview TEMPLATE --customer ID`: a template rendered with real data."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from jinja2 import TemplateError

from actions.templates import LOCALES, TemplateNotFound, Templates, message_context
from rapport.cli.common import (
    AS_OF_HELP,
    as_of_option,
    console,
    database,
    event_option,
    fail,
    rules_for_run,
    settings,
)
from rapport.services.staff_language import _
from storage.customers import customer_rows
from storage.events import products_bought
from storage.facts import facts_of


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
    fields = event_option(event)
    templates = Templates(config.templates_dir)
    needed = templates.event_fields(template)
    if fields is None and needed is not None:
        example = json.dumps(dict.fromkeys(needed or ("type",), "..."))
        fields_used = " (" + ", ".join(f"event.{n}" for n in needed) + ")" if needed else ""
        raise fail(
            _(
                "template {template} uses the triggering event{fields}: give it with {option}"
            ).format(template=repr(template), fields=fields_used, option=f"--event '{example}'")
        )
    ruleset = rules_for_run(record=False)
    with database().connect() as connection:
        customer = customer_rows(connection, [customer_id]).get(customer_id)
        facts = facts_of(connection, moment, ruleset.parameters, customer_id)
        owned = products_bought(connection, [customer_id], moment).get(customer_id, frozenset())
    if customer is None or facts is None:
        raise fail(_("no customer with id {id}").format(id=repr(customer_id)))
    suggestions = ruleset.suggestions_for((fields or {}).get("product"), owned)
    reply_by = None  # a feedback item's first-response deadline, as if it came in now
    if fields is not None and fields.get("type", "feedback") == "feedback":
        reply_by = ruleset.policy.service_levels.target(
            fields.get("level"), "first_response", moment
        )
    context = message_context(
        customer, facts, config.company(), "[unsubscribe link]", fields, suggestions, reply_by
    )
    try:
        message = templates.render(template, locale or customer["locale"], context)
    except (TemplateNotFound, TemplateError) as error:
        raise fail(str(error)) from None
    console.print(f"[bold]{message.template}[/bold] ({message.locale})", highlight=False)
    console.print(f"Subject: {message.subject}", markup=False, highlight=False)
    console.print(f"\n{message.text}", markup=False, highlight=False)
    if message.html is not None:
        console.print(f"--- html ---\n{message.html}", markup=False, highlight=False)
