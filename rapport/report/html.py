"""The relationship report as one self-contained HTML page: charts first, then tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from engine.measure_settings import Measures
from rapport.report.build import Report
from rapport.report.charts import bar_chart, line_chart, stacked_bar_chart
from rapport.report.comparison import incremental_return
from rapport.report.measures import SATISFACTION_WEIGHTS, GroupMeasures
from rapport.report.page import Chart, Figure, Figures, Paragraph, Section, Table, render_page
from rapport.report.text import (
    COMPARISON_HEADERS,
    GROUP_HEADERS,
    SLA_HEADERS,
    comparison_rows,
    group_rows,
    headline,
    number,
    percent,
    ratio,
    return_line,
    sla_rows,
)

MOST_RULES = 8  # rules drawn one by one in the work charts; the rest are summed as "other"
DEFINITIONS = (
    "Active: bought something within the active window ({active}) before a moment. "
    "Retention: of the customers active when the period starts, the share still active "
    "when it ends; churn is the rest.",
    "Win-back rate: of the customers whose win-back window ({winback} after a win-back "
    "rule fired for them, held out or not) ended in the period, the share who bought "
    "within it.",
    "NPS: % promoters (9-10) minus % detractors (0-6) among answers to the recommend "
    "question. Satisfaction index: each dimension's mean score, weighted product fit 40, "
    "response speed 25, resolution quality 20, price 15, brand 10. Those weights sum to "
    "110, so they are normalised (divided by the sum of the weights of the dimensions "
    "answered) and the index is shown on a 0-100 scale.",
    "Feedback SLA: an item counts once its target has passed or it has been answered "
    "(resolved); items still inside their target are pending.",
    "Lifetime value: net purchases to date per customer who bought. Projected: plus the "
    "last 12 months' net spend x (r + r^2 + ... + r^{years}), r being the group's share of "
    "customers active a year before the end who are still active at it (everyone's share "
    "for a group with nobody active then, such as new customers).",
    "Return on relationship spend: net revenue from contacted customers after their first "
    "contact in the period, divided by the cost of the messages sent and tasks opened "
    "(costs per channel and task kind in rules/measures.yaml). Above 3 : 1 is good; 1 : 1 "
    "is the average.",
    "Control group: {control}% of customers, chosen by a stable hash of their id, get no "
    "marketing rules (service rules such as feedback replies still apply). Treated minus "
    "control shows the rules' uplift.",
)


def step_labels(report: Report) -> list[str]:
    return [begin.date().isoformat() for begin, _ in report.steps]


def _few_rules(per_rule: Mapping[str, list[float]]) -> dict[str, list[float]]:
    """The busiest rules by name, the rest summed as `other rules`."""
    names = list(per_rule)
    shown = {name: per_rule[name] for name in names[:MOST_RULES]}
    rest = names[MOST_RULES:]
    if rest:
        shown["other rules"] = [
            sum(per_rule[n][i] for n in rest) for i in range(len(per_rule[rest[0]]))
        ]
    return shown


def _summary(report: Report) -> Section:
    treated, control, overall = report.treated, report.control, report.overall
    gain = incremental_return(treated, control)

    def versus(get: Callable[[GroupMeasures], str]) -> str:
        return f"control {get(control)}"

    ledger = overall.ledger
    return Section(
        "Summary",
        (
            Paragraph(headline(report) + "."),
            Figures(
                (
                    Figure(
                        "Customers", f"{overall.customers:,}", f"{control.customers:,} held out"
                    ),
                    Figure(
                        "Retention (treated)",
                        percent(treated.retention, counts=False),
                        versus(lambda g: percent(g.retention, counts=False)),
                    ),
                    Figure(
                        "Churn (treated)",
                        percent(treated.churn, counts=False),
                        versus(lambda g: percent(g.churn, counts=False)),
                    ),
                    Figure(
                        "Win-back rate (treated)",
                        percent(treated.winback, counts=False),
                        versus(lambda g: percent(g.winback, counts=False)),
                    ),
                    Figure(
                        "NPS", number(overall.nps, sign=True), f"{overall.nps_answers:,} answers"
                    ),
                    Figure(
                        "Satisfaction (0-100)",
                        number(overall.satisfaction, 1),
                        "weights normalised",
                    ),
                    Figure(
                        "Return on spend (incremental)",
                        ratio(gain.ratio if gain else None),
                        f"spend {number(treated.spend)} {report.currency}; playbook: 3:1 good",
                    ),
                    Figure(
                        "Remediation ledger",
                        f"{ledger.open + ledger.overdue:,} open",
                        f"{ledger.overdue:,} overdue, {ledger.closed_accepted:,} closed "
                        "with acceptance",
                    ),
                )
            ),
        ),
    )


def _retention(report: Report, labels: list[str], settings: Measures) -> Section:
    start = report.start.date().isoformat()
    return Section(
        "Retention and churn",
        (
            Chart(
                line_chart(
                    f"Customers active on {start} who are still active",
                    labels,
                    report.series.retention,
                    y_label="still active",
                    percent=True,
                ),
                "Treated vs control, at the end of each step (steps start on the date shown).",
            ),
            Chart(
                line_chart(
                    "Churn within each step",
                    labels,
                    report.series.churn,
                    y_label="churned in the step",
                    percent=True,
                ),
                f"Of the customers active when a step starts, the share no longer active "
                f"(no purchase in the last {settings.active_window.days} days) when it ends.",
            ),
        ),
    )


def _satisfaction(report: Report, labels: list[str]) -> Section:
    total = sum(SATISFACTION_WEIGHTS.values())
    dimensions = report.overall.dimensions
    rows = tuple(
        (
            name.replace("_", " "),
            str(weight),
            f"{weight / total:.3f}",
            number(dimensions[name], 2),
        )
        for name, weight in SATISFACTION_WEIGHTS.items()
    )
    return Section(
        "NPS and satisfaction",
        (
            Chart(
                line_chart(
                    "NPS per step",
                    labels,
                    {"NPS": report.series.nps},
                    y_label="NPS",
                    y_min=-100,
                    y_max=100,
                ),
                "% promoters (9-10) minus % detractors (0-6); empty steps had no answers.",
            ),
            Chart(
                line_chart(
                    "Satisfaction index per step",
                    labels,
                    {"satisfaction index": report.series.satisfaction},
                    y_label="index (0-100)",
                    y_max=100,
                ),
                "Weighted dimension scores; the playbook's weights sum to 110 and are normalised.",
            ),
            Table(
                ("dimension", "playbook weight", "normalised weight", "mean score (0-10)"),
                rows,
                f"Satisfaction index {number(report.overall.satisfaction, 1)} of 100.",
            ),
        ),
    )


def _feedback(report: Report, settings: Measures) -> Section:
    sla = report.overall.sla
    levels = list(sla)
    rates = {
        "first response within SLA": [sla[level].response.value for level in levels],
        "resolved within target": [sla[level].resolution.value for level in levels],
    }
    ledger = report.overall.ledger
    return Section(
        "Feedback SLA and the remediation ledger",
        (
            Chart(
                bar_chart(
                    "Feedback handled within target, per level",
                    levels,
                    rates,
                    y_label="share of items",
                    percent=True,
                ),
                "Targets per level, and the business hours they count in, are in rules/policy.yaml "
                "(feedback_sla, business_hours).",
            ),
            Table(SLA_HEADERS, tuple(sla_rows(report.overall.sla, report.service_levels))),
            Figures(
                (
                    Figure("Ledger items open", f"{ledger.open:,}", "not yet due"),
                    Figure("Ledger items overdue", f"{ledger.overdue:,}", "open past the deadline"),
                    Figure(
                        "Closed with acceptance", f"{ledger.closed_accepted:,}", "in the period"
                    ),
                )
            ),
        ),
    )


def _work(report: Report, labels: list[str]) -> Section:
    return Section(
        "What the rules did",
        (
            Chart(
                stacked_bar_chart(
                    "Messages sent per step, per rule",
                    labels,
                    _few_rules(report.series.messages),
                    y_label="messages",
                )
            ),
            Chart(
                stacked_bar_chart(
                    "Staff tasks opened per step, per rule",
                    labels,
                    _few_rules(report.series.tasks),
                    y_label="tasks",
                )
            ),
        ),
    )


def _treated_vs_control(report: Report) -> Section:
    settings = report.measures
    measures = {
        "retention": lambda g: g.retention.value,
        "churn": lambda g: g.churn.value,
        "win-back": lambda g: g.winback.value,
    }
    series = {
        name: [get(group) for get in measures.values()]
        for name, group in (("treated", report.treated), ("control", report.control))
    }
    return Section(
        "Treated vs control",
        (
            Chart(
                bar_chart(
                    "Treated vs control customers",
                    list(measures),
                    series,
                    y_label="share of customers",
                    percent=True,
                ),
                f"The control group ({settings.control.percent:g}% of customers) gets no "
                "marketing rules.",
            ),
            Table(COMPARISON_HEADERS, tuple(comparison_rows(report))),
            Paragraph(return_line(report) + "."),
        ),
    )


def _groups(title: str, groups: Mapping[str, GroupMeasures], currency: str) -> Section:
    headers = (title.split()[-1], *GROUP_HEADERS)
    return Section(
        title,
        (
            Table(
                headers,
                tuple(group_rows(groups)),
                f"Revenue, spend and lifetime value in {currency}.",
            ),
        ),
    )


def report_html(report: Report) -> str:
    """The whole page."""
    settings = report.measures
    labels = step_labels(report)
    definitions = [
        text.format(
            active=f"{settings.active_window.days} days",
            winback=f"{settings.winback_window.days} days",
            years=settings.clv_horizon_years,
            control=f"{settings.control.percent:g}",
        )
        for text in DEFINITIONS
    ]
    sections: Sequence[Section] = (
        _summary(report),
        _retention(report, labels, settings),
        _satisfaction(report, labels),
        _feedback(report, settings),
        _work(report, labels),
        _treated_vs_control(report),
        _groups("By tier", report.by_tier, report.currency),
        _groups("By segment", report.by_segment, report.currency),
        _groups("By lifecycle stage", report.by_stage, report.currency),
        Section("How each measure is defined", tuple(Paragraph(text) for text in definitions)),
    )
    first, last = report.start.date().isoformat(), report.end.date().isoformat()
    return render_page(
        f"Relationship report {first} to {last}",
        f"Rules revision {report.revision[:12]} · times in {report.timezone} · "
        f"amounts in {report.currency}",
        sections,
        footer="Generated by Rapport. Counts and rates only: no names, addresses or phone numbers.",
    )
