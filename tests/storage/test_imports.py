"""`rapport import`: bad rows reported by line, good rows land, re-import changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, Table, func, select

from storage.imports import RowError, import_customers, import_events
from storage.models import Customer, Event
from storage.tables import CUSTOMERS, EVENTS

IMPORTED_AT = datetime(2026, 7, 1, tzinfo=UTC)

CUSTOMERS_CSV = """\
id,name,email,segment,birthday,locale,timezone,consent_email,consent_sms,city
C1,王芳,fang@example.cn,consumer,1990-03-02,zh-CN,,true,false,杭州
C2,Emma Clark,emma@example.com,enterprise,,en,Europe/London,yes,no,London
C3,Bad Zone,,consumer,,en,Mars/Olympus,true,true,
C4,Bad Segment,,reseller,,en,,true,true,
"""


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def load_customers(engine: Engine, tmp_path: Path) -> None:
    report = import_customers(
        engine, write(tmp_path / "customers.csv", CUSTOMERS_CSV), default_timezone="Asia/Shanghai"
    )
    assert (report.inserted, report.rejected) == (2, 2)


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def test_customers_csv_keeps_extra_columns_and_reports_bad_rows(engine: Engine, tmp_path: Path):
    errors: list[RowError] = []
    path = write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    report = import_customers(
        engine, path, default_timezone="Asia/Shanghai", on_error=errors.append
    )
    assert (report.read, report.inserted, report.updated, report.rejected) == (4, 2, 0, 2)
    assert [(error.line, error.reason.split(":")[0]) for error in errors] == [
        (4, "timezone"),
        (5, "segment"),
    ]
    assert str(errors[0]).startswith(f"{path}:4: timezone:")
    with engine.connect() as connection:
        fang = connection.execute(select(CUSTOMERS).where(Customer.id == "C1")).one()
        emma = connection.execute(select(CUSTOMERS).where(Customer.id == "C2")).one()
    assert fang.timezone == "Asia/Shanghai" and emma.timezone == "Europe/London"
    assert fang.attributes == {"city": "杭州"} and fang.name == "王芳"
    assert (fang.consent_email, fang.consent_sms, emma.consent_email) == (True, False, True)
    assert fang.birthday.isoformat() == "1990-03-02" and emma.birthday is None


def test_customer_reimport_updates_in_place(engine: Engine, tmp_path: Path) -> None:
    load_customers(engine, tmp_path)
    changed = CUSTOMERS_CSV.replace("fang@example.cn", "fang@example.org")
    report = import_customers(
        engine, write(tmp_path / "again.csv", changed), default_timezone="Asia/Shanghai"
    )
    assert (report.inserted, report.updated) == (0, 2)
    assert count(engine, CUSTOMERS) == 2
    with engine.connect() as connection:
        assert connection.scalar(select(Customer.email).where(Customer.id == "C1")) == (
            "fang@example.org"
        )


EVENT_LINES = [
    {
        "id": "e1",
        "customer_id": "C1",
        "type": "purchase",
        "occurred_at": "2026-06-01T10:00:00+08:00",
        "amount": 120.5,
        "product": "grinder",
        "coupon": "SUMMER",
    },
    {"id": "e2", "customer_id": "C1", "type": "login", "occurred_at": "2026-06-02T10:00:00+08:00"},
    "{not json",
    {"id": "e3", "customer_id": "C1", "type": "purchase", "occurred_at": "2026-06-03T10:00:00Z"},
    {"id": "e4", "customer_id": "C9", "type": "login", "occurred_at": "2026-06-03T10:00:00Z"},
    {"id": "e5", "customer_id": "C2", "type": "login", "occurred_at": "2026-06-03T10:00:00"},
    {
        "id": "e6",
        "customer_id": "C2",
        "type": "survey",
        "occurred_at": "2026-06-04T09:00:00+01:00",
        "score": 11,
    },
    {
        "id": "e1",
        "customer_id": "C1",
        "type": "purchase",
        "occurred_at": "2026-06-01T10:00:00+08:00",
        "amount": 120.5,
    },
    {
        "id": "e7",
        "customer_id": "C2",
        "type": "feedback",
        "occurred_at": "2026-06-05T09:00:00+01:00",
        "level": "major",
        "category": "complaint",
        "text": "Group order arrived broken",
    },
]


def events_file(tmp_path: Path) -> Path:
    lines = [item if isinstance(item, str) else json.dumps(item) for item in EVENT_LINES]
    body = "\n".join(lines).encode() + b"\n" + b'{"id": "e8", "text": "caf\xe9"}\n'
    return write(tmp_path / "events.jsonl", body)


def test_events_bad_rows_reported_by_line_good_rows_land(engine: Engine, tmp_path: Path) -> None:
    load_customers(engine, tmp_path)
    errors: list[RowError] = []
    report = import_events(
        engine, events_file(tmp_path), imported_at=IMPORTED_AT, on_error=errors.append
    )
    reasons = {error.line: error.reason for error in errors}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 10]
    assert reasons[3].startswith("invalid JSON")
    assert reasons[4] == "a purchase event needs amount"
    assert reasons[5] == "unknown customer 'C9'"
    assert reasons[6].startswith("occurred_at: Input should have timezone info")
    assert reasons[7].startswith("score: Input should be less than or equal to 10")
    assert reasons[8] == "duplicate id 'e1': line 1 has it too; line 1 is kept"
    assert reasons[10] == "not valid UTF-8"
    assert (report.read, report.inserted, report.duplicates, report.rejected) == (10, 3, 0, 7)
    with engine.connect() as connection:
        e1 = connection.execute(select(EVENTS).where(Event.id == "e1")).one()
    assert e1.attributes == {"coupon": "SUMMER"}
    assert e1.occurred_at == datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


def test_importing_the_same_events_twice_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    load_customers(engine, tmp_path)
    first = import_events(engine, events_file(tmp_path), imported_at=IMPORTED_AT)
    with engine.connect() as connection:
        before = connection.execute(select(EVENTS).order_by(Event.id)).all()
    second = import_events(engine, events_file(tmp_path), imported_at=datetime.now(UTC))
    with engine.connect() as connection:
        after = connection.execute(select(EVENTS).order_by(Event.id)).all()
    assert first.inserted == 3 and second.inserted == 0
    assert second.duplicates == 3  # e1, e2, e7; e1's repeat on line 8 is rejected again
    assert before == after


def test_events_csv(engine: Engine, tmp_path: Path) -> None:
    load_customers(engine, tmp_path)
    csv_text = (
        "id,customer_id,type,occurred_at,amount,channel,level,text\n"
        'x1,C1,contact,2026-06-01T09:00:00+08:00,,phone,,"Called, all good"\n'
        "x2,C1,refund,2026-06-02T09:00:00+08:00,30,,,\n"
        "x3,C1,contact,2026-06-02T09:00:00+08:00,,fax,,\n"
        'x4,C1,feedback,2026-06-02T09:00:00+08:00,,,general,"multi\nline"\n'
        "x5,C1,login\n"
    )
    errors: list[RowError] = []
    report = import_events(
        engine,
        write(tmp_path / "events.csv", csv_text),
        imported_at=IMPORTED_AT,
        on_error=errors.append,
    )
    assert report.inserted == 3
    assert [(error.line, error.reason.split(":")[0]) for error in errors] == [
        (4, "channel"),
        (7, "expected 8 columns, found 3"),
    ]
    with engine.connect() as connection:
        text = connection.scalar(select(Event.text).where(Event.id == "x4"))
    assert text == "multi\nline"


def test_unsupported_file_type_is_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported file type"):
        import_events(engine, write(tmp_path / "events.xlsx", "x"), imported_at=IMPORTED_AT)


def customer(engine: Engine, customer_id: str) -> dict[str, object]:
    with engine.connect() as connection:
        row = connection.execute(select(CUSTOMERS).where(Customer.id == customer_id)).mappings()
        return dict(row.one())


def test_an_update_keeps_what_the_row_does_not_mention(engine: Engine, tmp_path: Path) -> None:
    load_customers(engine, tmp_path)
    path = write(tmp_path / "city.jsonl", '{"id": "C1", "city": "上海", "tier_note": "vip"}\n')
    report = import_customers(engine, path, default_timezone="UTC")
    assert (report.inserted, report.updated) == (0, 1)
    fang = customer(engine, "C1")
    assert (fang["name"], fang["email"], fang["timezone"]) == (
        "王芳",
        "fang@example.cn",
        "Asia/Shanghai",
    )
    assert (fang["consent_email"], fang["segment"]) == (True, "consumer")
    assert fang["attributes"] == {"city": "上海", "tier_note": "vip"}


def test_an_explicit_null_clears_and_an_empty_cell_clears(engine: Engine, tmp_path: Path) -> None:
    load_customers(engine, tmp_path)
    nulls = '{"id": "C1", "email": null, "consent_email": null, "city": null}\n'
    import_customers(engine, write(tmp_path / "null.jsonl", nulls), default_timezone="UTC")
    fang = customer(engine, "C1")
    assert (fang["email"], fang["consent_email"], fang["attributes"]) == (None, False, {})
    assert fang["name"] == "王芳"  # not mentioned: kept
    cells = "id,name,timezone,segment\nC2,,,\n"
    import_customers(engine, write(tmp_path / "cells.csv", cells), default_timezone="UTC")
    emma = customer(engine, "C2")
    assert (emma["name"], emma["timezone"], emma["segment"]) == (None, "UTC", "consumer")
    assert emma["email"] == "emma@example.com"  # no such column: kept
