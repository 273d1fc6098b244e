"""The report as plain data, for `rapport report --json`: every measure of every group
with the figures behind it, so a script reads what the page shows without scraping it.

A rate is `{part, whole, value}` (value null when the whole is 0); the period names
its last day, included, as the command's `--to` does.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import timedelta
from typing import Any

from rapport.report.build import Report
from rapport.report.comparison import (
    CONFIDENCE,
    MIN_SAMPLE,
    Difference,
    incremental_return,
    mean_difference,
    nps_difference,
    rate_difference,
)
from rapport.report.measures import GroupMeasures, Rate


def report_data(report: Report) -> dict[str, Any]:
    return {
        "from": report.start.date().isoformat(),
        "to": (report.end - timedelta(days=1)).date().isoformat(),
        "timezone": report.timezone,
        "revision": report.revision,
        "currency": report.currency,
        "overall": group_data(report.overall),
        "previous_period": group_data(report.previous),
        "treated": group_data(report.treated),
        "control": group_data(report.control),
        "treated_minus_control": {
            "confidence": CONFIDENCE,
            "min_sample": MIN_SAMPLE,
            **{name: _plain(found) for name, found in differences(report).items()},
        },
        "return_on_spend": _plain(incremental_return(report.treated, report.control)),
        "by_tier": {name: group_data(g) for name, g in report.by_tier.items()},
        "by_segment": {name: group_data(g) for name, g in report.by_segment.items()},
        "by_stage": {name: group_data(g) for name, g in report.by_stage.items()},
    }


def differences(report: Report) -> dict[str, Difference | None]:
    """Treated − control for the measures an interval suits (rates as shares 0-1)."""
    treated, control = report.treated, report.control
    return {
        "retention": rate_difference(treated.retention, control.retention),
        "churn": rate_difference(treated.churn, control.churn),
        "winback": rate_difference(treated.winback, control.winback),
        "nps": nps_difference(treated, control),
        "revenue_per_customer": mean_difference(treated.revenue_moments, control.revenue_moments),
        "spend_per_customer": mean_difference(treated.spend_moments, control.spend_moments),
    }


def group_data(group: GroupMeasures) -> dict[str, Any]:
    data = _plain(group)
    data["churn"] = _plain(group.churn)
    data["contacted_revenue_per_spend"] = group.contacted_revenue_per_spend
    data["revenue_per_customer"] = group.revenue_per_customer
    data["spend_per_customer"] = group.spend_per_customer
    return data


def _plain(value: Any) -> Any:
    """Dataclasses as dicts, each rate with its value, all the way down."""
    if isinstance(value, Rate):
        return {"part": value.part, "whole": value.whole, "value": value.value}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
