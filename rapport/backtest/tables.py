"""The backtest in the terminal: rich tables built from the summaries of `results.py`."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from rapport.backtest.results import Summary

WIDE = 3  # a week with this many messages for one customer is worth a look


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def headline(summary: Summary) -> str:
    window = summary["window"]
    warmup = "no warm-up" if window["warmup"] == "0d" else f"after a {window['warmup']} warm-up"
    return (
        f"Backtest of {summary['rules']['directory']} (revision "
        f"{summary['rules']['revision'][:12]}) from {window['from']} to {window['to']}: "
        f"{window['steps']} steps of {window['step']} at {window['at']} {window['timezone']} "
        f"({warmup}), {summary['customers']:,} customers, "
        f"{summary['events']:,} events; nothing was sent or written."
    )


def firing_table(summary: Summary) -> Table:
    weeks = summary["weeks"]
    table = _table("Firings per rule", "rule", "firings", "held out", "per week", "peak week")
    for rule_id, figures in sorted(summary["firings"].items(), key=lambda kv: -kv[1]["total"]):
        per_week = figures["per_week"]
        peak = max(range(len(per_week)), key=per_week.__getitem__) if per_week else 0
        table.add_row(
            rule_id,
            f"{figures['total']:,}",
            f"{figures['held_out']:,}",
            f"{figures['total'] / max(len(weeks), 1):,.1f}",
            f"{per_week[peak]:,} ({weeks[peak]})" if per_week else "–",
        )
    return table


def message_table(summary: Summary) -> Table:
    messages = summary["messages"]
    codes = sorted({code for m in messages["per_rule"].values() for code in m["suppressed"]})
    table = _table(
        "Messages per rule (guards applied as the dispatcher would)",
        "rule",
        "planned",
        "sent",
        "deferred",
        *(f"suppressed: {code}" for code in codes),
    )
    rows = sorted(messages["per_rule"].items(), key=lambda kv: -kv[1]["planned"])
    for rule_id, m in [*rows, ("all rules", messages)]:
        table.add_row(
            rule_id,
            f"{m['planned']:,}",
            f"{m['sent']:,}",
            f"{m['deferred']:,}",
            *(f"{m['suppressed'].get(code, 0):,}" for code in codes),
        )
    return table


def contact_table(summary: Summary) -> Table:
    """Messages per customer per week: where over-contacting would show."""
    table = _table(
        "Messages per customer per week",
        "week",
        "messages",
        "customers messaged",
        "mean",
        "p99",
        "max",
        f"customers with ≥ {WIDE}",
    )
    messages = summary["messages"]
    for week in [*messages["per_customer_week"], {"week": "all weeks", **messages["all_weeks"]}]:
        histogram = {int(k): v for k, v in week["histogram"].items()}
        table.add_row(
            week["week"],
            f"{week['messages']:,}",
            f"{week['customers'] - histogram.get(0, 0):,}",
            "–" if week["mean"] is None else f"{week['mean']:.2f}",
            str(week["p99"]),
            str(week["max"]),
            f"{sum(v for k, v in histogram.items() if k >= WIDE):,}",
        )
    return table


def task_table(summary: Summary) -> Table:
    weeks = max(len(summary["weeks"]), 1)
    table = _table("Staff tasks per owner", "owner", "opened", "per week", "peak week", "overdue")
    for owner, t in sorted(summary["tasks"].items(), key=lambda kv: -kv[1]["opened"]):
        table.add_row(
            owner,
            f"{t['opened']:,}",
            f"{t['opened'] / weeks:,.1f}",
            f"{t['peak_week']:,}",
            f"{t['overdue']:,}",
        )
    return table


def feedback_table(summary: Summary) -> Table:
    table = _table(
        "Feedback items and their SLA (a task for the item went overdue)",
        "level",
        "items",
        "no owner",
        "breached",
        "breached share",
    )
    feedback = summary["feedback"]
    for level, f in [*feedback["per_level"].items(), ("all levels", feedback)]:
        table.add_row(
            level,
            f"{f['items']:,}",
            f"{f['items'] - f['owned']:,}",
            f"{f['breached']:,}",
            percent(f["breached_share"]),
        )
    return table


def churn_table(summary: Summary) -> Table:
    horizon = summary["window"]["horizon"]
    table = _table(
        f"Churn signals: left = no purchase in the {horizon} after the flag",
        "rule",
        "flagged",
        "precision",
        "eligible share",
        "fair lift",
        "unflagged share",
        "lift",
        "recall",
        "already gone",
        "too recent",
    )
    for rule_id, c in summary["churn"].items():
        table.add_row(
            rule_id,
            f"{c['flagged']:,}",
            percent(c["precision"]),
            percent(c["eligible_share"]),
            ratio(c["fair_lift"]),
            percent(c["unflagged_share"]),
            ratio(c["lift"]),
            percent(c["recall"]),
            f"{c['late']:,}",
            f"{c['pending']:,}",
        )
    return table


def summary_tables(summary: Summary) -> list[Table]:
    return [
        firing_table(summary),
        message_table(summary),
        contact_table(summary),
        task_table(summary),
        feedback_table(summary),
        churn_table(summary),
    ]


def _change(figure: dict[str, int]) -> str:
    """`1,204 → 1,180 (-24)`, or just the number when nothing changed."""
    if figure["change"] == 0:
        return f"{figure['base']:,}"
    return f"{figure['base']:,} → {figure['candidate']:,} ({figure['change']:+,})"


def _changes(title: str, first: str, rows: list[tuple[str, dict[str, Any]]]) -> Table:
    table = _table(title, first, "firings", "messages sent", "tasks opened")
    for name, figures in rows:
        table.add_row(name, *(_change(figures[what]) for what in ("firings", "sent", "tasks")))
    return table


def comparison_tables(comparison: dict[str, Any]) -> list[Table]:
    """Per rule, per customer group and per churn signal: A (`--rules`) → B (`--compare`)."""
    difference = comparison["difference"]
    by_change = sorted(
        difference["rules"].items(),
        key=lambda kv: (-abs(kv[1]["firings"]["change"]) - abs(kv[1]["sent"]["change"]), kv[0]),
    )
    groups = [
        (f"{dimension} = {value}", figures)
        for dimension, values in difference["groups"].items()
        for value, figures in values.items()
    ]
    churn = _table(
        "Churn signals, A → B",
        "rule",
        "flagged",
        "precision",
        "eligible share",
        "unflagged share",
        "recall",
    )
    for rule_id, figures in difference["churn"].items():
        flagged = " → ".join("–" if v is None else f"{v:,}" for v in figures["flagged"].values())
        shares = (
            " → ".join(percent(v) for v in figures[name].values())
            for name in ("precision", "eligible_share", "unflagged_share", "recall")
        )
        churn.add_row(rule_id, flagged, *shares)
    return [
        _changes("Per rule, A (--rules) → B (--compare)", "rule", by_change),
        _changes("Per customer group, at the moment of the firing, A → B", "group", groups),
        churn,
    ]
