"""The terminal every command and the demo print to."""

from __future__ import annotations

import os

from rich.console import Console

PIPED_WIDTH = 1_000


def output(stderr: bool = False) -> Console:
    """A console of one line per message, so output can be grepped. Piped into a file or
    another program it is as wide as its lines: rich would otherwise assume 80 columns
    and cut table cells short (rule ids read `churn_c…`, two rows alike). A terminal, or
    an explicit COLUMNS, keeps its own width."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console
