"""The report's numbers as rows of text: one source for the terminal, the Prefect
artifact and the HTML tables, so the three always agree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

from engine.durations import format_duration
from engine.service_levels import ServiceLevels
from rapport.report.build import Report
from rapport.report.measures import GroupMeasures, Rate, Sla

NA = "n/a"
Row = tuple[str, ...]


def percent(rate: Rate, counts: bool = True) -> str:
    if rate.value is None:
        return NA
    shown = f"{100 * rate.value:.1f}%"
    return f"{shown} ({rate.part:,}/{rate.whole:,})" if counts else shown


def number(value: float | None, decimals: int = 0, sign: bool = False) -> str:
    if value is None:
        return NA
    return f"{value:{'+' if sign else ''},.{decimals}f}"


def ratio(value: float | None) -> str:
    return NA if value is None else f"{value:,.1f}:1"


def hours(value: float | None) -> str:
    return NA if value is None else f"{value:,.1f} h"


def _combined(sla: Mapping[str, Sla], part: Callable[[Sla], Rate]) -> Rate:
    rates = [part(figures) for figures in sla.values()]
    return Rate(sum(r.part for r in rates), sum(r.whole for r in rates))


def _difference(treated: float | None, control: float | None, unit: str, decimals: int) -> str:
    if treated is None or control is None:
        return NA
    return f"{treated - control:+,.{decimals}f}{unit}"


COMPARISON_HEADERS: Row = ("measure", "all", "treated", "control", "treated - control")


def comparison_rows(report: Report, counts: bool = True) -> list[Row]:
    """Measure | all | treated | control | treated − control; `counts` adds the part and
    whole behind each rate."""
    groups = (report.overall, report.treated, report.control)
    money = f" ({report.currency})"

    def rate(name: str, get: Callable[[GroupMeasures], Rate]) -> Row:
        values = [get(g) for g in groups]
        treated, control = (None if v.value is None else 100 * v.value for v in values[1:])
        shown = (percent(v, counts) for v in values)
        return (name, *shown, _difference(treated, control, " pts", 1))

    def figure(name: str, get: Callable[[GroupMeasures], float | None], decimals: int = 0) -> Row:
        values = [get(g) for g in groups]
        shown = tuple(number(v, decimals) for v in values)
        return (name, *shown, _difference(values[1], values[2], "", decimals))

    return [
        ("Customers", *(f"{g.customers:,}" for g in groups), ""),
        rate("Retention", lambda g: g.retention),
        rate("Churn", lambda g: g.churn),
        rate("Win-back rate", lambda g: g.winback),
        figure("NPS", lambda g: g.nps),
        ("NPS answers", *(f"{g.nps_answers:,}" for g in groups), ""),
        figure("Satisfaction index (0-100)", lambda g: g.satisfaction, 1),
        rate("First response within SLA", lambda g: _combined(g.sla, lambda s: s.response)),
        rate("Resolved within target", lambda g: _combined(g.sla, lambda s: s.resolution)),
        figure("Ledger items open, not yet due", lambda g: g.ledger.open),
        figure("Ledger items overdue", lambda g: g.ledger.overdue),
        figure("Ledger items closed with acceptance", lambda g: g.ledger.closed_accepted),
        figure(f"Revenue per customer{money}", lambda g: g.revenue_per_customer, 2),
        figure(f"Relationship spend per customer{money}", lambda g: g.spend_per_customer, 2),
        (
            "Return on relationship spend",
            *(ratio(g.return_on_spend) for g in groups),
            _difference(report.treated.return_on_spend, report.control.return_on_spend, "", 1),
        ),
        figure(f"Lifetime value, to date{money}", lambda g: g.clv),
        figure(f"Lifetime value, projected{money}", lambda g: g.clv_projected),
    ]


GROUP_HEADERS: Row = (
    "customers",
    "retention",
    "churn",
    "win-back",
    "NPS",
    "satisfaction",
    "revenue",
    "spend",
    "return",
    "CLV to date",
    "CLV projected",
)


def group_rows(groups: Mapping[str, GroupMeasures]) -> list[Row]:
    """One row per tier, segment or stage (the customers' standing at the start)."""
    return [
        (
            name,
            f"{g.customers:,}",
            percent(g.retention, counts=False),
            percent(g.churn, counts=False),
            percent(g.winback, counts=False),
            number(g.nps),
            number(g.satisfaction, 1),
            number(g.revenue),
            number(g.spend),
            ratio(g.return_on_spend),
            number(g.clv),
            number(g.clv_projected),
        )
        for name, g in groups.items()
    ]


SLA_HEADERS: Row = (
    "level",
    "items",
    "first response target",
    "within",
    "median first response",
    "resolution target",
    "within",
    "median resolution",
)


def sla_rows(sla: Mapping[str, Sla], levels: ServiceLevels, counts: bool = True) -> list[Row]:
    """One row per level; a target on the business clock reads `1h business`."""

    def target(level: str, value: timedelta) -> str:
        clock = levels.clock(level)
        return f"{format_duration(value)} {'business' if clock == 'business' else '24×7'}"

    return [
        (
            level,
            f"{figures.items:,}",
            target(level, levels.targets[level].first_response),
            percent(figures.response, counts),
            hours(figures.median_response_hours),
            target(level, levels.targets[level].resolution),
            percent(figures.resolution, counts),
            hours(figures.median_resolution_hours),
        )
        for level, figures in sla.items()
    ]


def headline(report: Report) -> str:
    """One line naming the period, the time zone and the rules revision."""
    first, last = report.start.date().isoformat(), report.end.date().isoformat()
    return (
        f"Relationship report {first} to {last} (end exclusive, {report.timezone}), "
        f"rules revision {report.revision[:12]}, "
        f"control group {report.measures.control.percent:g}% "
        f"({report.control.customers:,} of {report.overall.customers:,} customers held out of "
        "marketing rules)"
    )


def markdown_table(headers: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report: Report, page: Path) -> str:
    """The summary for the Prefect UI: the measures, the feedback SLA, where the page is."""
    ledger = report.overall.ledger
    return "\n\n".join(
        (
            headline(report) + ".",
            markdown_table(COMPARISON_HEADERS, comparison_rows(report)),
            markdown_table(SLA_HEADERS, sla_rows(report.overall.sla, report.service_levels)),
            f"Remediation ledger at the end: {ledger.open} open, {ledger.overdue} overdue; "
            f"{ledger.closed_accepted} closed with acceptance in the period.",
            f"The page with the charts: `{page}`",
        )
    )
