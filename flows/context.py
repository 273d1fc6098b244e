"""What every flow starts from: configuration, Rapport's database, the rules in force.

Flows only orchestrate: everything they call is a plain function of `engine/`,
`actions/`, `storage/` or `rapport.services`, tested on its own. Flow parameters are
plain values (an ISO time, numbers, paths, stored ids), so a run can be started from the
Prefect UI; never personal data, which the UI would show. Log lines a run writes are
masked (`actions.privacy`) by every handler they reach, Prefect's API handler included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TypeVar, cast

from prefect.logging import get_run_logger
from prefect.utilities.annotations import quote
from sqlalchemy import Engine

from actions.privacy import MaskingFilter
from engine.model import RuleSet
from rapport.services.clock import as_of_or_now
from rapport.services.rules import rules_in_force, rules_of_revision
from rapport.services.settings import Settings, get_settings
from storage.db import make_engine
from storage.migrate import check_schema

T = TypeVar("T")


@dataclass(frozen=True)
class FlowContext:
    settings: Settings
    engine: Engine
    ruleset: RuleSet
    as_of: datetime


def unwalked(value: T) -> T:
    """A task argument Prefect passes through as is: without it, Prefect walks every
    argument of every task run looking for futures (about 10 ms for a rule set or a
    5,000-id list), a cost paid per batch for nothing."""
    return cast(T, quote(value))


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    """One engine (and connection pool) per database for the life of the process, so a
    long-running `rapport serve` reuses connections across runs."""
    return make_engine(url)


def moment(as_of: str | None) -> datetime:
    """A flow's `as_of` parameter, read as the command line reads `--as-of`: ISO 8601, a
    bare date or an offset-less time in RAPPORT_TIMEZONE; absent means now."""
    return as_of_or_now(as_of, get_settings().timezone)


_MASKING = MaskingFilter()
_RUN_LOGGERS = (None, "prefect", "prefect.flow_runs", "prefect.task_runs")


def mask_run_logs() -> None:
    """Every handler a run's log records reach masks personal data: the API handler
    (what the Prefect UI shows) and the console. Idempotent; called as each flow starts,
    since Prefect may set its handlers up again at any time before."""
    for name in _RUN_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_MASKING)


def flow_context(as_of: str | None, revision: str | None = None) -> FlowContext:
    """Settings, a database with a current schema, and the rules in force (a new valid
    revision of `rules/` is recorded; an invalid one keeps the last good revision), or
    exactly the stored `revision` when one is given (a shard runs its parent's)."""
    mask_run_logs()
    settings = get_settings()
    engine = _engine(settings.database_url)
    check_schema(engine)
    now = moment(as_of)
    if revision is not None:
        return FlowContext(settings, engine, rules_of_revision(engine, revision), now)
    ruleset, problems = rules_in_force(engine, settings.rules_dir, settings.templates_dir, now)
    if problems:
        get_run_logger().warning(
            "rules/ has %d problems; running revision %s (see `rapport rules check`)",
            len(problems),
            ruleset.revision,
        )
    return FlowContext(settings, engine, ruleset, now)
