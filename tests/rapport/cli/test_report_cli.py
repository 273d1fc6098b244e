"""`rapport report`: the terminal summary and the self-contained HTML page, on sample
data with real names, emails and phone numbers that must never appear in either."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.demo.sample import write_sample
from rapport.services.settings import get_settings

runner = CliRunner()
END = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def sample_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'report.db'}")
    monkeypatch.setenv("RAPPORT_TIMEZONE", "Asia/Shanghai")
    get_settings.cache_clear()
    files = write_sample(tmp_path / "sample", customers=150, end=END)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for kind, path in (("customers", files.customers), ("events", files.events)):
        result = runner.invoke(app, ["import", kind, str(path)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--as-of", "2026-09-15T09:00:00+08:00"])
    assert result.exit_code == 0, result.output
    yield files.customers
    get_settings.cache_clear()


def _personal_data(customers_csv: Path) -> set[str]:
    with customers_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    values = {row[key] for row in rows for key in ("name", "email", "phone", "wechat")}
    return {value for value in values if value and len(value) > 3}


def test_report_prints_the_measures_and_writes_a_self_contained_page(
    sample_db: Path, tmp_path: Path
) -> None:
    page = tmp_path / "out" / "report.html"
    result = runner.invoke(
        app, ["report", "--from", "2026-07-01", "--to", "2026-09-30", "--html", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert "Relationship report Jul 1, 2026 to Sep 30, 2026 (both days included" in result.output
    for measure in ("Retention", "Churn", "Win-back rate", "NPS", "Satisfaction index"):
        assert measure in result.output
    assert "(150 of" not in result.output  # the control group is a share, not everyone
    html = page.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch, nothing to run.
    assert "<script" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) >= 8
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed
    for title in ("Churn within each step", "NPS per step", "Treated vs control customers"):
        assert title in html
    leaked = {value for value in _personal_data(sample_db) if value in html + result.output}
    assert leaked == set()


def test_report_refuses_a_period_that_ends_before_it_starts(sample_db: Path) -> None:
    result = runner.invoke(app, ["report", "--from", "2026-09-30", "--to", "2026-07-01"])
    assert result.exit_code == 1
    assert "--to 2026-07-01 is before --from 2026-09-30" in result.output


def test_report_refuses_a_date_it_cannot_read(sample_db: Path) -> None:
    result = runner.invoke(app, ["report", "--from", "July"])
    assert result.exit_code == 1
    assert "--from 'July' is not a date" in result.output
