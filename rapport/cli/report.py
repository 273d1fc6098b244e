"""`rapport report`: the relationship report for a period, in the terminal and as HTML."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from engine.model import RuleSet
from rapport.cli.common import (
    console,
    database,
    errors,
    fail,
    print_json,
    rules_for_run,
    settings,
)
from rapport.report.build import BUILD_STEPS, Report, build_report, period
from rapport.report.export import report_data
from rapport.report.html import report_html
from rapport.report.text import (
    Row,
    comparison_headers,
    comparison_rows,
    group_headers,
    group_rows,
    headline,
    ledger_line,
    return_line,
    sla_headers,
    sla_rows,
)
from rapport.services.staff_language import _
from rapport.services.terminal import progress

DEFAULT_DAYS = 28


def _day(value: str | None, option: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise fail(
            _("{option} {value} is not a date such as {example}").format(
                option=option, value=repr(value), example="2026-11-01"
            )
        ) from None


def make_report(ruleset: RuleSet, start: datetime, end: datetime) -> Report:
    config = settings()
    with progress(errors, "measuring", BUILD_STEPS) as advance:
        return build_report(
            database(),
            ruleset,
            start,
            end,
            timezone=config.timezone,
            currency=config.currency,
            advance=advance,
        )


def _table(headers: Row, rows: list[Row], title: str) -> Table:
    table = Table(*headers, title=title, title_justify="left")
    for row in rows:
        table.add_row(*row)
    return table


def print_summary(report: Report) -> None:
    console.print(headline(report), highlight=False)
    measures = comparison_rows(report, counts=False)
    console.print(_table(comparison_headers(), measures, _("Measures")))
    console.print(return_line(report), highlight=False)
    sla = sla_rows(report.overall.sla, report.service_levels, counts=False)
    console.print(_table(sla_headers(), sla, _("Feedback against its SLA")))
    console.print(ledger_line(report), highlight=False)
    tiers = [row[:6] for row in group_rows(report.by_tier)]
    headers = (_("tier"), *group_headers()[:5])
    console.print(_table(headers, tiers, _("By tier (more in the HTML report)")))


def report(
    first: Annotated[
        str | None,
        typer.Option("--from", help="First day (YYYY-MM-DD). Default: 4 weeks before --to."),
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last day, included (YYYY-MM-DD). Default: today.")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the report with its charts to this HTML file."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Every measure of every group as JSON, not tables.")
    ] = False,
) -> None:
    """Measures for a period (days in RAPPORT_TIMEZONE): retention, churn, win-back, NPS,
    satisfaction, feedback SLA, ledger, lifetime value, return on spend, treated vs control."""
    timezone = settings().timezone
    to_day = _day(last, "--to") or datetime.now(ZoneInfo(timezone)).date()
    from_day = _day(first, "--from") or to_day - timedelta(days=DEFAULT_DAYS - 1)
    try:
        start, end = period(from_day, to_day, timezone)
    except ValueError as error:
        raise fail(str(error)) from None
    result = make_report(rules_for_run(record=False), start, end)
    if as_json:
        print_json(report_data(result))
    else:
        print_summary(result)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(report_html(result), encoding="utf-8")
        (errors if as_json else console).print(_("wrote {path}").format(path=html), highlight=False)
