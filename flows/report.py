"""`daily-report`: the day's numbers as artifacts (firings, messages, tasks, ledger), and
the relationship report of the last four weeks: its summary as an artifact, the page
with its charts under `RAPPORT_REPORTS_DIR`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import artifacts
from flows.context import FlowContext, flow_context
from rapport.report.build import Report, build_report, period
from rapport.report.html import report_html
from rapport.report.text import report_markdown
from rapport.services.staff_language import N_, _, format_day
from storage.daily import DayNumbers, day_numbers

REPORT_DAYS = 28


@task(name="count-the-day", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def count_the_day(context: FlowContext, start: datetime, end: datetime) -> DayNumbers:
    with context.engine.connect() as connection:
        return day_numbers(connection, start, end)


@task(name="measure-four-weeks", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def measure_four_weeks(context: FlowContext, start: datetime, end: datetime) -> Report:
    return build_report(
        context.engine,
        context.ruleset,
        start,
        end,
        timezone=context.settings.timezone,
        currency=context.settings.currency,
    )


@flow(name="daily-report")
def daily_report(day: str | None = None, as_of: str | None = None) -> dict[str, Any]:
    """The numbers of `day` (YYYY-MM-DD, in the configured timezone; default: the day
    before `as_of`)."""
    context = flow_context(as_of)
    timezone = context.settings.timezone
    local = (
        date.fromisoformat(day)
        if day
        else context.as_of.astimezone(ZoneInfo(timezone)).date() - timedelta(1)
    )
    numbers = count_the_day(context, *period(local, local, timezone))
    figures = {
        N_("day"): local.isoformat(),
        N_("firings"): sum(numbers.firings.values()),
        N_("messages sent"): sum(numbers.sent.values()),
        N_("tasks opened"): sum(numbers.tasks_opened.values()),
        N_("tasks closed"): numbers.tasks_closed,
        N_("tasks escalated"): numbers.tasks_escalated,
        N_("remediation-ledger items open now"): numbers.ledger_open,
    }
    title = _("Rapport on {day}").format(day=format_day(local))
    artifacts.summary("daily-summary", title, figures)
    artifacts.counts_table("daily-firings", _("Firings per rule"), N_("rule"), numbers.firings)
    sent = _("Messages sent per channel")
    artifacts.counts_table("daily-sent", sent, N_("channel"), numbers.sent)
    artifacts.counts_table(
        "daily-planned", _("Messages planned today, by status now"), N_("status"), numbers.planned
    )
    opened = _("Tasks opened per owner")
    artifacts.counts_table("daily-tasks", opened, N_("owner"), numbers.tasks_opened)
    first = local - timedelta(days=REPORT_DAYS - 1)
    report = measure_four_weeks(context, *period(first, local, timezone))
    page = context.settings.reports_dir / f"relationship-report-{local.isoformat()}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(report_html(report), encoding="utf-8")
    artifacts.markdown(
        "relationship-report",
        _("Relationship report, last four weeks"),
        report_markdown(report, page),
    )
    figures["relationship report"] = str(page)
    return figures
