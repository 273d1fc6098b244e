"""The terminal every command and the demo print to, and the progress they show on it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

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


@contextmanager
def progress(
    console: Console, description: str, total: float | None, in_bytes: bool = False
) -> Iterator[Callable[[float], None]]:
    """A progress bar while a long run works (evaluate, dispatch, report, the demo, an
    import), on a terminal only: piped into a file or a script, the output is the
    results alone. Yields `advance(n)`; `total` None is a run of unknown length.
    `in_bytes`: a file read, shown as bytes with the time remaining."""
    with _bar(console, description, total, in_bytes) as (bar, task):

        def advance(steps: float) -> None:
            bar.advance(task, steps)

        yield advance


@contextmanager
def progress_to(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """The same bar for a run that reports where it stands, `update(done, total)`, rather
    than steps taken: the backtest, which learns its total once it has listed the
    customers and whose worker processes finish chunks in any order."""
    with _bar(console, description, None, in_bytes=False) as (bar, task):

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def _bar(
    console: Console, description: str, total: float | None, in_bytes: bool
) -> Iterator[tuple[Progress, TaskID]]:
    counted = (
        (DownloadColumn(), TimeRemainingColumn())
        if in_bytes
        else (MofNCompleteColumn(), TimeElapsedColumn())
    )
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counted,
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with bar:
        yield bar, bar.add_task(description, total=total)
