"""The terminal: piped output as wide as its lines, progress bars on a terminal only."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rapport.services.terminal import PIPED_WIDTH, output, progress, progress_to


def test_piped_output_is_as_wide_as_its_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output().width == PIPED_WIDTH  # pytest captures stdout: not a terminal
    monkeypatch.setenv("COLUMNS", "90")
    assert output().width == 90  # an explicit width is kept


def test_a_progress_bar_on_a_terminal_only() -> None:
    shown = io.StringIO()
    terminal = Console(file=shown, force_terminal=True, width=100)
    with progress(terminal, "evaluating customers", 10) as advance:
        advance(3)
        advance(4)
    assert "evaluating customers" in shown.getvalue() and "7/10" in shown.getvalue()

    piped = io.StringIO()
    with progress(Console(file=piped), "evaluating customers", 10) as advance:
        advance(10)
    assert piped.getvalue() == ""


def test_a_run_that_reports_where_it_stands_shows_the_same_bar() -> None:
    """The backtest learns its total on its first report; chunks finish in any order."""
    shown = io.StringIO()
    terminal = Console(file=shown, force_terminal=True, width=100)
    with progress_to(terminal, "replaying 365 steps per customer") as update:
        update(0, 12)
        update(8, 12)
    assert "replaying 365 steps per customer" in shown.getvalue()
    assert "8/12" in shown.getvalue()

    piped = io.StringIO()
    with progress_to(Console(file=piped), "replaying") as update:
        update(12, 12)
    assert piped.getvalue() == ""
