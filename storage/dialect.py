"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(connection: Connection, table: Table) -> Any:
    """An INSERT that supports `on_conflict_do_nothing/update` on either database."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignoring_conflicts(connection: Connection, table: Table, keys: list[str]) -> Any:
    """An INSERT that skips rows whose `keys` already exist."""
    return dialect_insert(connection, table).on_conflict_do_nothing(index_elements=keys)


def insert_new_keys(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Inserts rows whose `key` is not stored yet; returns how many were new."""
    if not rows:
        return 0
    statement = insert_ignoring_conflicts(connection, table, ["key"]).returning(table.c.key)
    return len(connection.execute(statement, rows).all())
