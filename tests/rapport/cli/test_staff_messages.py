"""The commands' one-line failures, `rapport explain` and the demo's tables in the staff
language: Chinese under RAPPORT_STAFF_LOCALE=zh-CN, the English unchanged under en."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.demo.summary import distribution_table, firings_table, ledger_table, status_table
from rapport.services.settings import get_settings
from rapport.services.staff_language import use_locale
from storage.db import make_engine
from storage.summary import LedgerEntry, RuleCount, StatusCount
from tests.factories import NOW, add_customer, add_events
from tests.paths import RULESETS

runner = CliRunner()


@pytest.fixture
def staff_locale(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """RAPPORT_STAFF_LOCALE=zh-CN for the commands run in the test."""
    monkeypatch.setenv("RAPPORT_STAFF_LOCALE", "zh-CN")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def failure(*command: str) -> str:
    result = runner.invoke(app, list(command))
    assert result.exit_code == 1, result.output
    return result.output


def test_failures_in_chinese(cli_engine: Engine, staff_locale: None) -> None:
    assert "rapport: 没有 ID 为 'nobody' 的客户" in failure("customers", "show", "nobody")
    assert "rapport: 没有任务 999" in failure("tasks", "close", "999")
    assert "rapport: --tz：未知时区 'Mars/Olympus'" in failure(
        "tasks", "list", "--tz", "Mars/Olympus"
    )
    assert "不是 ISO 8601 时间" in failure("explain", "C1", "--as-of", "soon")
    assert "rapport: --event 不是有效的 JSON" in failure("explain", "C1", "--event", "{")


def test_failures_in_english_are_unchanged(cli_engine: Engine) -> None:
    assert "rapport: no customer with id 'nobody'\n" in failure("customers", "show", "nobody")
    assert "rapport: no task 999\n" in failure("tasks", "close", "999")
    unknown = "rapport: --tz: unknown timezone 'Mars/Olympus' (e.g. Asia/Shanghai, UTC)\n"
    assert unknown in failure("tasks", "list", "--tz", "Mars/Olympus")
    moment = "rapport: 'soon' is not an ISO 8601 time such as 2026-07-01T09:00+08:00\n"
    assert moment in failure("explain", "C1", "--as-of", "soon")


def test_a_configuration_error_is_worded_in_the_staff_language(
    monkeypatch: pytest.MonkeyPatch, staff_locale: None
) -> None:
    """Invalid settings cannot give the staff language: RAPPORT_STAFF_LOCALE is read as
    it is set."""
    monkeypatch.setenv("RAPPORT_TIMEZONE", "Mars/Olympus")
    get_settings.cache_clear()
    assert "rapport: 配置有误：RAPPORT_TIMEZONE" in failure("db", "upgrade")


def test_the_secret_key_refusal_in_chinese(
    cli_engine: Engine, monkeypatch: pytest.MonkeyPatch, staff_locale: None
) -> None:
    monkeypatch.setenv("RAPPORT_SECRET_KEY", " ")
    get_settings.cache_clear()
    output = failure("dispatch")
    assert "rapport: RAPPORT_SECRET_KEY 为空，任何人都能签发退订链接" in output
    assert "export RAPPORT_SECRET_KEY=$(python3 -c" in output


@pytest.fixture
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "rules"
    shutil.copytree(RULESETS / "operators", folder)
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(folder))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(tmp_path / "templates"))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_explain_in_chinese(rules_dir: Path, staff_locale: None) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(get_settings().database_url)
    add_customer(engine, "C1")
    add_events(
        engine, "C1", {"type": "survey", "occurred_at": NOW - timedelta(days=29), "score": 4}
    )
    explained = runner.invoke(app, ["explain", "C1", "--as-of", "2026-06-30T00:00:00Z"])
    assert explained.exit_code == 0, explained.output
    assert "✔ no_conditions: 已触发" in explained.output
    assert "未触发" in explained.output
    assert "- event_fields：等待 feedback 事件" in explained.output
    assert "FIRED" not in explained.output and "waits for a" not in explained.output


def rendered(table: Table) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def demo_tables() -> str:
    due = datetime(2026, 7, 1, 2, tzinfo=UTC)
    entries = [LedgerEntry(1, "C1", "complaint", "service_lead", due)]
    return "".join(
        [
            rendered(distribution_table(Counter({("gold", "active"): 2}))),
            rendered(firings_table([RuleCount("win_back", 1, 3)])),
            rendered(status_table([StatusCount(None, "pending", 1)], "channel", "Messages")),
            rendered(ledger_table(entries, ZoneInfo("Asia/Shanghai"))),
        ]
    )


def test_the_demo_tables_in_chinese_and_in_english() -> None:
    with use_locale("zh-CN"):
        chinese = demo_tables()
    assert "按等级和生命周期阶段统计的客户" in chinese
    assert "本次运行" in chinese and "数据库中累计" in chinese
    assert "（尚未选定）" in chinese and "合计" in chinese
    assert "整改台账：1 项待处理" in chinese and "负责角色" in chinese
    with use_locale("en"):
        english = demo_tables()
    assert "Customers by tier and lifecycle stage" in english
    assert "this run" in english and "(not chosen yet)" in english
    assert "Remediation ledger: 1 open items" in english
