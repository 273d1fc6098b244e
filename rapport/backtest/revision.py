"""One rules revision, ready to replay: compiled once, shared by every customer's replay."""

from __future__ import annotations

from collections.abc import Mapping

from engine.evaluate import Evaluator
from engine.model import Position, Rule, RuleSet
from rapport.backtest.drift import Drift
from rapport.backtest.eligibility import Eligibility
from rapport.backtest.prefilter import Prefilter
from rapport.backtest.timeline import MICROSECOND

CHURN_TAG = "churn_signal"


class Rules:
    """One revision, ready to replay: its compiled engine and what the replay asks of it."""

    def __init__(
        self,
        ruleset: RuleSet,
        prefilter: bool = True,
        thresholds: Mapping[str, Position] | None = None,
        eligible: bool = True,
    ) -> None:
        """`thresholds`: per rule, the threshold condition its eligible population is
        measured against, where a sweep names it (`eligibility.py`); `eligible`: whether
        to count eligible populations at all."""
        self.ruleset = ruleset
        self.evaluator = Evaluator(ruleset)
        self.by_id = {rule.id: rule for rule in ruleset.rules}
        self.scheduled: tuple[Rule, ...] = tuple(r for r in ruleset.enabled if r.event is None)
        self.reacts_to = frozenset(r.event for r in ruleset.enabled if r.event is not None)
        signals = tuple(r for r in ruleset.enabled if CHURN_TAG in r.tags)
        self.churn_signals = tuple(r.id for r in signals)
        self.eligibility = Eligibility(signals if eligible else (), thresholds or {})
        self.cap_window_us = ruleset.policy.cap_window // MICROSECOND
        self.prefilter = Prefilter(self.scheduled) if prefilter else None
        self.drift = Drift(ruleset.parameters)
