"""The models' tables as SQLAlchemy Core `Table` objects, for queries written in Core.

SQLModel sets `__table__` on every table model but does not declare it, so mypy
rejects every read of it. The mapper holds the same object; it is read here, once per
table, so that every query elsewhere is type-checked without an ignore comment.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import class_mapper
from sqlmodel import SQLModel

from storage.models import (
    Customer,
    Event,
    OutboxJournal,
    OutboxMessage,
    RuleFiring,
    RulesetRevision,
    ShardFigure,
    StaffTask,
)


def _table(model: type[SQLModel]) -> Table:
    """The model's table (the mapper types it as any selectable; a model's is a `Table`)."""
    return cast(Table, class_mapper(model).local_table)


CUSTOMERS = _table(Customer)
EVENTS = _table(Event)
REVISIONS = _table(RulesetRevision)
FIRINGS = _table(RuleFiring)
MESSAGES = _table(OutboxMessage)
JOURNAL = _table(OutboxJournal)
TASKS = _table(StaffTask)
SHARD_FIGURES = _table(ShardFigure)
