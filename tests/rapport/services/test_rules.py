"""A rules directory replaces the rules in force only when it is valid as a whole."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from rapport.services.rules import NoRulesInForce, rules_in_force
from rapport.services.scheduled import evaluate_customers
from storage.models import RuleFiring, RulesetRevision
from storage.revisions import active_revision
from tests.factories import NOW, add_customer
from tests.paths import RULESETS

OPERATORS = RULESETS / "operators"
T0 = datetime(2026, 7, 1, tzinfo=UTC)


def copy_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(OPERATORS, folder)
    return folder


def test_an_invalid_directory_keeps_the_last_good_revision(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = copy_rules(tmp_path)
    good, problems = rules_in_force(engine, folder, None, T0)
    assert problems == ()
    rule_file = folder / "operators.yaml"
    rule_file.write_text(rule_file.read_text().replace("tier: high", "teir: high"))
    with caplog.at_level(logging.ERROR, logger="rapport.rules"):
        in_force, problems = rules_in_force(engine, folder, None, T0)
    assert in_force.revision == good.revision
    assert [p.code for p in problems] == ["unknown-fact"]
    assert "unknown fact 'teir'" in caplog.text
    assert {r.id for r in in_force.rules} == {r.id for r in good.rules}
    with engine.connect() as connection:
        stored = connection.execute(select(RulesetRevision.hash, RulesetRevision.active)).all()
    assert stored == [(good.revision, True)]


def test_a_valid_edit_becomes_the_active_revision(engine: Engine, tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    first, _ = rules_in_force(engine, folder, None, T0)
    rule_file = folder / "operators.yaml"
    rule_file.write_text(rule_file.read_text().replace("tier: high", "tier: mid"))
    second, _ = rules_in_force(engine, folder, None, T0)
    assert second.revision != first.revision
    restored = active_revision(engine)
    assert restored is not None and restored.revision == second.revision
    with engine.connect() as connection:
        active = connection.scalars(
            select(RulesetRevision.hash).where(RulesetRevision.active)
        ).all()
    assert active == [second.revision]


def test_broken_rules_with_nothing_stored_is_an_error(engine: Engine, tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    (folder / "operators.yaml").write_text("rules: [\n")
    with pytest.raises(NoRulesInForce):
        rules_in_force(engine, folder, None, T0)


def test_firings_record_their_revision_and_respect_reentry(engine: Engine, tmp_path: Path):
    add_customer(engine, "c1")
    ruleset, _ = rules_in_force(engine, copy_rules(tmp_path), None, T0)
    first = list(evaluate_customers(engine, ruleset, NOW, record=True))
    assert [f.rule_id for f in first] == ["no_conditions"]
    assert list(evaluate_customers(engine, ruleset, NOW, record=True)) == []
    month_later = NOW.replace(month=NOW.month + 1)
    assert [f.rule_id for f in evaluate_customers(engine, ruleset, month_later, record=True)] == [
        "no_conditions"
    ]
    with engine.connect() as connection:
        rows = connection.execute(select(RuleFiring.revision, RuleFiring.rule_id)).all()
    assert rows == [(ruleset.revision, "no_conditions")] * 2


def test_a_dry_run_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    add_customer(engine, "c1")
    ruleset, _ = rules_in_force(engine, copy_rules(tmp_path), None, T0)
    assert len(list(evaluate_customers(engine, ruleset, NOW, record=False))) == 1
    assert len(list(evaluate_customers(engine, ruleset, NOW, record=False))) == 1
    with engine.connect() as connection:
        assert connection.execute(select(RuleFiring.id)).all() == []
