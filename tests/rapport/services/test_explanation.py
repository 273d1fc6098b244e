"""explain = evaluate: what `rapport explain` calls fired is exactly what an evaluation
at the same moment admits, re-entry and the control group included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from rapport.demo.sample import write_sample
from rapport.services.explanation import explain_customer
from rapport.services.rules import rules_in_force
from rapport.services.scheduled import evaluate_customers
from storage.customers import customer_ids
from storage.imports import import_customers, import_events
from tests.paths import ROOT

END = datetime(2026, 6, 30, 0, 0, tzinfo=UTC)


def test_explain_fires_exactly_what_evaluate_admits(engine: Engine, tmp_path: Path) -> None:
    files = write_sample(tmp_path / "sample", customers=120, end=END)
    import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
    import_events(engine, files.events, imported_at=END)
    ruleset, _ = rules_in_force(engine, ROOT / "rules", ROOT / "templates" / "messages", END)
    first = END + timedelta(hours=1)  # a run yesterday: its firings hold today's back
    list(evaluate_customers(engine, ruleset, first, record=True, created_at=first))
    today = first + timedelta(days=1)
    admitted: dict[str, set[str]] = {}
    for firing in evaluate_customers(engine, ruleset, today, record=False):
        admitted.setdefault(firing.customer_id, set()).add(firing.rule_id)
    held_back = 0
    with engine.connect() as connection:
        ids = customer_ids(connection)
    for customer_id in ids:
        explanation = explain_customer(engine, ruleset, customer_id, today)
        assert explanation is not None
        fired = {r.rule_id for r in explanation.rules if r.state.startswith("fired")}
        assert fired == admitted.get(customer_id, set()), customer_id
        held_back += sum(r.state.startswith("held back by re-entry") for r in explanation.rules)
    assert held_back > 0  # yesterday's run really held rules back today
