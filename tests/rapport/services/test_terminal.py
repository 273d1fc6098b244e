"""The terminal: piped output as wide as its lines, progress bars on a terminal only."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rapport.services.terminal import PIPED_WIDTH, output, progress


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
