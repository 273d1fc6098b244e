"""`rapport rules …`, `rapport explain` and `rapport evaluate` from the command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.services.settings import get_settings
from storage.db import make_engine
from storage.models import RuleFiring, RulesetRevision
from tests.factories import NOW, add_customer, add_events
from tests.paths import RULESETS

runner = CliRunner()
OPERATORS = RULESETS / "operators"


@pytest.fixture()
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "rules"
    shutil.copytree(OPERATORS, folder)
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(folder))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(tmp_path / "templates"))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_check_lists_every_problem_and_exits_1(rules_dir: Path) -> None:
    path = rules_dir / "operators.yaml"
    text = path.read_text().replace("tier: high", "teir: high").replace("{lt: 5}", "{lt: five}")
    path.write_text(text)
    result = runner.invoke(app, ["rules", "check"])
    assert result.exit_code == 1
    assert f"{path}:7:9: unknown-fact: unknown fact 'teir' (did you mean 'tier'?)" in result.output
    assert "wrong-type" in result.output
    assert "2 problem(s)" in result.output


def test_check_as_json_gives_each_problem_as_an_object(rules_dir: Path) -> None:
    path = rules_dir / "operators.yaml"
    path.write_text(path.read_text().replace("tier: high", "teir: high"))
    result = runner.invoke(app, ["rules", "check", "--json"])
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert found["valid"] is False and found["revision"] is None
    assert found["problems"] == [
        {
            "path": str(path),
            "line": 7,
            "column": 9,
            "code": "unknown-fact",
            "message": "unknown fact 'teir' (did you mean 'tier'?)",
            "severity": "error",
        }
    ]
    path.write_text(path.read_text().replace("teir: high", "tier: high"))
    fixed = json.loads(runner.invoke(app, ["rules", "check", "--json"]).stdout)
    assert fixed["valid"] is True and fixed["problems"] == [] and fixed["rules"] > 0


def test_check_renders_the_templates_rules_use(rules_dir: Path, tmp_path: Path) -> None:
    path = rules_dir / "operators.yaml"
    path.write_text(
        path.read_text()
        + (
            "  - id: greets\n    description: A message.\n    trigger: schedule\n"
            "    actions: [{send_message: {template: hello}}]\n    reentry: once\n"
        )
    )
    missing = runner.invoke(app, ["rules", "check"])
    assert missing.exit_code == 1
    assert "unknown-template: no template 'hello' in zh-CN, en" in missing.output
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "hello.zh-CN.yaml").write_text('subject: "你好 {{ customer.name }}"\ntext: 你好\n')
    (templates / "hello.en.yaml").write_text('subject: "Hi {{ customer.nmae }}"\ntext: Hi\n')
    undefined = runner.invoke(app, ["rules", "check"])
    assert undefined.exit_code == 1
    assert "template-error" in undefined.output and "has no attribute 'nmae'" in undefined.output
    (templates / "hello.en.yaml").write_text('subject: "Hi {{ customer.name }}"\ntext: Hi\n')
    fixed = runner.invoke(app, ["rules", "check"])
    assert fixed.exit_code == 0, fixed.output
    assert "9 rules valid" in fixed.output


def test_rules_test_reports_failures_with_file_and_line(rules_dir: Path) -> None:
    (rules_dir / "tests").mkdir()
    (rules_dir / "tests" / "operators.yaml").write_text(
        "cases:\n"
        "  - name: a high-tier consumer\n"
        "    facts: {tier: high, segment: consumer}\n"
        "    fires: [eq_and_ne]\n"
        "  - name: wrong on purpose\n"
        "    facts: {tier: base}\n"
        "    fires: [eq_and_ne]\n"
    )
    result = runner.invoke(app, ["rules", "test"])
    assert result.exit_code == 1
    where = f"{rules_dir / 'tests' / 'operators.yaml'}:5"
    assert f"{where}: wrong on purpose: expected eq_and_ne to fire" in result.output
    assert "1 passed, 1 failed" in result.output


def test_rules_test_fails_when_there_is_no_case(rules_dir: Path) -> None:
    result = runner.invoke(app, ["rules", "test"])
    assert result.exit_code == 1 and "no rule tests found" in result.output


def test_schema_prints_json_schema() -> None:
    result = runner.invoke(app, ["rules", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "Rapport rule file"


def test_explain_and_a_dry_run_then_a_recorded_run(rules_dir: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(get_settings().database_url)
    add_customer(engine, "C1")
    add_customer(engine, "C2", locale="en")
    add_events(
        engine, "C1", {"type": "survey", "occurred_at": NOW - timedelta(days=29), "score": 4}
    )
    explained = runner.invoke(app, ["explain", "C1", "--as-of", "2026-06-30T00:00:00Z"])
    assert explained.exit_code == 0, explained.output
    assert "✔ no_conditions" in explained.output and "FIRED" in explained.output
    assert "last_survey_score has a value" in explained.output
    assert "event_fields: waits for a feedback event" in explained.output
    with_event = runner.invoke(app, ["explain", "C1", "--event", '{"type": "survey", "score": 3}'])
    assert "✔ survey_detractor" in with_event.output
    dry = runner.invoke(app, ["evaluate", "--as-of", "2026-06-30T00:00:00Z", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    lines = [json.loads(line) for line in dry.output.splitlines()]
    assert {(line["rule"], line["customer_id"]) for line in lines} >= {
        ("no_conditions", "C1"),
        ("no_conditions", "C2"),
    }
    assert lines[0]["actions"] == [{"tag": {"tag": "f"}}]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RuleFiring)) == 0
        assert connection.scalar(select(func.count()).select_from(RulesetRevision)) == 0
    recorded = runner.invoke(app, ["evaluate", "--as-of", "2026-06-30T00:00:00Z"])
    assert recorded.exit_code == 0, recorded.output
    assert "no_conditions" in recorded.output
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RuleFiring)) == len(lines)
        assert connection.scalar(select(func.count()).select_from(RulesetRevision)) == 1


def test_explain_shows_what_the_guards_would_do(rules_dir: Path, tmp_path: Path) -> None:
    path = rules_dir / "operators.yaml"
    path.write_text(
        path.read_text()
        + (
            "  - id: greets\n    description: A message.\n    trigger: schedule\n"
            "    actions: [{send_message: {template: hello, channels: [email]}}]\n"
            "    reentry: once\n"
        )
    )
    templates = tmp_path / "templates"  # the rules in force are valid templates included
    templates.mkdir()
    for locale in ("zh-CN", "en"):
        (templates / f"hello.{locale}.yaml").write_text('subject: "Hi"\ntext: Hi\n')
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(get_settings().database_url)
    add_customer(engine, "C1", timezone="UTC", email="c1@example.com", consent_email=True)
    add_customer(engine, "C2", timezone="UTC")
    noon = runner.invoke(app, ["explain", "C1", "--as-of", "2026-06-30T12:00:00Z"])
    assert "guards for hello: send — ok: by email (the rule's channels)" in noon.output
    night = runner.invoke(app, ["explain", "C1", "--as-of", "2026-06-30T23:00:00Z"])
    assert "guards for hello: defer — quiet_hours: deferred to 2026-07-01 08:00 UTC" in night.output
    no_consent = runner.invoke(app, ["explain", "C2", "--as-of", "2026-06-30T12:00:00Z"])
    assert "guards for hello: suppress — no_consent" in no_consent.output


@pytest.mark.parametrize("hostile", ["nested_not_any_120.yaml", "alias_inside_itself_mapping.yaml"])
def test_a_hostile_file_is_reported_and_evaluate_and_dispatch_keep_the_good_revision(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch, hostile: str
) -> None:
    """`rules check` names the file and line; the commands that run keep the last
    good revision in force, and it stays the active one."""
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "a-test-secret-that-is-not-the-default")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(get_settings().database_url)
    add_customer(engine, "C1")
    first = runner.invoke(app, ["evaluate", "--as-of", "2026-06-01T00:00:00Z"])
    assert first.exit_code == 0, first.output
    with engine.connect() as connection:
        good = connection.scalar(select(RulesetRevision.hash).where(RulesetRevision.active))
    corpus = Path(__file__).resolve().parents[2] / "rules_hostile" / "rules" / hostile
    shutil.copy(corpus, rules_dir / hostile)
    expected_line = corpus.read_text().split()[3]  # `# expect: CODE LINE`

    check = runner.invoke(app, ["rules", "check"])
    assert check.exit_code == 1
    assert f"{rules_dir / hostile}:{expected_line}:" in check.output
    assert "1 problem(s)" in check.output
    evaluated = runner.invoke(app, ["evaluate", "--as-of", "2026-06-30T00:00:00Z"])
    assert evaluated.exit_code == 0, evaluated.output
    dispatched = runner.invoke(app, ["dispatch", "--as-of", "2026-06-30T00:00:00Z"])
    assert dispatched.exit_code == 0, dispatched.output
    with engine.connect() as connection:
        revisions = connection.execute(select(RulesetRevision.hash, RulesetRevision.active)).all()
        fired = set(connection.scalars(select(RuleFiring.revision)).all())
    assert revisions == [(good, True)]
    assert fired == {good}


def test_command_messages_in_the_staff_language(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RAPPORT_STAFF_LOCALE=zh-CN: the summaries staff read daily come in Chinese."""
    monkeypatch.setenv("RAPPORT_STAFF_LOCALE", "zh-CN")
    get_settings.cache_clear()
    wide = CliRunner(env={"COLUMNS": "200"})
    checked = wide.invoke(app, ["rules", "check"])
    assert checked.exit_code == 0, checked.output
    assert f"{rules_dir}：" in checked.output and "条规则有效（已启用" in checked.output
    assert wide.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(get_settings().database_url)
    add_customer(engine, "C1")
    run = wide.invoke(app, ["evaluate", "--as-of", "2026-06-30T00:00:00Z", "--dry-run"])
    assert run.exit_code == 0, run.output
    assert "截至 2026年6月30日 08:00 的规则触发 — 试运行，未写入任何数据" in run.output
    assert "1 位客户共匹配" in run.output
    shown = wide.invoke(app, ["customers", "show", "C1", "--as-of", "2026-06-30T00:00:00Z"])
    assert "客户 C1（截至 2026年6月30日 08:00）" in shown.output
    assert "按最近 12 个月消费额对照阈值确定的客户等级。" in shown.output
    history = wide.invoke(app, ["customers", "history", "C1"])
    assert history.exit_code == 0, history.output
    assert "客户 C1：" in history.output and "条记录（Asia/Shanghai）" in history.output


def test_rules_reference_in_chinese(tmp_path: Path) -> None:
    guide = tmp_path / "README.zh-CN.md"
    guide.write_text("# 规则\n\n<!-- reference:start -->\n<!-- reference:end -->\n")
    written = runner.invoke(app, ["rules", "reference", "--locale", "zh-CN", "--write", guide])
    assert written.exit_code == 0, written.output
    text = guide.read_text(encoding="utf-8")
    assert text.startswith("# 规则\n\n<!-- reference:start -->\n## 参考（由 `rapport rules")
    assert "### 事实" in text and "| 事实 | 类型 | 单位 | 取值 | 说明 |" in text
    english = runner.invoke(app, ["rules", "reference"])
    assert "### Facts" in english.output and "事实" not in english.output
    wrong = runner.invoke(app, ["rules", "reference", "--locale", "fr"])
    assert wrong.exit_code == 1 and "--locale 'fr': one of zh-CN, en" in wrong.output
