"""Rows refused one by one, each with its `FILE:LINE` and a reason a person can act on:
oversized fields, NaN and Infinity, an id twice in one file, times far in the future,
email addresses that are not one valid address. The good rows around them land."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from storage import imports
from storage.imports import RowError, import_customers, import_events
from storage.tables import CUSTOMERS, EVENTS
from tests.factories import add_customer

IMPORTED_AT = datetime(2026, 7, 1, tzinfo=UTC)


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
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    add_customer(engine, "c1")
    rows: list[dict[str, Any] | str] = [login("e1"), login("e2"), login("e3"), login("e1")]
    errors: list[RowError] = []
    report = import_events(
        engine, jsonl(tmp_path / "e.jsonl", rows), imported_at=IMPORTED_AT, on_error=errors.append
    )
    assert reasons(errors) == {
        4: "duplicate id 'e1': an earlier row of this file has it; that row is kept"
    }
    assert (report.inserted, report.rejected) == (3, 1)


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
