"""The default rules: valid, tested case by case, documented and schema-described."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from actions.templates import template_checker
from engine.evaluate import Evaluator
from engine.facts import holiday_on
from engine.loader import load_rules
from engine.model import RuleSet
from engine.reference import reference_markdown, replace_reference
from engine.ruletests import (
    AS_OF,
    BASELINE,
    Case,
    load_cases,
    rule_test_schema,
    run_case,
    untested_rules,
)
from engine.schema import rule_schema
from engine.yamlsource import Source, parse, rule_files
from rapport.services.staff_language import _, use_locale
from tests.paths import ROOT

RULES = ROOT / "rules"
TEMPLATES = RULES.parent / "templates" / "messages"


def default_rules() -> RuleSet:
    result = load_rules(RULES)
    assert result.errors == (), [str(p) for p in result.errors]
    assert result.ruleset is not None
    return result.ruleset


RULESET = default_rules()
CASES, CASE_PROBLEMS = load_cases(RULES / "tests", RULESET)
EVALUATOR = Evaluator(RULESET)


def test_the_rule_tests_are_well_formed_and_not_empty() -> None:
    assert [str(p) for p in CASE_PROBLEMS] == []
    assert len(CASES) >= len(RULESET.enabled)


@pytest.mark.parametrize("case", CASES, ids=[f"{Path(c.path).stem}:{c.line}" for c in CASES])
def test_rule_case(case: Case) -> None:
    outcome = run_case(case, EVALUATOR)
    assert outcome.failures == (), f"{case.path}:{case.line}: {case.name} (fired {outcome.fired})"


def test_every_default_rule_has_a_case_that_expects_it_to_fire() -> None:
    assert untested_rules(CASES, RULESET) == []


def test_the_default_rules_cover_the_playbook() -> None:
    triggers = {rule.trigger for rule in RULESET.enabled}
    assert {"schedule", "event:purchase", "event:feedback", "event:survey"} <= triggers
    assert {"event:task_overdue", "event:step_due"} <= triggers
    churn = [rule for rule in RULESET.enabled if "churn_signal" in rule.tags]
    assert len(churn) >= 6
    actions = {action.name for rule in RULESET.enabled for action in rule.actions}
    assert {"send_message", "open_task", "escalate", "schedule"} <= actions
    ledger = [a for r in RULESET.enabled for a in r.actions if a.params.get("ledger")]
    assert ledger and all(a.params["acceptance_criteria"] for a in ledger)
    assert RULESET.holidays and RULESET.affinity


def test_the_lunar_festivals_are_greeted_in_years_nobody_typed_in() -> None:
    """The care calendar names the lunar festivals, and the holiday library dates them:
    2028's Mid-Autumn Festival (3 October) gets its greeting with no 2028 entry."""
    as_of = datetime(2028, 10, 3, 1, tzinfo=UTC)  # 09:00 in Shanghai
    holiday = holiday_on(date(2028, 10, 3), RULESET.parameters)
    fired = EVALUATOR.evaluate({**BASELINE, "holiday": holiday}, as_of)
    assert holiday == "Mid-Autumn Festival"
    assert "holiday_greeting" in {firing.rule_id for firing in fired}


def test_every_template_the_default_rules_use_renders_in_both_languages() -> None:
    result = load_rules(RULES, template_checker(TEMPLATES))
    assert [str(p) for p in result.problems] == []


SCHEMAS = [  # folder, committed schema, its generator, the command that writes it
    pytest.param(RULES, "rules.schema.json", rule_schema, "", id="rules"),
    pytest.param(RULES / "tests", "tests.schema.json", rule_test_schema, " --tests", id="tests"),
]


@pytest.mark.parametrize(("folder", "name", "generate", "flag"), SCHEMAS)
def test_the_committed_json_schema_is_current_and_accepts_every_shipped_file(
    folder: Path, name: str, generate: Callable[[], dict[str, Any]], flag: str
) -> None:
    """Current, declared by every file for editors, and passing each file as a standard
    YAML loader reads it (PyYAML is YAML 1.1: an unquoted date would be a date there)."""
    committed = json.loads((folder / name).read_text(encoding="utf-8"))
    assert committed == generate(), f"run: rapport rules schema{flag} --output {folder / name}"
    validator = jsonschema.Draft202012Validator(committed)
    modeline = f"# yaml-language-server: $schema=./{name}\n"
    for path in rule_files(folder):
        text = path.read_text(encoding="utf-8")
        assert text.startswith(modeline), f"{path}: first line should be {modeline!r}"
        for document in (yaml.safe_load(text), parse(Source(str(path)), path.read_bytes())):
            errors = [
                f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)
            ]
            assert errors == [], path


def test_the_schema_of_rule_tests_rejects_what_the_reader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(rule_test_schema())
    assert validator.is_valid({"cases": [{"name": "n", "facts": {"tier": "high"}}]})
    for bad in (
        {"name": "n", "facts": {"teir": "high"}},
        {"name": "n", "facts": {"tier": "gold"}},
        {"name": "n", "facts": {"tier": None}},  # tier is never missing
        {"name": "n", "event": {"type": "purchase", "score": 3}},
        {"name": "n", "fire": ["x"]},
    ):
        assert not validator.is_valid({"cases": [bad]}), bad


def test_the_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(rule_schema())
    bad = {
        "rules": [
            {
                "id": "x_rule",
                "description": "d",
                "trigger": "schedule",
                "when": [{"teir": "high"}],
                "actions": [{"tag": {"tag": "t"}}],
            }
        ]
    }
    assert not validator.is_valid(bad)


def test_the_operations_reference_is_current() -> None:
    readme = (RULES / "README.md").read_text(encoding="utf-8")
    assert replace_reference(readme, reference_markdown()) == readme, (
        "run: rapport rules reference --write rules/README.md"
    )


def test_the_chinese_operations_reference_is_current() -> None:
    """rules/README.zh-CN.md: the same vocabulary through the zh-CN catalogue, section
    titles and descriptions in Chinese, names as the rules write them."""
    readme = (RULES / "README.zh-CN.md").read_text(encoding="utf-8")
    with use_locale("zh-CN"):
        reference = reference_markdown(_)
    assert replace_reference(readme, reference) == readme, (
        "run: rapport rules reference --locale zh-CN --write rules/README.zh-CN.md"
    )
    assert "### 事实" in reference and "### 问题代码" in reference
    assert "| `tier` | string |  | high, mid, base | 按最近 12 个月消费额" in reference
    assert "| `gte` | integer, number | 大于或等于 |" in reference
    assert reference.count("\n") == reference_markdown().count("\n")  # the same tables


def test_an_escalation_ends_at_its_last_owner() -> None:
    """An escalation rule never fires on a task already owned by the role it escalates
    to: otherwise a lapsed task at management goes to management again, every time the
    new deadline passes. Checked for every escalation rule with each rule test that
    fires it, the overdue task handed to that rule's own target role."""
    checked = 0
    for rule in RULESET.enabled:
        targets = {a.params["to_role"] for a in rule.actions if a.name == "escalate"}
        for case in CASES:
            if rule.id not in case.fires or case.event is None:
                continue
            for role in targets:
                event = {**case.event, "owner_role": role}
                fired = {f.rule_id for f in EVALUATOR.evaluate_event(case.facts, event, AS_OF)}
                assert rule.id not in fired, f"{rule.id} escalates a {role} task to {role}"
                checked += 1
    assert checked >= 4  # every escalation rule of the default rules has a firing case
