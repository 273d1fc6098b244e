"""`rapport demo`: a generated customer base run through every flow (`rapport.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rapport.cli.common import settings
from rapport.demo.pipeline import run_demo


def demo(
    customers: Annotated[
        int, typer.Option(min=10, max=200_000, help="Customers to generate.")
    ] = 3_000,
    directory: Annotated[Path, typer.Option(help="Where the sample files go.")] = Path("var/demo"),
) -> None:
    """Create the database, import a generated customer base and run every flow once."""
    run_demo(settings(), customers, directory)
