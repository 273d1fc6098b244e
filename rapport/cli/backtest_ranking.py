"""`rapport backtest --top K --at DAY`: the ranking view's options, run and terminal output
(the ranking itself is `rapport/backtest/ranking.py`)."""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.durations import parse_duration
from engine.model import RuleSet
from engine.policy import parse_clock
from rapport.backtest.ranking import rank_day
from rapport.backtest.ranking_tables import (
    overdue_table,
    precision_table,
    ranking_headline,
    ranking_note,
)
from rapport.cli.common import console, errors, fail
from rapport.services.staff_language import _
from rapport.services.terminal import progress_to

_DAY_AT = re.compile(r"^(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T](?P<clock>[0-9:]+))?$")
DEFAULT_CLOCK = "08:00"  # the evaluate-rules flow's time of day, as --at's default
TOP_HELP = (
    "Rank instead of replaying a period: the K repeat buyers most overdue on --at DAY "
    "(days since the last purchase ÷ usual gap, the purchase_overdue_ratio fact), with "
    "what they did within --horizon, the precision at K beside each churn signal's that "
    "day and the base rate. One-time buyers and dormant customers (lifecycle_stage "
    "dormant, as the churn rules leave out) are not ranked."
)


def ranking_options(top: str, at: str, period: tuple[Any, ...]) -> tuple[int, date, time]:
    """`--top` and `--at` as a count, a day and a time of day; a one-line failure when
    either is wrong, `--at` holds no day, or the options of a period replay are given."""
    if any(value is not None for value in period):
        raise fail(
            _(
                "--top ranks one day (--at DAY): leave out --from, --to, --compare, "
                "--sweep and --html"
            )
        )
    count = top.strip()
    if not count.isdigit() or int(count) < 1:
        raise fail(
            _("--top {value} is not a number of customers such as 20").format(value=repr(top))
        )
    match = _DAY_AT.match(at.strip())
    if match is None:
        raise fail(
            _(
                "--top needs --at DAY, the day to rank on, e.g. --at 2026-01-05 "
                "(at {clock}) or --at '2026-01-05 09:30'"
            ).format(clock=DEFAULT_CLOCK)
        )
    try:
        day = date.fromisoformat(match["day"])
        clock = parse_clock(match["clock"] or DEFAULT_CLOCK)
    except ValueError:
        raise fail(
            _("--at {value} is not a day such as 2026-01-05 or '2026-01-05 09:30'").format(
                value=repr(at)
            )
        ) from None
    return int(count), day, clock


def ranking(
    engine: Engine,
    rules: tuple[Path, RuleSet],
    options: tuple[int, date, time],
    horizon: str,
    timezone: str,
    workers: int,
) -> dict[str, Any]:
    """The ranking's document; the churn signals' one-step replay shows its progress."""
    top, day, clock = options
    try:
        horizon_delta = parse_duration(horizon)
    except ValueError as error:
        raise fail(f"--horizon: {error}") from None
    replaying = _("replaying the churn signals on {day}").format(day=day)
    with progress_to(errors, replaying) as update:
        return rank_day(
            engine,
            rules,
            (day, clock, timezone),
            top,
            horizon_delta,
            workers=workers,
            progress=update,
        )


def print_ranking(document: dict[str, Any]) -> None:
    console.print(ranking_headline(document), highlight=False)
    console.print(overdue_table(document))
    console.print(precision_table(document))
    if (note := ranking_note(document)) is not None:
        console.print(note, highlight=False)
