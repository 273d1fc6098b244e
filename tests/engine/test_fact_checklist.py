"""Adding a fact takes coordinated edits (the checklist next to `FACTS` in
engine/facts.py); each test here fails naming the piece that was missed, where the
parity tests would only show two sides disagreeing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest

import rapport.backtest.totals
import storage.facts
from engine.facts import FACTS, MESSAGE_CHANNELS, CustomerAggregates, FactParameters, derive_facts
from rapport.backtest.aggregates import CustomerHistory
from rapport.backtest.history import Happening, Profile
from rapport.backtest.timeline import to_us
from storage.facts import iter_customer_facts
from tests.conftest import fresh_engine
from tests.factories import add_customer

CHECKLIST = "see the checklist next to FACTS in engine/facts.py"
AS_OF = datetime(2026, 6, 30, 8, tzinfo=UTC)
FIELDS = [field.name for field in fields(CustomerAggregates)]
PROFILE = Profile(
    id="c1",
    segment="consumer",
    locale="en",
    timezone="Asia/Shanghai",
    birthday=None,
    account_manager=None,
    consents=dict.fromkeys(MESSAGE_CHANNELS, True),
    reachable={},
    preferred_channels="",
    created_at=None,
)


class Built(Exception):
    """Raised in place of building `CustomerAggregates`, with the fields it was given."""

    def __init__(self, given: dict[str, Any]) -> None:
        super().__init__(sorted(given))
        self.given = given


def catch_aggregates(**given: Any) -> NoReturn:
    raise Built(given)


def fields_given(module: Any, build: Callable[[], object]) -> set[str]:
    """The `CustomerAggregates` fields `module` fills while `build` runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "CustomerAggregates", catch_aggregates)
        try:
            build()
        except Built as built:
            return set(built.given)
    raise AssertionError(f"{module.__name__} built no CustomerAggregates")


def unfilled(given: set[str], where: str) -> str:
    missing = [name for name in FIELDS if name not in given]
    unknown = sorted(given - set(FIELDS))
    return "; ".join(
        [f"CustomerAggregates field {name!r} is not filled by {where}" for name in missing]
        + [f"{where} fills {name!r}, which CustomerAggregates lacks" for name in unknown]
    )


def sample_facts() -> dict[str, Any]:
    """A customer with a little of everything, through the backtest's aggregates."""
    moment = datetime(2026, 5, 1, tzinfo=UTC)
    events = [
        Happening(to_us(moment), moment, "e1", "purchase", amount=10.0),
        Happening(to_us(moment), moment, "e2", "contact", channel="email"),
        Happening(to_us(moment), moment, "e3", "feedback", level="major", category="complaint"),
        Happening(to_us(moment), moment, "e4", "survey", score=9),
    ]
    history = CustomerHistory(PROFILE, events, {}, FactParameters())
    return derive_facts(history.aggregates(to_us(AS_OF)), AS_OF, FactParameters())


def test_derive_facts_produces_every_declared_fact() -> None:
    produced = sample_facts()
    missing = [fact.name for fact in FACTS if fact.name not in produced]
    assert not missing, "; ".join(
        f"fact {name!r} is declared in FACTS but derive_facts does not produce it — {CHECKLIST}"
        for name in missing
    )


def test_every_fact_derive_facts_produces_is_declared() -> None:
    declared = {fact.name for fact in FACTS}
    undeclared = [name for name in sample_facts() if name not in declared]
    assert not undeclared, "; ".join(
        f"derive_facts produces {name!r}, which is not declared in FACTS — {CHECKLIST}"
        for name in undeclared
    )


def test_storage_fills_every_aggregate(tmp_path: Path) -> None:
    engine = fresh_engine("sqlite", tmp_path)
    add_customer(engine, "c1")

    def build() -> None:
        with engine.connect() as connection:
            next(iter_customer_facts(connection, AS_OF, FactParameters()))

    try:
        given = fields_given(storage.facts, build)
    except KeyError as error:
        pytest.fail(
            "storage/facts.py's row mapping (_aggregates) reads a column its SQL "
            f"(_event_aggregates, _open_feedback) does not select: {error} — {CHECKLIST}"
        )
    finally:
        engine.dispose()
    problems = unfilled(given, "storage/facts.py's row mapping (_aggregates)")
    assert not problems, f"{problems} — {CHECKLIST}"


def test_the_backtest_fills_every_aggregate() -> None:
    history = CustomerHistory(PROFILE, [], {}, FactParameters())
    given = fields_given(rapport.backtest.totals, lambda: history.aggregates(to_us(AS_OF)))
    problems = unfilled(given, "the backtest's rapport/backtest/totals.py (Totals.aggregates)")
    assert not problems, f"{problems} — {CHECKLIST}"
