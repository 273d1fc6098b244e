"""`rapport import`: validate rows, then insert them in batches, idempotently.

Events are keyed by their `id`: a row whose id is already stored is counted as a
duplicate and changes nothing, so importing a file twice is harmless. Customers are
upserted by `id`. A bad row is reported with its line and skipped; good rows land.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Engine, select

from storage.dialect import dialect_insert, insert_ignoring_conflicts
from storage.import_rows import CustomerRow, EventRow, RawRow, describe, read_rows
from storage.tables import CUSTOMERS, EVENTS

BATCH_SIZE = 5_000
RowT = TypeVar("RowT", CustomerRow, EventRow)


@dataclass(frozen=True)
class RowError:
    """A rejected row: `FILE:LINE: reason`."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did; `rejected` rows were reported through `on_error`."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    samples: list[RowError] = field(default_factory=list)
    stored_ids: list[str] | None = None  # ids inserted, when asked for (lists, not files)


ErrorSink = Callable[[RowError], None]


class _Importer:
    """Shared batching: validate each raw row, flush every BATCH_SIZE valid rows."""

    def __init__(self, path: Path, report: ImportReport, on_error: ErrorSink | None) -> None:
        self.path, self.report, self.on_error = path, report, on_error

    def reject(self, line: int, reason: str) -> None:
        error = RowError(self.path, line, reason)
        self.report.rejected += 1
        if len(self.report.samples) < 20:
            self.report.samples.append(error)
        if self.on_error is not None:
            self.on_error(error)


def import_customers(
    engine: Engine,
    path: Path,
    *,
    default_timezone: str,
    on_error: ErrorSink | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upserts customers from a CSV or JSON Lines file."""
    return _import_customers(engine, path, read_rows(path, on_bytes), default_timezone, on_error)


def import_customer_list(
    engine: Engine,
    customers: list[dict[str, Any]],
    *,
    default_timezone: str,
    source: str = "request",
    on_error: ErrorSink | None = None,
) -> ImportReport:
    """The same for customers given as objects (an API request body)."""
    return _import_customers(engine, Path(source), _listed(customers), default_timezone, on_error)


def _import_customers(
    engine: Engine,
    path: Path,
    rows: Iterable[RawRow],
    default_timezone: str,
    on_error: ErrorSink | None,
) -> ImportReport:
    report = ImportReport()
    importer = _Importer(path, report, on_error)
    batch: dict[str, dict[str, Any]] = {}
    for raw in rows:
        report.read += 1
        row = _validate(importer, raw, CustomerRow)
        if row is None:
            continue
        values = row.model_dump(exclude=set(row.model_extra or {}))
        values["timezone"] = values["timezone"] or default_timezone
        values["attributes"] = dict(row.model_extra or {})
        batch[row.id] = values  # a later row for the same id wins, as in an upsert
        if len(batch) >= BATCH_SIZE:
            _upsert_customers(engine, batch.values(), report)
            batch.clear()
    _upsert_customers(engine, batch.values(), report)
    return report


def _upsert_customers(engine: Engine, rows: Iterable[dict[str, Any]], report: ImportReport) -> None:
    rows = list(rows)
    if not rows:
        return
    with engine.begin() as connection:
        ids = [row["id"] for row in rows]
        existing = set(connection.scalars(select(CUSTOMERS.c.id).where(CUSTOMERS.c.id.in_(ids))))
        statement = dialect_insert(connection, CUSTOMERS)
        statement = statement.on_conflict_do_update(
            index_elements=[CUSTOMERS.c.id],
            set_={name: statement.excluded[name] for name in rows[0] if name != "id"},
        )
        connection.execute(statement, rows)
    report.updated += len(existing)
    report.inserted += len(rows) - len(existing)


def import_events(
    engine: Engine,
    path: Path,
    *,
    imported_at: datetime,
    on_error: ErrorSink | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> ImportReport:
    """Inserts new events from a CSV or JSON Lines file; known event ids are skipped."""
    return _import_events(engine, path, read_rows(path, on_bytes), imported_at, on_error)


def import_event_list(
    engine: Engine,
    events: list[dict[str, Any]],
    *,
    imported_at: datetime,
    source: str = "request",
    on_error: ErrorSink | None = None,
) -> ImportReport:
    """The same for events given as objects (a flow parameter, an API request body);
    `source` names them in errors, with the 1-based position as the line."""
    return _import_events(
        engine, Path(source), _listed(events), imported_at, on_error, keep_ids=True
    )


def _import_events(
    engine: Engine,
    path: Path,
    rows: Iterable[RawRow],
    imported_at: datetime,
    on_error: ErrorSink | None,
    keep_ids: bool = False,
) -> ImportReport:
    report = ImportReport(stored_ids=[] if keep_ids else None)
    importer = _Importer(path, report, on_error)
    batch: dict[str, tuple[int, dict[str, Any]]] = {}
    for raw in rows:
        report.read += 1
        row = _validate(importer, raw, EventRow)
        if row is None:
            continue
        if missing := row.missing_fields():
            importer.reject(raw.line, f"a {row.type} event needs {', '.join(missing)}")
            continue
        if row.id in batch:
            report.duplicates += 1
            continue
        values = row.model_dump(exclude=set(row.model_extra or {}))
        values["attributes"] = dict(row.model_extra or {})
        values["imported_at"] = imported_at
        batch[row.id] = (raw.line, values)
        if len(batch) >= BATCH_SIZE:
            _insert_events(engine, batch, importer)
            batch.clear()
    _insert_events(engine, batch, importer)
    return report


def _insert_events(
    engine: Engine, batch: dict[str, tuple[int, dict[str, Any]]], importer: _Importer
) -> None:
    if not batch:
        return
    report = importer.report
    with engine.begin() as connection:
        customer_ids = {values["customer_id"] for _, values in batch.values()}
        known = set(
            connection.scalars(select(CUSTOMERS.c.id).where(CUSTOMERS.c.id.in_(customer_ids)))
        )
        stored = set(connection.scalars(select(EVENTS.c.id).where(EVENTS.c.id.in_(list(batch)))))
        rows = []
        for event_id, (line, values) in batch.items():
            if values["customer_id"] not in known:
                importer.reject(line, f"unknown customer {values['customer_id']!r}")
            elif event_id in stored:
                report.duplicates += 1
            else:
                rows.append(values)
        if rows:
            connection.execute(insert_ignoring_conflicts(connection, EVENTS, ["id"]), rows)
    report.inserted += len(rows)
    if report.stored_ids is not None:
        report.stored_ids.extend(row["id"] for row in rows)


def _listed(items: list[dict[str, Any]]) -> Iterator[RawRow]:
    """Objects as import rows: the 1-based position stands for the line."""
    return (RawRow(number, dict(item)) for number, item in enumerate(items, start=1))


def _validate(importer: _Importer, raw: RawRow, model: type[RowT]) -> RowT | None:
    if raw.fields is None:
        importer.reject(raw.line, raw.problem or "unreadable row")
        return None
    try:
        return model.model_validate(raw.fields)
    except ValidationError as error:
        importer.reject(raw.line, describe(error))
        return None
