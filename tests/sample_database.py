"""A database holding generated customers and their history, for tests that replay it."""

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from rapport.demo.sample import write_sample
from storage.db import make_engine
from storage.imports import import_customers, import_events
from storage.migrate import upgrade_database


def sample_database(folder: Path, customers: int, end: datetime) -> Engine:
    """A SQLite database in `folder` with `customers` generated customers whose history
    ends at `end`, imported as an operator would."""
    engine = make_engine(f"sqlite:///{folder / 'rapport.db'}")
    upgrade_database(engine)
    files = write_sample(folder / "sample", customers=customers, end=end)
    import_customers(engine, files.customers, default_timezone="Asia/Shanghai")
    import_events(engine, files.events, imported_at=end)
    return engine
