"""The report's numbers as rows of text: one source for the terminal, the Prefect
artifact and the HTML tables, so the three always agree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

from engine.durations import format_duration
from engine.service_levels import ServiceLevels
from rapport.report.build import Report
from rapport.report.comparison import (
    Difference,
    incremental_return,
    mean_difference,
    nps_difference,
    rate_difference,
)
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


def interval(found: Difference | None, unit: str, decimals: int, scale: float = 1.0) -> str:
    """`+1.2 pts (-3.4 to +5.8)`: the difference and its 95% interval."""
    if found is None:
        return NA
    value, low, high = (scale * v for v in (found.value, found.low, found.high))
    return f"{value:+,.{decimals}f}{unit} ({low:+,.{decimals}f} to {high:+,.{decimals}f})"


COMPARISON_HEADERS: Row = (
    "measure",
    "all",
    "previous period",
    "treated",
    "control",
    "treated - control (95% CI)",
    "note",
)


def comparison_rows(report: Report, counts: bool = True) -> list[Row]:
    """Measure | all | all, the period before | treated | control | treated − control with
    its 95% interval | a warning when a group is too small to say much. `counts` adds the
    part and whole behind each rate."""
    overall, previous, treated, control = (
        report.overall,
        report.previous,
        report.treated,
        report.control,
    )
    money = f" ({report.currency})"

    def row(
        name: str, shown: Callable[[GroupMeasures], str], found: Difference | None, diff: str
    ) -> Row:
        values = (shown(g) for g in (overall, previous, treated, control))
        return (name, *values, diff, (found.few or "") if found else "")

    def rate(name: str, get: Callable[[GroupMeasures], Rate]) -> Row:
        found = rate_difference(get(treated), get(control))
        return row(name, lambda g: percent(get(g), counts), found, interval(found, " pts", 1, 100))

    def figure(name: str, get: Callable[[GroupMeasures], float | None], decimals: int = 0) -> Row:
        diff = _difference(get(treated), get(control), "", decimals)
        return row(name, lambda g: number(get(g), decimals), None, diff)

    def mean(
        name: str, get: Callable[[GroupMeasures], float | None], found: Difference | None
    ) -> Row:
        return row(name, lambda g: number(get(g), 2), found, interval(found, "", 2))

    nps = nps_difference(treated, control)
    return [
        row("Customers", lambda g: f"{g.customers:,}", None, ""),
        rate("Retention", lambda g: g.retention),
        rate("Churn", lambda g: g.churn),
        rate("Win-back rate", lambda g: g.winback),
        row("NPS", lambda g: number(g.nps), nps, interval(nps, "", 1)),
        row("NPS answers", lambda g: f"{g.nps_answers:,}", None, ""),
        figure("Satisfaction index (0-100)", lambda g: g.satisfaction, 1),
        rate("First response within SLA", lambda g: _combined(g.sla, lambda s: s.response)),
        rate("Resolved within target", lambda g: _combined(g.sla, lambda s: s.resolution)),
        figure("Ledger items open, not yet due", lambda g: g.ledger.open),
        figure("Ledger items overdue", lambda g: g.ledger.overdue),
        figure("Ledger items closed with acceptance", lambda g: g.ledger.closed_accepted),
        mean(
            f"Revenue per customer{money}",
            lambda g: g.revenue_per_customer,
            mean_difference(treated.revenue_moments, control.revenue_moments),
        ),
        mean(
            f"Relationship spend per customer{money}",
            lambda g: g.spend_per_customer,
            mean_difference(treated.spend_moments, control.spend_moments),
        ),
        figure(
            "Revenue of contacted customers / spend (all revenue, not the return)",
            lambda g: g.contacted_revenue_per_spend,
            1,
        ),
        figure(f"Lifetime value, to date{money}", lambda g: g.clv),
        figure(f"Lifetime value, projected{money}", lambda g: g.clv_projected),
    ]


def return_line(report: Report) -> str:
    """The return on relationship spend as the playbook judges it (3:1 good, 1:1
    average): the incremental revenue over the spend, with its interval."""
    found = incremental_return(report.treated, report.control)
    money = report.currency
    if found is None:
        return (
            "Return on relationship spend: n/a (treated and control need 2 customers each "
            "to compare)"
        )
    revenue = found.revenue
    text = (
        f"Return on relationship spend: incremental revenue {revenue.value:+,.0f} {money} "
        f"(95% CI {revenue.low:+,.0f} to {revenue.high:+,.0f}) on a spend of "
        f"{found.spend:,.0f} {money}"
    )
    if found.ratio is not None and found.low is not None and found.high is not None:
        text += f": {found.ratio:,.1f}:1 ({found.low:,.1f}:1 to {found.high:,.1f}:1)"
    text += "; the playbook calls 3:1 good and 1:1 average"
    if not revenue.clear:
        text += "; the interval includes 0: these data show no return either way"
    return text + (f"; {revenue.few}" if revenue.few else "")


GROUP_HEADERS: Row = (
    "customers",
    "retention",
    "churn",
    "win-back",
    "NPS",
    "satisfaction",
    "revenue",
    "spend",
    "contacted revenue / spend",
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
            ratio(g.contacted_revenue_per_spend),
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
    first = report.start.date().isoformat()
    last = (report.end - timedelta(days=1)).date().isoformat()
    return (
        f"Relationship report {first} to {last} (both days included, {report.timezone}), "
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
            return_line(report) + ".",
            markdown_table(SLA_HEADERS, sla_rows(report.overall.sla, report.service_levels)),
            f"Remediation ledger at the end: {ledger.open} open, {ledger.overdue} overdue; "
            f"{ledger.closed_accepted} closed with acceptance in the period.",
            f"The page with the charts: `{page}`",
        )
    )
