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
from rapport.report.measures import GroupMeasures, Rate


def report_data(report: Report) -> dict[str, Any]:
    return {
        "from": report.start.date().isoformat(),
        "to": (report.end - timedelta(days=1)).date().isoformat(),
        "timezone": report.timezone,
        "revision": report.revision,
        "currency": report.currency,
        "overall": group_data(report.overall),
        "treated": group_data(report.treated),
        "control": group_data(report.control),
        "by_tier": {name: group_data(g) for name, g in report.by_tier.items()},
        "by_segment": {name: group_data(g) for name, g in report.by_segment.items()},
        "by_stage": {name: group_data(g) for name, g in report.by_stage.items()},
    }


def group_data(group: GroupMeasures) -> dict[str, Any]:
    data = _plain(group)
    data["churn"] = _plain(group.churn)
    data["return_on_spend"] = group.return_on_spend
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
