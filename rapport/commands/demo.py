"""`rapport demo`: the README's first command, end to end on embedded defaults."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from engine.facts import STAGES, TIERS
from rapport.commands.common import console, database, settings
from rapport.commands.evaluate import print_run
from rapport.evaluation import RunSummary, evaluate_customers
from rapport.sample import write_sample
from storage.facts import iter_customer_facts
from storage.imports import import_customers, import_events
from storage.migrate import upgrade_database
from storage.revisions import rules_in_force

SHOWN_FACTS = (
    "tier",
    "lifecycle_stage",
    "spend_12m",
    "days_since_last_purchase",
    "purchase_overdue_ratio",
    "logins_30d",
    "open_complaints",
    "last_survey_score",
)


def demo(
    customers: Annotated[
        int, typer.Option(min=10, max=200_000, help="Customers to generate.")
    ] = 3_000,
    directory: Annotated[Path, typer.Option(help="Where the sample files go.")] = Path("var/demo"),
) -> None:
    """Create the database, import a generated customer base, show facts and evaluate rules."""
    config = settings()
    engine = database(ready=False)
    upgrade_database(engine)
    zone = ZoneInfo(config.timezone)
    end = datetime.combine(datetime.now(zone).date(), time(), tzinfo=zone)
    files = write_sample(directory, customers=customers, end=end)
    console.print(
        f"generated {files.customer_count} customers and {files.event_count} events in {directory}"
    )
    for label, report in (
        ("customers", import_customers(engine, files.customers, default_timezone=config.timezone)),
        ("events", import_events(engine, files.events, imported_at=datetime.now(UTC))),
    ):
        console.print(
            f"imported {label}: {report.inserted} new, "
            f"{report.updated + report.duplicates} already there, {report.rejected} rejected"
        )
    as_of = datetime.now(UTC)
    ruleset, _ = rules_in_force(engine, config.rules_dir, config.templates_dir, as_of)
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[str, dict[str, object]] = {}
    with engine.connect() as connection:
        for facts in iter_customer_facts(connection, as_of, ruleset.parameters):
            counts[(facts["tier"], facts["lifecycle_stage"])] += 1
            examples.setdefault(facts["lifecycle_stage"], facts)
    _print_distribution(counts)
    _print_examples(examples)
    summary = RunSummary()
    for _ in evaluate_customers(engine, ruleset, as_of, record=True, summary=summary):
        pass
    print_run(
        summary, "Rules that fired (run the demo again: re-entry holds them back)", ruleset.revision
    )
    first = next(iter(examples.values()))["customer_id"]
    console.print(
        "\nNext, try:\n"
        f"  .venv/bin/rapport explain {first}\n"
        f"  .venv/bin/rapport customers show {first} --as-of {(end - timedelta(days=90)).date()}\n"
        "  .venv/bin/rapport evaluate --dry-run --json | head\n"
        "  .venv/bin/rapport dispatch            # deliver the planned messages into var/outbox/\n"
        "  .venv/bin/rapport tasks list --owner account_manager\n"
        "  .venv/bin/rapport rules check\n"
        "  .venv/bin/rapport rules test\n"
        "  .venv/bin/rapport --help"
    )


def _print_distribution(counts: Counter[tuple[str, str]]) -> None:
    table = Table(title="Customers by tier and lifecycle stage")
    table.add_column("tier")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column("total", justify="right")
    for tier in TIERS:
        row = [counts[(tier, stage)] for stage in STAGES]
        table.add_row(tier, *map(str, row), str(sum(row)))
    console.print(table)


def _print_examples(examples: dict[str, dict[str, object]]) -> None:
    table = Table(title="One customer per lifecycle stage")
    table.add_column("fact")
    for facts in examples.values():
        table.add_column(str(facts["customer_id"]), justify="right")
    for name in SHOWN_FACTS:
        cells = ["—" if facts[name] is None else str(facts[name]) for facts in examples.values()]
        table.add_row(name, *cells)
    console.print(table)
