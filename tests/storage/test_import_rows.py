"""Rows refused one by one, each with its `FILE:LINE` and a reason a person can act on:
oversized fields, NaN and Infinity, an id twice in one file, times far in the future,
email addresses that are not one valid address. The good rows around them land."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.dialects import sqlite

from storage import imports
from storage.db import make_engine
from storage.event_staging import sqlite_time
from storage.imports import RowError, import_customers, import_events
from storage.migrate import upgrade_database
from storage.tables import CUSTOMERS, EVENTS
from tests.factories import add_customer

IMPORTED_AT = datetime(2026, 7, 1, tzinfo=UTC)
EARLIER = datetime(2026, 6, 30, 12, 0, 0, 123456, tzinfo=UTC)


def jsonl(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def login(event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "customer_id": "c1",
        "type": "login",
        "occurred_at": "2026-06-30T10:00:00+08:00",
        **fields,
    }


def stored(engine: Engine, column: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.scalars(select(column).order_by(column)))


def reasons(errors: list[RowError]) -> dict[int, str]:
    return {error.line: error.reason for error in errors}


def test_an_oversized_csv_field_rejects_its_row_and_the_rows_after_it_land(
    engine: Engine, tmp_path: Path
) -> None:
    rows = ["id,name,notes", "c0,Ann,short"]
    rows.append("c1,Bob," + "x" * 200_000)
    rows += [f"c{n},Name {n},fine" for n in range(2, 1_102)]
    path = tmp_path / "customers.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    errors: list[RowError] = []
    report = import_customers(
        engine, path, default_timezone="Asia/Shanghai", on_error=errors.append
    )
    assert reasons(errors) == {3: "a field is longer than 131,072 characters"}
    assert str(errors[0]).startswith(f"{path}:3: ")
    assert (report.inserted, report.rejected) == (1_101, 1)


def test_an_oversized_json_field_is_refused_with_its_name(engine: Engine, tmp_path: Path) -> None:
    add_customer(engine, "c1")
    path = jsonl(tmp_path / "events.jsonl", [login("e1", note="y" * 131_073), login("e2")])
    errors: list[RowError] = []
    import_events(engine, path, imported_at=IMPORTED_AT, on_error=errors.append)
    assert reasons(errors) == {1: "note: 131,073 characters, at most 131,072"}
    assert stored(engine, EVENTS.c.id) == ["e2"]


def test_nan_and_infinity_are_refused_and_the_row_beside_them_lands(
    engine: Engine, tmp_path: Path
) -> None:
    add_customer(engine, "c1")
    path = jsonl(
        tmp_path / "events.jsonl",
        [
            login("e1", ratio=float("nan")),
            login("e2"),
            login("e3", extra={"deep": [1, float("-inf")]}),
            login("e4", ratio=float("inf")),
        ],
    )
    errors: list[RowError] = []
    report = import_events(engine, path, imported_at=IMPORTED_AT, on_error=errors.append)
    assert reasons(errors) == {
        1: "ratio: NaN is not a number that can be stored",
        3: "extra.deep.1: -Infinity is not a number that can be stored",
        4: "ratio: Infinity is not a number that can be stored",
    }
    assert (report.inserted, report.rejected) == (1, 3)
    assert stored(engine, EVENTS.c.id) == ["e2"]


def test_nan_in_a_customer_attribute_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "c.jsonl", [{"id": "c1", "score": float("nan")}, {"id": "c2"}])
    errors: list[RowError] = []
    import_customers(engine, path, default_timezone="UTC", on_error=errors.append)
    assert reasons(errors) == {1: "score: NaN is not a number that can be stored"}
    assert stored(engine, CUSTOMERS.c.id) == ["c2"]


def test_lines_the_fast_json_parser_refuses_are_read_as_json_reads_them(
    engine: Engine, tmp_path: Path
) -> None:
    """A line pydantic-core refuses (a lone surrogate escape, a JSON array) or that may
    hold NUL or NaN goes the slow way and keeps its outcome; a big integer read by the
    fast parser is what `json.loads` gives."""
    add_customer(engine, "c1")
    lines: list[dict[str, Any] | str] = [
        '{"id": "e1", "customer_id": "c1", "type": "login", '
        '"occurred_at": "2026-06-30T10:00:00+08:00", "note": "\\ud800"}',
        login("e2", note="a\x00b"),
        login("e3", quantity=2**70),
        login("e4", big=2**70),
        '{"id": "e5", "customer_id": "c1", "type": "login", '
        '"occurred_at": "2026-06-30T10:00:00+08:00", "ratio": NaN}',
        "[1, 2]",
        login("e6", when="2026-06-30", empty="  ", gone=None),
    ]
    errors: list[RowError] = []
    path = jsonl(tmp_path / "events.jsonl", lines)
    report = import_events(engine, path, imported_at=IMPORTED_AT, on_error=errors.append)
    assert reasons(errors) == {
        2: "note: text must not contain the NUL character (0x00)",
        3: "quantity: Input should be less than or equal to 2147483647",
        5: "ratio: NaN is not a number that can be stored",
        6: "expected a JSON object",
    }
    assert report.inserted == 3
    with engine.connect() as connection:
        attributes = dict(connection.execute(select(EVENTS.c.id, EVENTS.c.attributes)).all())
    assert attributes == {
        "e1": {"note": "\ud800"},
        "e4": {"big": 2**70},
        "e6": {"when": "2026-06-30"},
    }


def test_an_event_id_twice_in_one_file_keeps_the_first_and_reports_the_second(
    engine: Engine, tmp_path: Path
) -> None:
    add_customer(engine, "c1")
    path = jsonl(
        tmp_path / "events.jsonl",
        [login("e1", device="ios"), login("e2"), login("e1", device="android")],
    )
    errors: list[RowError] = []
    report = import_events(engine, path, imported_at=IMPORTED_AT, on_error=errors.append)
    assert reasons(errors) == {3: "duplicate id 'e1': line 1 has it too; line 1 is kept"}
    assert (report.inserted, report.duplicates, report.rejected) == (2, 0, 1)
    with engine.connect() as connection:
        kept = connection.scalar(select(EVENTS.c.attributes).where(EVENTS.c.id == "e1"))
    assert kept == {"device": "ios"}
    again = import_events(engine, path, imported_at=datetime.now(UTC), on_error=errors.append)
    assert (again.inserted, again.duplicates) == (0, 2)  # already imported: not an error


def test_an_event_id_repeated_in_a_later_batch_is_reported_too(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across batches too: a repeat of this import is rejected with its line, an event an
    earlier import stored is counted, an unknown customer rejects only its row."""
    monkeypatch.setattr(imports, "EVENT_BATCH_SIZE", 2)
    add_customer(engine, "c1")
    import_events(engine, jsonl(tmp_path / "old.jsonl", [login("e0")]), imported_at=EARLIER)
    rows: list[dict[str, Any] | str] = [
        login("e1"),
        login("e2"),
        login("e3"),
        login("e1"),
        login("e0"),
        login("e4", customer_id="c9"),
        login("e5"),
    ]
    errors: list[RowError] = []
    path = jsonl(tmp_path / "e.jsonl", rows)
    report = import_events(engine, path, imported_at=IMPORTED_AT, on_error=errors.append)
    assert reasons(errors) == {
        4: "duplicate id 'e1': an earlier row of this file has it; that row is kept",
        6: "unknown customer 'c9'",
    }
    assert str(errors[-1]) == f"{path}:6: unknown customer 'c9'"
    assert (report.read, report.inserted, report.duplicates, report.rejected) == (7, 4, 1, 2)
    assert stored(engine, EVENTS.c.id) == ["e0", "e1", "e2", "e3", "e5"]
    again = import_events(engine, path, imported_at=datetime.now(UTC))
    assert (again.inserted, again.duplicates, again.rejected) == (0, 6, 1)  # e1 again: batch 1
    assert stored(engine, EVENTS.c.id) == ["e0", "e1", "e2", "e3", "e5"]


def test_a_customer_id_twice_in_one_file_keeps_the_first(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("id,name\nc1,First\nc2,Other\nc1,Second\n", encoding="utf-8")
    errors: list[RowError] = []
    report = import_customers(engine, path, default_timezone="UTC", on_error=errors.append)
    assert reasons(errors) == {4: "duplicate id 'c1': line 2 has it too; line 2 is kept"}
    assert (report.inserted, report.rejected) == (2, 1)
    assert stored(engine, CUSTOMERS.c.name) == ["First", "Other"]


def test_times_beyond_the_horizon_are_refused(engine: Engine, tmp_path: Path) -> None:
    add_customer(engine, "c1")
    soon = (IMPORTED_AT + timedelta(hours=23)).isoformat()
    late = (IMPORTED_AT + timedelta(hours=25)).isoformat()
    path = jsonl(
        tmp_path / "events.jsonl",
        [
            login("e1", occurred_at="2199-01-01T00:00:00Z"),
            login("e2", occurred_at=soon),
            login("e3", occurred_at=late),
        ],
    )
    errors: list[RowError] = []
    import_events(engine, path, imported_at=IMPORTED_AT, on_error=errors.append)
    horizon = "more than 24 hours after the import (RAPPORT_IMPORT_FUTURE_HOURS)"
    assert reasons(errors) == {
        1: f"occurred_at: 2199-01-01T00:00:00+00:00 is {horizon}",
        3: f"occurred_at: 2026-07-02T01:00:00+00:00 is {horizon}",
    }
    assert stored(engine, EVENTS.c.id) == ["e2"]
    later = IMPORTED_AT + timedelta(seconds=1)  # another import
    wider = import_events(engine, path, imported_at=later, future_horizon=timedelta(days=2))
    assert (wider.inserted, wider.rejected) == (1, 1)  # e3 now; 2199 still too far


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (
            "a@b>,<cd.example",
            "email: The part after the @-sign contains invalid characters: ',', '<', '>'.",
        ),
        (
            "Fang <fang@example.cn>",
            "email: A display name and angle brackets around the email address are not"
            " permitted here.",
        ),
        (
            "fang@example.cn, wang@example.cn",
            "email: The part after the @-sign contains invalid characters: ',', '@', SPACE.",
        ),
        ("fang@localhost", "email: The part after the @-sign is not valid. It should have a"),
        ("fang@example", "email: The part after the @-sign is not valid. It should have a"),
        ("用户@例子.test", "email: The part after the @-sign is a special-use or reserved name"),
    ],
)
def test_an_email_must_be_one_valid_address(
    engine: Engine, tmp_path: Path, address: str, reason: str
) -> None:
    path = jsonl(tmp_path / "c.jsonl", [{"id": "c1", "email": address}])
    errors: list[RowError] = []
    import_customers(engine, path, default_timezone="UTC", on_error=errors.append)
    assert [error.reason[: len(reason)] for error in errors] == [reason]


def test_valid_addresses_are_kept_including_international_ones(
    engine: Engine, tmp_path: Path
) -> None:
    addresses = ["fang@example.cn", "用户@例子.中国", "o'brien+news@Example.COM"]
    rows: list[dict[str, Any] | str] = [
        {"id": f"c{n}", "email": address} for n, address in enumerate(addresses)
    ]
    errors: list[RowError] = []
    path = jsonl(tmp_path / "c.jsonl", rows)
    import_customers(engine, path, default_timezone="UTC", on_error=errors.append)
    assert errors == []
    assert stored(engine, CUSTOMERS.c.email) == sorted(
        ["fang@example.cn", "用户@例子.中国", "o'brien+news@example.com"]
    )


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 6, 30, 10, 0, tzinfo=timezone(timedelta(hours=8))),
        datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_staged_sqlite_times_are_stored_as_sqlalchemy_stores_them(moment: datetime) -> None:
    """Stored times compare as text in SQLite: the staging format must be SQLAlchemy's."""
    dialect = sqlite.dialect()
    process = EVENTS.c.occurred_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert sqlite_time(moment) == process(moment)


def test_a_sqlite_batch_waits_its_turn_when_another_writer_commits_meanwhile(
    tmp_path: Path,
) -> None:
    """The API imports while its reaction worker writes. A batch that began as a read
    could not upgrade to a write once another connection had written: SQLite refused
    at once ("database is locked", whatever the timeout)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}")
    upgrade_database(engine)
    add_customer(engine, "c1")
    # The hook runs where the batch is written: the import's writer thread.
    other = sqlite3.connect(tmp_path / "race.db", timeout=0.2, check_same_thread=False)
    wrote: list[str] = []

    def meanwhile(_conn, _cursor, statement: str, *_args: Any) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT s.line") and not wrote:
            try:  # another writer, between the batch's read and its write
                other.execute("UPDATE customers SET locale = 'en' WHERE id = 'c1'")
                other.commit()
                wrote.append("committed")
            except sqlite3.OperationalError as error:
                wrote.append(str(error))

    event.listen(engine, "after_cursor_execute", meanwhile)
    path = tmp_path / "e.jsonl"
    path.write_text(
        '{"id": "e1", "customer_id": "c1", "type": "login", '
        '"occurred_at": "2026-06-01T10:00:00Z"}\n'
    )
    report = import_events(engine, path, imported_at=datetime(2026, 6, 2, tzinfo=UTC))
    other.close()
    assert report.inserted == 1
    assert wrote == ["database is locked"]  # the other writer waited for the batch
