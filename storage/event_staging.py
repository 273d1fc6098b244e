"""A batch of validated events into the events table through a staging table.

Sending rows one statement at a time through SQLAlchemy cost more than validating them;
here a batch is loaded into a temporary table the fastest way each database takes
(PostgreSQL's COPY, SQLite's executemany of plain tuples), and the database then does
the checks that need stored rows for the whole batch at once (unknown customers, ids
already stored) and inserts the rest with one INSERT ... SELECT. Every row keeps its
line, so each one the database turns away is still reported as `FILE:LINE`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from psycopg import Connection as PsycopgConnection
from sqlalchemy import Connection, bindparam, text

from storage.tables import EVENTS

# The columns a staged row gives, in order, after its line: every column of the events
# table but the reaction time, which an import never sets, and the import time, the
# same for a whole batch and given once with its INSERT.
COLUMNS = tuple(
    column.name for column in EVENTS.columns if column.name not in {"reacted_at", "imported_at"}
)
_LISTED = ", ".join(COLUMNS)
_OCCURRED_AT = COLUMNS.index("occurred_at") + 1
_IMPORTED_AT = bindparam("imported_at", type_=EVENTS.c.imported_at.type)

# Row for row as the events table types them; the line is kept for error reports.
_CREATE = (
    "CREATE TEMP TABLE IF NOT EXISTS import_events AS"
    f" SELECT 0 AS line, {_LISTED} FROM events WHERE 1 = 0"
)
_CONFLICTS = text(
    "SELECT s.line, s.id, s.customer_id, c.id IS NULL, e.imported_at = :imported_at"
    " FROM import_events AS s"
    " LEFT JOIN customers AS c ON c.id = s.customer_id"
    " LEFT JOIN events AS e ON e.id = s.id"
    " WHERE c.id IS NULL OR e.id IS NOT NULL"
).bindparams(_IMPORTED_AT)
# WHERE is required by SQLite before ON CONFLICT in an INSERT ... SELECT.
_INSERT = (
    f"INSERT INTO events ({_LISTED}, imported_at) SELECT {_LISTED}, :imported_at"
    " FROM import_events AS s"
    " WHERE EXISTS (SELECT 1 FROM customers AS c WHERE c.id = s.customer_id)"
    " ON CONFLICT (id) DO NOTHING"
)
_INSERTED = text(_INSERT).bindparams(_IMPORTED_AT)
_INSERTED_IDS = text(_INSERT + " RETURNING id").bindparams(_IMPORTED_AT)

StagedRow = tuple[Any, ...]  # the line, then COLUMNS' values (attributes as JSON text)


def staged_attributes(attributes: dict[str, Any]) -> str:
    """Attributes as the JSON text both databases store (SQLAlchemy's own `json.dumps`)."""
    return json.dumps(attributes) if attributes else "{}"


@dataclass
class Staged:
    """What the database made of a batch."""

    unknown: list[tuple[int, str]] = field(default_factory=list)  # line, customer id
    repeated: list[tuple[int, str]] = field(default_factory=list)  # line, id: this import's
    duplicates: int = 0  # ids an earlier import stored
    inserted: int = 0
    inserted_ids: list[str] = field(default_factory=list)  # when asked for


def insert_staged(
    connection: Connection, rows: list[StagedRow], imported_at: datetime, *, ids: bool = False
) -> Staged:
    """Stages `rows` (ids unique within them), reports the rows the stored tables refuse
    and inserts the others, in the caller's transaction. An event id the database
    already holds with this very `imported_at` was stored by an earlier batch of the
    same import: a repeat, not a harmless duplicate."""
    staged = Staged()
    if not rows:
        return staged
    postgres = connection.dialect.name == "postgresql"
    if not postgres:
        _write_lock(connection)
    connection.exec_driver_sql(_CREATE)
    connection.exec_driver_sql(
        "TRUNCATE import_events" if postgres else "DELETE FROM import_events"
    )
    if postgres:
        _copy(connection, rows)
    else:
        _executemany(connection, rows)
    for line, event_id, customer_id, unknown, this_import in connection.execute(
        _CONFLICTS, {"imported_at": imported_at}
    ):
        if unknown:
            staged.unknown.append((line, customer_id))
        elif this_import:
            staged.repeated.append((line, event_id))
        else:
            staged.duplicates += 1
    given = {"imported_at": imported_at}
    if ids:
        staged.inserted_ids = list(connection.execute(_INSERTED_IDS, given).scalars())
        staged.inserted = len(staged.inserted_ids)
    else:
        staged.inserted = connection.execute(_INSERTED, given).rowcount
    return staged


def _write_lock(connection: Connection) -> None:
    """SQLite: the batch takes the write lock before it reads (BEGIN IMMEDIATE, waiting
    its turn behind other writers). Begun as a read, its INSERT would need to upgrade
    the read to a write, which SQLite refuses at once ("database is locked", no wait)
    when another connection wrote in between: the API's reaction worker, say."""
    driver = connection.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _copy(connection: Connection, rows: list[StagedRow]) -> None:
    driver = cast(PsycopgConnection[Any], connection.connection.driver_connection)
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY import_events (line, {_LISTED}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _executemany(connection: Connection, rows: list[StagedRow]) -> None:
    marks = ", ".join("?" * (len(COLUMNS) + 1))
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO import_events VALUES ({marks})",
            [
                (*row[:_OCCURRED_AT], sqlite_time(row[_OCCURRED_AT]), *row[_OCCURRED_AT + 1 :])
                for row in rows
            ],
        )
    finally:
        cursor.close()


def sqlite_time(moment: datetime) -> str:
    """An aware time as SQLAlchemy stores it in SQLite (UTC, microseconds, no offset),
    so stored times compare as text; a third of the cost of SQLAlchemy's processors."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
