"""A backtest's figures as one JSON-able summary per revision, and the comparison of two.

The terminal tables (`rapport/cli/backtest.py`) and the `--json` file are built from
the same summary, so what a reviewer reads and what a script compares across revisions
cannot disagree. Shares are fractions (0.25 is 25 %), None when there is nothing to
divide by.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.durations import format_duration
from engine.facts import FEEDBACK_LEVELS
from engine.model import RuleSet
from rapport.backtest.revision import CHURN_TAG
from rapport.backtest.tally import GROUP_DIMENSIONS, Tally
from rapport.backtest.timeline import Window

Summary = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One revision's replay: where its rules came from and what it counted."""

    directory: Path
    ruleset: RuleSet
    tally: Tally


def share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def summarize(run: Run, window: Window, history_end: datetime | None) -> Summary:
    """Everything item 2 of the backtest asks for, per week where it is weekly."""
    tally = run.tally
    return {
        "rules": {"directory": str(run.directory), "revision": run.ruleset.revision},
        "window": {
            "from": window.first.isoformat(),
            "to": window.last.isoformat(),
            "at": window.at.strftime("%H:%M"),
            "timezone": window.timezone,
            "step": format_duration(window.step),
            "steps": window.counted_steps,
            "warmup": format_duration(window.warmup) if window.warmup else "0d",
            "horizon": format_duration(window.horizon),
            "history_end": history_end.astimezone(UTC).isoformat() if history_end else None,
        },
        "customers": tally.customers,
        "events": tally.events,
        "weeks": window.week_labels,
        "firings": _firings(tally),
        "messages": _messages(tally, window),
        "tasks": _tasks(tally),
        "feedback": _feedback(tally, window),
        "churn": _churn(tally, run.ruleset),
        "groups": _groups(tally),
    }


def _firings(tally: Tally) -> dict[str, Any]:
    return {
        rule_id: {
            "total": sum(weeks),
            "held_out": tally.held_out[rule_id],
            "tasks": tally.rule_tasks[rule_id],
            "per_week": weeks,
        }
        for rule_id, weeks in sorted(tally.firings.items())
    }


def _outcomes(counts: Counter[str]) -> dict[str, Any]:
    suppressed = {
        key.removeprefix("suppressed:"): n
        for key, n in sorted(counts.items())
        if key.startswith("suppressed:")
    }
    return {
        "planned": counts["planned"],
        "sent": counts["sent"],
        "deferred": counts["deferred"],
        "suppressed": suppressed,
    }


def _messages(tally: Tally, window: Window) -> dict[str, Any]:
    per_rule: dict[str, Counter[str]] = {}
    for (rule_id, outcome), count in tally.messages.items():
        per_rule.setdefault(rule_id, Counter())[outcome] += count
    total = sum(per_rule.values(), Counter())
    labels = window.week_labels
    weeks = [
        _week_distribution(label, tally.per_customer[index], tally.population[index])
        for index, label in enumerate(labels)
    ]
    pooled = sum(tally.per_customer, Counter())
    count, customer, week = tally.busiest
    return {
        **_outcomes(total),
        "channels": dict(sorted(tally.channels.items())),
        "per_rule": {rule_id: _outcomes(counts) for rule_id, counts in sorted(per_rule.items())},
        "per_customer_week": weeks,
        "all_weeks": _week_distribution(None, pooled, sum(tally.population)),
        "busiest": {"customer_id": customer, "week": labels[week], "messages": count}
        if count
        else None,
    }


def _week_distribution(label: str | None, sent: Counter[int], population: int) -> dict[str, Any]:
    """Messages per customer in one week (or pooled over all weeks): how many customers
    got 0, 1, 2, … messages, the mean, the 99th percentile and the maximum."""
    histogram = Counter({0: population - sum(sent.values())}) + sent
    messages = sum(count * customers for count, customers in sent.items())
    found = {
        "customers": population,
        "messages": messages,
        "mean": share(messages, population),
        "p99": _percentile(histogram, 0.99),
        "max": max(sent, default=0),
        "histogram": {str(count): histogram[count] for count in sorted(histogram)},
    }
    return found if label is None else {"week": label, **found}


def _percentile(histogram: Counter[int], fraction: float) -> int:
    total, seen = sum(histogram.values()), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= fraction * total:
            return value
    return 0


def _tasks(tally: Tally) -> dict[str, Any]:
    owners = sorted(set(tally.tasks) | set(tally.overdue))
    empty = [0] * tally.weeks
    return {
        owner: {
            "opened": sum(tally.tasks.get(owner, empty)),
            "per_week": tally.tasks.get(owner, empty),
            "peak_week": max(tally.tasks.get(owner, empty), default=0),
            "overdue": sum(tally.overdue.get(owner, empty)),
            "overdue_per_week": tally.overdue.get(owner, empty),
        }
        for owner in owners
    }


def _feedback(tally: Tally, window: Window) -> dict[str, Any]:
    """Feedback items received in the period: how many got an owner (a task) from the
    rules, and how many breached their SLA (a task for them went overdue)."""
    levels = sorted({level for _, level, _ in tally.feedback}, key=_level_order)
    figures = ("items", "owned", "breached")

    def counts(weeks: range, level_list: list[str]) -> dict[str, Any]:
        found = {
            what: sum(tally.feedback[(w, level, what)] for w in weeks for level in level_list)
            for what in figures
        }
        return {**found, "breached_share": share(found["breached"], found["items"])}

    every = range(tally.weeks)
    return {
        **counts(every, levels),
        "per_level": {level: counts(every, [level]) for level in levels},
        "per_week": [
            {"week": label, **counts(range(index, index + 1), levels)}
            for index, label in enumerate(window.week_labels)
        ],
    }


def _level_order(level: str) -> tuple[int, str]:
    return (FEEDBACK_LEVELS.index(level) if level in FEEDBACK_LEVELS else 99, level)


def _churn(tally: Tally, ruleset: RuleSet) -> dict[str, Any]:
    """Per churn-signal rule; the definitions are in `rapport/backtest/outcomes.py`."""
    base = tally.outcome_base
    found = {}
    signals = {rule.id for rule in ruleset.enabled if CHURN_TAG in rule.tags}
    for rule_id in sorted(signals | set(tally.churn)):
        counts = tally.churn.get(rule_id, Counter())
        unflagged = base["current"] - counts["flagged_at_step"]
        unflagged_left = base["current_left"] - counts["flagged_at_step_left"]
        precision = share(counts["flagged_left"], counts["flagged"])
        unflagged_share = share(unflagged_left, unflagged)
        eligible_share = share(counts["eligible_left"], counts["eligible"])
        found[rule_id] = {
            "flagged": counts["flagged"],
            "flagged_left": counts["flagged_left"],
            "precision": precision,
            "unflagged": unflagged,
            "unflagged_share": unflagged_share,
            "lift": lift_over(precision, unflagged_share),
            "eligible": counts["eligible"],
            "eligible_share": eligible_share,
            "fair_lift": lift_over(precision, eligible_share),
            "recall": share(counts["customers_caught"], base["customers_left"]),
            "customers_left": base["customers_left"],
            "customers_caught": counts["customers_caught"],
            "late": counts["late"],
            "pending": counts["pending"],
        }
    return found


def lift_over(precision: float | None, base: float | None) -> float | None:
    """Precision over a base rate: how many times likelier a flagged customer left."""
    return None if precision is None else share(precision, base or 0.0)


def _groups(tally: Tally) -> dict[str, Any]:
    """Firings (per rule), messages sent and tasks opened per tier, lifecycle stage and
    segment, the customer's at the moment of the firing."""
    found: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in GROUP_DIMENSIONS}
    for (what, dimension, value, rule_id), count in sorted(tally.groups.items()):
        entry = found[dimension].setdefault(value, {"firings": {}, "messages": 0, "tasks": 0})
        if what == "firings":
            entry["firings"][rule_id] = count
        else:
            entry[what] += count
    return found


def compare(base: Summary, candidate: Summary) -> Summary:
    """The difference per rule, per customer group and per churn signal: for each figure
    its `base` (`--rules`), `candidate` (`--compare`) and `change` (candidate − base)."""

    def rule_figures(summary: Summary, rule_id: str) -> dict[str, int]:
        firing = summary["firings"].get(rule_id, {})
        sent = summary["messages"]["per_rule"].get(rule_id, {}).get("sent", 0)
        return {"firings": firing.get("total", 0), "sent": sent, "tasks": firing.get("tasks", 0)}

    def group_figures(summary: Summary, dimension: str, value: str) -> dict[str, int]:
        entry = summary["groups"][dimension].get(value, {"firings": {}, "messages": 0, "tasks": 0})
        firings = sum(entry["firings"].values())
        return {"firings": firings, "sent": entry["messages"], "tasks": entry["tasks"]}

    def totals(summary: Summary) -> dict[str, int]:
        return {
            "messages_sent": summary["messages"]["sent"],
            "busiest_week_max": summary["messages"]["all_weeks"]["max"],
            "feedback_breached": summary["feedback"]["breached"],
        }

    rules = sorted(set(base["firings"]) | set(candidate["firings"]))
    groups = {
        dimension: {
            value: _change(*(group_figures(s, dimension, value) for s in (base, candidate)))
            for value in sorted(
                set(base["groups"][dimension]) | set(candidate["groups"][dimension])
            )
        }
        for dimension in GROUP_DIMENSIONS
    }
    churn = {
        rule_id: {
            figure: {
                "base": base["churn"].get(rule_id, {}).get(figure),
                "candidate": candidate["churn"].get(rule_id, {}).get(figure),
            }
            for figure in ("flagged", "precision", "eligible_share", "unflagged_share", "recall")
        }
        for rule_id in sorted(set(base["churn"]) | set(candidate["churn"]))
    }
    difference = {
        "totals": _change(totals(base), totals(candidate)),
        "rules": {r: _change(rule_figures(base, r), rule_figures(candidate, r)) for r in rules},
        "groups": groups,
        "churn": churn,
    }
    return {"base": base, "candidate": candidate, "difference": difference}


def _change(base: dict[str, int], candidate: dict[str, int]) -> dict[str, dict[str, int]]:
    return {
        key: {"base": base[key], "candidate": candidate[key], "change": candidate[key] - base[key]}
        for key in base
    }
