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
    comparison_headers,
    comparison_rows,
    group_headers,
    group_rows,
    headline,
    number,
    percent,
    period_days,
    ratio,
    return_line,
    sla_headers,
    sla_rows,
)
from rapport.services.staff_language import (
    N_,
    _,
    current_locale,
    format_day,
    format_number,
    format_short_day,
)

# SATISFACTION_WEIGHTS' dimensions as the satisfaction table names them (msgids).
DIMENSION_NAMES = {
    "product_fit": N_("product fit"),
    "response_speed": N_("response speed"),
    "resolution_quality": N_("resolution quality"),
    "price": N_("price"),
    "brand": N_("brand"),
}
MOST_RULES = 8  # rules drawn one by one in the work charts; the rest are summed as "other"
DEFINITIONS = (
    N_(
        "Active: bought something within the active window ({active}) before a moment. "
        "Retention: of the customers active when the period starts, the share still active "
        "when it ends; churn is the rest."
    ),
    N_(
        "Win-back rate: of the customers whose win-back window ({winback} after a win-back "
        "rule fired for them, held out or not) ended in the period, the share who bought "
        "within it."
    ),
    N_(
        "NPS: % promoters (9-10) minus % detractors (0-6) among answers to the recommend "
        "question. Satisfaction index: each dimension's mean score, weighted product fit 40, "
        "response speed 25, resolution quality 20, price 15, brand 10. Those weights sum to "
        "110, so they are normalised (divided by the sum of the weights of the dimensions "
        "answered) and the index is shown on a 0-100 scale."
    ),
    N_(
        "Feedback SLA: an item counts once its target has passed or it has been answered "
        "(resolved); items still inside their target are pending."
    ),
    N_(
        "Lifetime value: net purchases to date per customer who bought. Projected: plus the "
        "last 12 months' net spend x (r + r^2 + ... + r^{years}), r being the group's share of "
        "customers active a year before the end who are still active at it (everyone's share "
        "for a group with nobody active then, such as new customers)."
    ),
    N_(
        "Return on relationship spend: net revenue from contacted customers after their first "
        "contact in the period, divided by the cost of the messages sent and tasks opened "
        "(costs per channel and task kind in rules/measures.yaml). Above 3 : 1 is good; 1 : 1 "
        "is the average."
    ),
    N_(
        "Control group: {control}% of customers, chosen by a stable hash of their id, get no "
        "marketing rules (service rules such as feedback replies still apply). Treated minus "
        "control shows the rules' uplift."
    ),
)


def step_labels(report: Report) -> list[str]:
    """Each step's first day, short (`Jul 1` / `7月1日`): the charts' x axis."""
    return [format_short_day(begin.date()) for begin, _end in report.steps]


def _few_rules(per_rule: Mapping[str, list[float]]) -> dict[str, list[float]]:
    """The busiest rules by name, the rest summed as `other rules`."""
    names = list(per_rule)
    shown = {name: per_rule[name] for name in names[:MOST_RULES]}
    rest = names[MOST_RULES:]
    if rest:
        shown[_("other rules")] = [
            sum(per_rule[n][i] for n in rest) for i in range(len(per_rule[rest[0]]))
        ]
    return shown


def _summary(report: Report) -> Section:
    treated, control, overall = report.treated, report.control, report.overall
    gain = incremental_return(treated, control)

    def versus(get: Callable[[GroupMeasures], str]) -> str:
        return _("control {value}").format(value=get(control))

    ledger = overall.ledger
    return Section(
        _("Summary"),
        (
            Paragraph(headline(report) + _(".")),
            Figures(
                (
                    Figure(
                        _("Customers"),
                        format_number(overall.customers),
                        _("{count} held out").format(count=format_number(control.customers)),
                    ),
                    Figure(
                        _("Retention (treated)"),
                        percent(treated.retention, counts=False),
                        versus(lambda g: percent(g.retention, counts=False)),
                    ),
                    Figure(
                        _("Churn (treated)"),
                        percent(treated.churn, counts=False),
                        versus(lambda g: percent(g.churn, counts=False)),
                    ),
                    Figure(
                        _("Win-back rate (treated)"),
                        percent(treated.winback, counts=False),
                        versus(lambda g: percent(g.winback, counts=False)),
                    ),
                    Figure(
                        _("NPS"),
                        number(overall.nps, sign=True),
                        _("{count} answers").format(count=format_number(overall.nps_answers)),
                    ),
                    Figure(
                        _("Satisfaction (0-100)"),
                        number(overall.satisfaction, 1),
                        _("weights normalised"),
                    ),
                    Figure(
                        _("Return on spend (incremental)"),
                        ratio(gain.ratio if gain else None),
                        _("spend {spend} {currency}; playbook: 3:1 good").format(
                            spend=number(treated.spend), currency=report.currency
                        ),
                    ),
                    Figure(
                        _("Remediation ledger"),
                        _("{count} open").format(count=format_number(ledger.open + ledger.overdue)),
                        _("{overdue} overdue, {closed} closed with acceptance").format(
                            overdue=format_number(ledger.overdue),
                            closed=format_number(ledger.closed_accepted),
                        ),
                    ),
                )
            ),
        ),
    )


def _retention(report: Report, labels: list[str], settings: Measures) -> Section:
    start = format_day(report.start.date())
    return Section(
        _("Retention and churn"),
        (
            Chart(
                line_chart(
                    _("Customers active on {day} who are still active").format(day=start),
                    labels,
                    _groups_named(report.series.retention),
                    y_label=_("still active"),
                    percent=True,
                ),
                _("Treated vs control, at the end of each step (steps start on the date shown)."),
            ),
            Chart(
                line_chart(
                    _("Churn within each step"),
                    labels,
                    _groups_named(report.series.churn),
                    y_label=_("churned in the step"),
                    percent=True,
                ),
                _(
                    "Of the customers active when a step starts, the share no longer active "
                    "(no purchase in the last {days} days) when it ends."
                ).format(days=settings.active_window.days),
            ),
        ),
    )


def _satisfaction(report: Report, labels: list[str]) -> Section:
    total = sum(SATISFACTION_WEIGHTS.values())
    dimensions = report.overall.dimensions
    rows = tuple(
        (
            _(DIMENSION_NAMES[name]),
            str(weight),
            f"{weight / total:.3f}",
            number(dimensions[name], 2),
        )
        for name, weight in SATISFACTION_WEIGHTS.items()
    )
    return Section(
        _("NPS and satisfaction"),
        (
            Chart(
                line_chart(
                    _("NPS per step"),
                    labels,
                    {_("NPS"): report.series.nps},
                    y_label=_("NPS"),
                    y_min=-100,
                    y_max=100,
                ),
                _("% promoters (9-10) minus % detractors (0-6); empty steps had no answers."),
            ),
            Chart(
                line_chart(
                    _("Satisfaction index per step"),
                    labels,
                    {_("satisfaction index"): report.series.satisfaction},
                    y_label=_("index (0-100)"),
                    y_max=100,
                ),
                _(
                    "Weighted dimension scores; the playbook's weights sum to 110 and are "
                    "normalised."
                ),
            ),
            Table(
                (
                    _("dimension"),
                    _("playbook weight"),
                    _("normalised weight"),
                    _("mean score (0-10)"),
                ),
                rows,
                _("Satisfaction index {index} of 100.").format(
                    index=number(report.overall.satisfaction, 1)
                ),
            ),
        ),
    )


def _feedback(report: Report, settings: Measures) -> Section:
    sla = report.overall.sla
    levels = list(sla)
    rates = {
        _("first response within SLA"): [sla[level].response.value for level in levels],
        _("resolved within target"): [sla[level].resolution.value for level in levels],
    }
    ledger = report.overall.ledger
    return Section(
        _("Feedback SLA and the remediation ledger"),
        (
            Chart(
                bar_chart(
                    _("Feedback handled within target, per level"),
                    levels,
                    rates,
                    y_label=_("share of items"),
                    percent=True,
                ),
                _(
                    "Targets per level, and the business hours they count in, are in "
                    "rules/policy.yaml (feedback_sla, business_hours)."
                ),
            ),
            Table(sla_headers(), tuple(sla_rows(report.overall.sla, report.service_levels))),
            Figures(
                (
                    Figure(_("Ledger items open"), format_number(ledger.open), _("not yet due")),
                    Figure(
                        _("Ledger items overdue"),
                        format_number(ledger.overdue),
                        _("open past the deadline"),
                    ),
                    Figure(
                        _("Closed with acceptance"),
                        format_number(ledger.closed_accepted),
                        _("in the period"),
                    ),
                )
            ),
        ),
    )


def _work(report: Report, labels: list[str]) -> Section:
    return Section(
        _("What the rules did"),
        (
            Chart(
                stacked_bar_chart(
                    _("Messages sent per step, per rule"),
                    labels,
                    _few_rules(report.series.messages),
                    y_label=_("messages"),
                )
            ),
            Chart(
                stacked_bar_chart(
                    _("Staff tasks opened per step, per rule"),
                    labels,
                    _few_rules(report.series.tasks),
                    y_label=_("tasks"),
                )
            ),
        ),
    )


def _treated_vs_control(report: Report) -> Section:
    settings = report.measures
    measures = {
        _("retention"): lambda g: g.retention.value,
        _("churn"): lambda g: g.churn.value,
        _("win-back"): lambda g: g.winback.value,
    }
    series = {
        _(name): [get(group) for get in measures.values()]
        for name, group in (("treated", report.treated), ("control", report.control))
    }
    return Section(
        _("Treated vs control"),
        (
            Chart(
                bar_chart(
                    _("Treated vs control customers"),
                    list(measures),
                    series,
                    y_label=_("share of customers"),
                    percent=True,
                ),
                _("The control group ({percent}% of customers) gets no marketing rules.").format(
                    percent=f"{settings.control.percent:g}"
                ),
            ),
            Table(comparison_headers(), tuple(comparison_rows(report))),
            Paragraph(return_line(report) + _(".")),
        ),
    )


def _groups(title: str, column: str, groups: Mapping[str, GroupMeasures], currency: str) -> Section:
    headers = (column, *group_headers())
    return Section(
        title,
        (
            Table(
                headers,
                tuple(group_rows(groups)),
                _("Revenue, spend and lifetime value in {currency}.").format(currency=currency),
            ),
        ),
    )


def report_html(report: Report) -> str:
    """The whole page."""
    settings = report.measures
    labels = step_labels(report)
    definitions = [
        _(text).format(
            active=_("{days} days").format(days=settings.active_window.days),
            winback=_("{days} days").format(days=settings.winback_window.days),
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
        _groups(_("By tier"), _("tier"), report.by_tier, report.currency),
        _groups(_("By segment"), _("segment"), report.by_segment, report.currency),
        _groups(_("By lifecycle stage"), _("stage"), report.by_stage, report.currency),
        Section(_("How each measure is defined"), tuple(Paragraph(text) for text in definitions)),
    )
    first, last = period_days(report)
    return render_page(
        _("Relationship report {first} to {last}").format(first=first, last=last),
        _("Rules revision {revision} · times in {zone} · amounts in {currency}").format(
            revision=report.revision[:12], zone=report.timezone, currency=report.currency
        ),
        sections,
        footer=_(
            "Generated by Rapport. Counts and rates only: no names, addresses or phone numbers."
        ),
        lang=current_locale(),
        contents=_("Contents"),
    )


def _groups_named(series: Mapping[str, list[float | None]]) -> dict[str, list[float | None]]:
    """Chart series keyed `treated` / `control` (and the like), named in the staff language."""
    return {_(name): values for name, values in series.items()}
