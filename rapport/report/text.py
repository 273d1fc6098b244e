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
from rapport.services.staff_language import _, format_day, format_number, format_share

Row = tuple[str, ...]


def not_available() -> str:
    """What a cell shows when a figure cannot be computed (`n/a`)."""
    return _("n/a")


def percent(rate: Rate, counts: bool = True) -> str:
    if rate.value is None:
        return not_available()
    shown = format_share(rate.value)
    return f"{shown} ({format_number(rate.part)}/{format_number(rate.whole)})" if counts else shown


def number(value: float | None, decimals: int = 0, sign: bool = False) -> str:
    if value is None:
        return not_available()
    return format_number(value, decimals, sign)


def ratio(value: float | None) -> str:
    return not_available() if value is None else f"{format_number(value, 1)}:1"


def hours(value: float | None) -> str:
    return (
        not_available() if value is None else _("{hours} h").format(hours=format_number(value, 1))
    )


def _combined(sla: Mapping[str, Sla], part: Callable[[Sla], Rate]) -> Rate:
    rates = [part(figures) for figures in sla.values()]
    return Rate(sum(r.part for r in rates), sum(r.whole for r in rates))


def _difference(treated: float | None, control: float | None, unit: str, decimals: int) -> str:
    if treated is None or control is None:
        return not_available()
    return f"{format_number(treated - control, decimals, sign=True)}{unit}"


def interval(found: Difference | None, unit: str, decimals: int, scale: float = 1.0) -> str:
    """`+1.2 pts (-3.4 to +5.8)`: the difference and its 95% interval."""
    if found is None:
        return not_available()
    value, low, high = (
        format_number(scale * v, decimals, sign=True) for v in (found.value, found.low, found.high)
    )
    return _("{value}{unit} ({low} to {high})").format(value=value, unit=unit, low=low, high=high)


def comparison_headers() -> Row:
    return (
        _("measure"),
        _("all"),
        _("previous period"),
        _("treated"),
        _("control"),
        _("treated - control (95% CI)"),
        _("note"),
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
    money = report.currency

    def row(
        name: str, shown: Callable[[GroupMeasures], str], found: Difference | None, diff: str
    ) -> Row:
        values = (shown(g) for g in (overall, previous, treated, control))
        return (name, *values, diff, (found.few or "") if found else "")

    def rate(name: str, get: Callable[[GroupMeasures], Rate]) -> Row:
        found = rate_difference(get(treated), get(control))
        points = _(" pts")
        return row(name, lambda g: percent(get(g), counts), found, interval(found, points, 1, 100))

    def figure(name: str, get: Callable[[GroupMeasures], float | None], decimals: int = 0) -> Row:
        diff = _difference(get(treated), get(control), "", decimals)
        return row(name, lambda g: number(get(g), decimals), None, diff)

    def mean(
        name: str, get: Callable[[GroupMeasures], float | None], found: Difference | None
    ) -> Row:
        return row(name, lambda g: number(get(g), 2), found, interval(found, "", 2))

    nps = nps_difference(treated, control)
    return [
        row(_("Customers"), lambda g: format_number(g.customers), None, ""),
        rate(_("Retention"), lambda g: g.retention),
        rate(_("Churn"), lambda g: g.churn),
        rate(_("Win-back rate"), lambda g: g.winback),
        row(_("NPS"), lambda g: number(g.nps), nps, interval(nps, "", 1)),
        row(_("NPS answers"), lambda g: format_number(g.nps_answers), None, ""),
        figure(_("Satisfaction index (0-100)"), lambda g: g.satisfaction, 1),
        rate(_("First response within SLA"), lambda g: _combined(g.sla, lambda s: s.response)),
        rate(_("Resolved within target"), lambda g: _combined(g.sla, lambda s: s.resolution)),
        figure(_("Ledger items open, not yet due"), lambda g: g.ledger.open),
        figure(_("Ledger items overdue"), lambda g: g.ledger.overdue),
        figure(_("Ledger items closed with acceptance"), lambda g: g.ledger.closed_accepted),
        mean(
            _("Revenue per customer ({currency})").format(currency=money),
            lambda g: g.revenue_per_customer,
            mean_difference(treated.revenue_moments, control.revenue_moments),
        ),
        mean(
            _("Relationship spend per customer ({currency})").format(currency=money),
            lambda g: g.spend_per_customer,
            mean_difference(treated.spend_moments, control.spend_moments),
        ),
        figure(
            _("Revenue of contacted customers / spend (all revenue, not the return)"),
            lambda g: g.contacted_revenue_per_spend,
            1,
        ),
        figure(_("Lifetime value, to date ({currency})").format(currency=money), lambda g: g.clv),
        figure(
            _("Lifetime value, projected ({currency})").format(currency=money),
            lambda g: g.clv_projected,
        ),
    ]


def return_line(report: Report) -> str:
    """The return on relationship spend as the playbook judges it (3:1 good, 1:1
    average): the incremental revenue over the spend, with its interval."""
    found = incremental_return(report.treated, report.control)
    money = report.currency
    if found is None:
        return _(
            "Return on relationship spend: n/a (treated and control need 2 customers each "
            "to compare)"
        )
    revenue = found.revenue
    text = _(
        "Return on relationship spend: incremental revenue {revenue} {currency} "
        "(95% CI {low} to {high}) on a spend of {spend} {currency}"
    ).format(
        revenue=format_number(revenue.value, sign=True),
        low=format_number(revenue.low, sign=True),
        high=format_number(revenue.high, sign=True),
        spend=format_number(found.spend),
        currency=money,
    )
    if found.ratio is not None and found.low is not None and found.high is not None:
        text += _(": {ratio} ({low} to {high})").format(
            ratio=ratio(found.ratio), low=ratio(found.low), high=ratio(found.high)
        )
    text += _("; the playbook calls 3:1 good and 1:1 average")
    if not revenue.clear:
        text += _("; the interval includes 0: these data show no return either way")
    return text + (_("; {note}").format(note=revenue.few) if revenue.few else "")


def group_headers() -> Row:
    return (
        _("customers"),
        _("retention"),
        _("churn"),
        _("win-back"),
        _("NPS"),
        _("satisfaction"),
        _("revenue"),
        _("spend"),
        _("contacted revenue / spend"),
        _("CLV to date"),
        _("CLV projected"),
    )


def group_rows(groups: Mapping[str, GroupMeasures]) -> list[Row]:
    """One row per tier, segment or stage (the customers' standing at the start)."""
    return [
        (
            name,
            format_number(g.customers),
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


def sla_headers() -> Row:
    return (
        _("level"),
        _("items"),
        _("first response target"),
        _("within"),
        _("median first response"),
        _("resolution target"),
        _("within"),
        _("median resolution"),
    )


def sla_rows(sla: Mapping[str, Sla], levels: ServiceLevels, counts: bool = True) -> list[Row]:
    """One row per level; a target on the business clock reads `1h business`."""

    def target(level: str, value: timedelta) -> str:
        clock = levels.clock(level)
        hours = _("business") if clock == "business" else "24×7"
        return f"{format_duration(value)} {hours}"

    return [
        (
            level,
            format_number(figures.items),
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
    first, last = period_days(report)
    return _(
        "Relationship report {first} to {last} (both days included, {zone}), "
        "rules revision {revision}, control group {percent}% ({control} of {customers} "
        "customers held out of marketing rules)"
    ).format(
        first=first,
        last=last,
        zone=report.timezone,
        revision=report.revision[:12],
        percent=f"{report.measures.control.percent:g}",
        control=format_number(report.control.customers),
        customers=format_number(report.overall.customers),
    )


def period_days(report: Report) -> tuple[str, str]:
    """The period's first and last day (its end is exclusive), as the locale writes dates."""
    return format_day(report.start.date()), format_day((report.end - timedelta(days=1)).date())


def ledger_line(report: Report) -> str:
    """The remediation ledger at the end of the period, in one sentence."""
    ledger = report.overall.ledger
    return _(
        "Remediation ledger at the end: {open} open, {overdue} overdue; "
        "{closed} closed with acceptance in the period"
    ).format(
        open=format_number(ledger.open),
        overdue=format_number(ledger.overdue),
        closed=format_number(ledger.closed_accepted),
    )


def markdown_table(headers: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report: Report, page: Path) -> str:
    """The summary for the Prefect UI: the measures, the feedback SLA, where the page is."""
    return "\n\n".join(
        (
            headline(report) + _("."),
            markdown_table(comparison_headers(), comparison_rows(report)),
            return_line(report) + _("."),
            markdown_table(sla_headers(), sla_rows(report.overall.sla, report.service_levels)),
            ledger_line(report) + _("."),
            _("The page with the charts: `{page}`").format(page=page),
        )
    )
