"""The relationship report: measures for a period, overall, per group, treated vs control,
and over time. `build_report` reads storage once; the terminal summary, the Prefect
artifact and the HTML page (`rapport/report/html.py`) are views of the same `Report`.

Only ids are read, and only counts and rates come out: no personal data.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from engine.facts import SEGMENTS, STAGES, TIERS
from engine.measure_settings import Measures
from engine.model import RuleSet
from engine.service_levels import ServiceLevels
from rapport.report.measures import (
    GroupMeasures,
    Rate,
    ReportData,
    active_at,
    dimension_means,
    measure,
    net_promoter_score,
    satisfaction_index,
    yearly_retention,
)
from storage import report_data as rows
from storage.report_data import Work

WEEK = timedelta(days=7)
BUILD_STEPS = 5  # customer groups, this period, the previous one, the groups, the series
LONG_PERIOD = 26 * WEEK  # longer periods are drawn in 4-week steps


@dataclass(frozen=True)
class Series:
    """Values per time step (`Report.steps`) for a chart."""

    retention: dict[str, list[float | None]]  # treated / control: still active since start
    churn: dict[str, list[float | None]]  # treated / control: churn within each step
    nps: list[float | None]
    satisfaction: list[float | None]
    messages: dict[str, list[float]]  # per rule: messages sent per step
    tasks: dict[str, list[float]]  # per rule: tasks opened per step


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    timezone: str
    revision: str
    currency: str
    measures: Measures  # what the report was measured with
    service_levels: ServiceLevels  # the feedback targets it measured against
    overall: GroupMeasures
    previous: GroupMeasures  # everyone, over the period of the same length just before
    treated: GroupMeasures
    control: GroupMeasures
    by_tier: dict[str, GroupMeasures]
    by_segment: dict[str, GroupMeasures]
    by_stage: dict[str, GroupMeasures]
    steps: list[tuple[datetime, datetime]]
    series: Series


def period(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """`[first 00:00, the day after last 00:00)` in `timezone`: both days included
    (local midnights, so a day with a daylight-saving change keeps its length)."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(), tzinfo=zone)
    return start, datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)


def time_steps(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Weeks from `start` (4-week steps past half a year); the last may be shorter."""
    size = 4 * WEEK if end - start > LONG_PERIOD else WEEK
    steps, moment = [], start
    while moment < end:
        steps.append((moment, min(moment + size, end)))
        moment += size
    return steps


def build_report(
    engine: Engine,
    ruleset: RuleSet,
    start: datetime,
    end: datetime,
    *,
    timezone: str,
    currency: str,
    advance: Callable[[float], None] = lambda steps: None,
) -> Report:
    """Reads what happened in `[start, end)` and measures it; groups (tier, segment,
    stage) are the customers' as of `start`. `advance` is told as each of the
    `BUILD_STEPS` is done (a progress bar)."""
    if end <= start:
        raise ValueError("the period ends after it starts")
    settings = ruleset.measures
    with engine.connect() as connection:
        profiles = rows.customer_groups(connection, start, ruleset.parameters)
        advance(1)
        data = _read(connection, ruleset, sorted(profiles), start, end)
        advance(1)
        before = _read(connection, ruleset, data.customers, start - (end - start), start)
        advance(1)
    cost = _costs(settings)

    def of(customers: Sequence[str]) -> GroupMeasures:
        return measure(data, customers, settings, cost)

    def split(position: int, names: Sequence[str]) -> dict[str, GroupMeasures]:
        return {name: of([c for c, p in profiles.items() if p[position] == name]) for name in names}

    control = [c for c in data.customers if settings.control.holds_out(c)]
    held = set(control)
    treated = [c for c in data.customers if c not in held]
    steps = time_steps(start, end)
    by_group = {
        "tier": split(0, TIERS),
        "segment": split(1, SEGMENTS),
        "stage": split(2, STAGES),
    }
    advance(1)
    series = _series(data, steps, {"treated": treated, "control": control})
    advance(1)
    return Report(
        start=start,
        end=end,
        timezone=timezone,
        revision=ruleset.revision,
        currency=currency,
        measures=settings,
        service_levels=ruleset.policy.service_levels,
        overall=of(data.customers),
        previous=measure(before, before.customers, settings, cost),
        treated=of(treated),
        control=of(control),
        by_tier=by_group["tier"],
        by_segment=by_group["segment"],
        by_stage=by_group["stage"],
        steps=steps,
        series=series,
    )


def _read(
    connection: Connection,
    ruleset: RuleSet,
    customers: list[str],
    start: datetime,
    end: datetime,
) -> ReportData:
    """What happened to `customers` in `[start, end)`."""
    settings = ruleset.measures
    winback_rules = [rule.id for rule in ruleset.rules if "winback" in rule.tags]
    data = ReportData(
        start=start,
        end=end,
        window=settings.active_window,
        customers=customers,
        sales=rows.purchases(connection, end),
        surveys=rows.surveys(connection, start, end),
        feedback=rows.feedback_items(connection, start, end),
        ledger=rows.ledger_items(connection, end),
        work=rows.work_done(connection, start, end),
        service_levels=ruleset.policy.service_levels,
        winbacks=rows.rule_moments(
            connection,
            winback_rules,
            start - settings.winback_window,
            end - settings.winback_window,
        ),
    )
    data.base_rate = yearly_retention(data.standing.values()).value or 0.0
    return data


def _costs(settings: Measures) -> Callable[[Work], float]:
    """What one message or task costs, as measures.yaml prices them."""

    def cost(work: Work) -> float:
        if work.is_task:
            return settings.task_cost(work.kind)
        return settings.message_costs.get(work.kind, 0.0)

    return cost


def _series(
    data: ReportData,
    steps: list[tuple[datetime, datetime]],
    groups: dict[str, list[str]],
) -> Series:
    """Retention and churn (treated vs control), NPS, satisfaction and work per step."""
    boundaries = [data.start, *(end for _, end in steps)]
    retention: dict[str, list[float | None]] = {}
    churn: dict[str, list[float | None]] = {}
    for name, customers in groups.items():
        active = [  # per customer: active at each boundary
            [active_at(data.bought_at.get(c, []), moment, data.window) for moment in boundaries]
            for c in customers
        ]
        first = [flags for flags in active if flags[0]]
        retention[name] = [
            Rate(sum(flags[k] for flags in first), len(first)).value
            for k in range(1, len(boundaries))
        ]
        churn[name] = []
        for k in range(1, len(boundaries)):
            was = [flags for flags in active if flags[k - 1]]
            churn[name].append(Rate(sum(not flags[k] for flags in was), len(was)).value)
    nps, satisfaction = [], []
    for begin, end in steps:
        answers = [s for s in data.surveys if begin <= s.at < end]
        nps.append(net_promoter_score(answers)[0])
        satisfaction.append(satisfaction_index(dimension_means(answers)))
    return Series(
        retention=retention,
        churn=churn,
        nps=nps,
        satisfaction=satisfaction,
        messages=_per_rule(data.work, steps, tasks=False),
        tasks=_per_rule(data.work, steps, tasks=True),
    )


def _per_rule(
    work: list[Work], steps: list[tuple[datetime, datetime]], *, tasks: bool
) -> dict[str, list[float]]:
    """Messages (or tasks) per rule per step, the busiest rule first."""
    counts: Counter[tuple[str, int]] = Counter()
    totals: Counter[str] = Counter()
    starts = [begin for begin, _ in steps]
    for item in work:
        if item.is_task == tasks:
            counts[item.rule_id, bisect_right(starts, item.at) - 1] += 1
            totals[item.rule_id] += 1
    return {
        rule: [float(counts[rule, i]) for i in range(len(steps))]
        for rule, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    }
