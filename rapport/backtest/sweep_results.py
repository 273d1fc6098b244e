"""A sweep's figures per value — one JSON document (`--json`), the terminal table and the
HTML page (`rapport.report.sweep_page`) read the same one.

Per value: the swept rule's firings; for a churn signal its flags, precision, recall,
and its precision against the eligible population (`eligible_share`, `fair_lift`) and
against the current customers it did not flag (`unflagged_share`, `lift`), defined in
`outcomes.py`; and the work it causes per week: messages it sent and tasks it opened.
With every rule replayed (`replayed: "all rules"`), the week's messages and tasks of
all rules too, which show knock-on effects such as the frequency cap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from rapport.backtest.results import Summary, lift_over
from rapport.backtest.sweep import Sweep, Target
from rapport.backtest.tables import percent, ratio
from rapport.services.staff_language import _

CHURN_FIGURES = (
    "flagged",
    "precision",
    "recall",
    "eligible",
    "eligible_share",
    "fair_lift",
    "unflagged_share",
    "lift",
)


def sweep_document(
    sweep: Sweep, target: Target, directory: Path, revision: str, summaries: list[Summary]
) -> dict[str, Any]:
    """The figures of every value; `summaries` are the variants' (`results.summarize`)."""
    first = summaries[0]
    weeks = max(len(first["weeks"]), 1)
    rule_id = target.rule.id
    return {
        "sweep": {
            "rule": rule_id,
            "fact": target.comparison.subject,
            "operator": target.comparison.op,
            "condition": target.condition,
            "position": str(target.comparison.position),
            "current": target.current,
            "values": list(sweep.values),
            "eligible": target.eligible,
            "replayed": "the rule alone" if target.isolated else "all rules",
        },
        "rules": {"directory": str(directory), "revision": revision},
        "window": first["window"],
        "customers": first["customers"],
        "events": first["events"],
        "weeks": len(first["weeks"]),
        "results": [
            _figures(value, value == target.current, summary, rule_id, weeks, target.isolated)
            for value, summary in zip(sweep.values, _eligible(summaries, rule_id), strict=True)
        ],
    }


def _eligible(summaries: list[Summary], rule_id: str) -> list[Summary]:
    """A rule replayed alone has the same eligible population at every value, so only the
    first variant counts it (`runner.Plan.replayed`): the others take its figures."""
    counted = summaries[0]["churn"].get(rule_id)
    if counted is None:
        return summaries
    for summary in summaries[1:]:
        churn = summary["churn"][rule_id]
        if churn["eligible"] == 0 and counted["eligible"]:
            churn["eligible"], churn["eligible_share"] = (
                counted["eligible"],
                counted["eligible_share"],
            )
            churn["fair_lift"] = lift_over(churn["precision"], churn["eligible_share"])
    return summaries


def _figures(
    value: float, current: bool, summary: Summary, rule_id: str, weeks: int, alone: bool
) -> dict[str, Any]:
    firing = summary["firings"].get(rule_id, {})
    churn = summary["churn"].get(rule_id)
    sent = summary["messages"]["per_rule"].get(rule_id, {}).get("sent", 0)
    tasks = firing.get("tasks", 0)
    every_task = sum(owner["opened"] for owner in summary["tasks"].values())
    return {
        "value": value,
        "current": current,
        "firings": firing.get("total", 0),
        **{figure: churn[figure] if churn else None for figure in CHURN_FIGURES},
        "messages_sent": sent,
        "messages_per_week": sent / weeks,
        "tasks": tasks,
        "tasks_per_week": tasks / weeks,
        "all_rules_messages_per_week": None if alone else summary["messages"]["sent"] / weeks,
        "all_rules_tasks_per_week": None if alone else every_task / weeks,
    }


def sweep_headline(document: dict[str, Any]) -> str:
    sweep, window = document["sweep"], document["window"]
    return _(
        "Sweep of {rule}: {condition} ({position}) at {count} values, from {first} to {last}, "
        "{customers} customers; eligible: {eligible}; replayed: {replayed}."
    ).format(
        rule=sweep["rule"],
        condition=sweep["condition"],
        position=sweep["position"],
        count=len(sweep["values"]),
        first=window["from"],
        last=window["to"],
        customers=f"{document['customers']:,}",
        eligible=sweep["eligible"] or "–",
        replayed=sweep["replayed"],
    )


def sweep_columns() -> tuple[str, ...]:
    """The headings of a sweep's table of every value, in the staff language: the
    terminal's and the page's (`rapport.report.sweep_page`) are the same table."""
    return (
        _("value"),
        _("flags"),
        _("precision"),
        _("recall"),
        _("eligible share"),
        _("fair lift"),
        _("unflagged share"),
        _("lift"),
        _("messages/week"),
        _("tasks/week"),
    )


def sweep_table(document: dict[str, Any]) -> Table:
    sweep = document["sweep"]
    table = Table(
        title=_("{rule}: {fact} swept (left = no purchase in the {horizon} after the flag)").format(
            rule=sweep["rule"], fact=sweep["fact"], horizon=document["window"]["horizon"]
        ),
        title_justify="left",
    )
    for index, column in enumerate(sweep_columns()):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in document["results"]:
        flags = row["flagged"] if row["flagged"] is not None else row["firings"]
        table.add_row(
            f"{row['value']:g}" + (" *" if row["current"] else ""),
            f"{flags:,}",
            percent(row["precision"]),
            percent(row["recall"]),
            percent(row["eligible_share"]),
            ratio(row["fair_lift"]),
            percent(row["unflagged_share"]),
            ratio(row["lift"]),
            f"{row['messages_per_week']:,.1f}",
            f"{row['tasks_per_week']:,.1f}",
        )
    table.caption = _("* the value in the rules now")
    return table
