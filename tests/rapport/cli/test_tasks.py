"""Staff tasks: planned once, listed by owner and lateness, ledger items need a note."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from rapport.cli.app import app
from rapport.services.settings import get_settings
from storage.models import Event, StaffTask
from storage.planned import PlannedTask
from storage.tables import TASKS
from storage.tasks import (
    TaskNotClosable,
    close_task,
    list_tasks,
    raise_overdue_events,
    store_tasks,
)
from tests.factories import NOW, add_customer


def task(key: str, owner_role: str, due_in: timedelta, ledger: bool = False) -> PlannedTask:
    return PlannedTask(
        key,
        "c1",
        "rule",
        "call",
        owner_role,
        None,
        NOW + due_in,
        "customer confirms the fix" if ledger else None,
        ledger,
        None,
    )


def seed(engine: Engine) -> None:
    add_customer(engine, "c1")
    with engine.begin() as connection:
        assert (
            store_tasks(
                connection,
                [
                    task("a", "management", timedelta(hours=48), ledger=True),
                    task("b", "customer_service", timedelta(hours=-2)),
                    task("c", "account_manager", timedelta(days=3)),
                ],
                NOW,
            )
            == 3
        )
        assert store_tasks(connection, [task("a", "management", timedelta(hours=1))], NOW) == 0


def test_listing_by_owner_and_lateness(engine: Engine) -> None:
    seed(engine)
    with engine.connect() as connection:
        everything = list_tasks(connection, NOW)
        late = list_tasks(connection, NOW, overdue=True)
        management = list_tasks(connection, NOW, owner="management")
    assert [t.owner_role for t in everything] == [
        "customer_service",
        "management",
        "account_manager",
    ]
    assert [t.owner_role for t in late] == ["customer_service"]
    assert [t.ledger for t in management] == [True]


def test_a_ledger_item_closes_only_with_an_acceptance_note(engine: Engine) -> None:
    seed(engine)
    with engine.connect() as connection:
        (ledger,) = list_tasks(connection, NOW, owner="management")
    for note in (None, "   "):
        with pytest.raises(TaskNotClosable, match="remediation-ledger"), engine.begin() as c:
            close_task(c, ledger.id, note, NOW)
    with engine.begin() as connection:
        close_task(connection, ledger.id, "Replacement delivered; customer confirmed", NOW)
    with pytest.raises(TaskNotClosable, match="already closed"), engine.begin() as connection:
        close_task(connection, ledger.id, "again", NOW)
    with engine.connect() as connection:
        row = connection.execute(select(TASKS).where(StaffTask.id == ledger.id)).one()
    assert (row.status, row.acceptance_note) == (
        "closed",
        "Replacement delivered; customer confirmed",
    )


def test_tasks_commands(cli_engine: Engine) -> None:
    seed(cli_engine)
    runner = CliRunner()
    listed = runner.invoke(app, ["tasks", "list", "--owner", "management"])
    assert listed.exit_code == 0 and "1 open task," in listed.output
    refused = runner.invoke(app, ["tasks", "close", "1"])
    assert refused.exit_code == 1 and "remediation-ledger item" in refused.output
    closed = runner.invoke(app, ["tasks", "close", "1", "--note", "Verified with the customer"])
    assert closed.exit_code == 0 and "task 1 closed" in closed.output


def test_overdue_tasks_raise_one_event_each(engine: Engine) -> None:
    seed(engine)
    with engine.begin() as connection:
        assert len(raise_overdue_events(connection, NOW)) == 1
        assert raise_overdue_events(connection, NOW + timedelta(hours=1)) == []
        assert len(raise_overdue_events(connection, NOW + timedelta(days=2, hours=1))) == 1
    with engine.connect() as connection:
        events = connection.execute(
            select(Event.id, Event.occurred_at, Event.attributes)
            .where(Event.type == "task_overdue")
            .order_by(Event.occurred_at)
        ).all()
    with engine.connect() as connection:
        ids = dict(connection.execute(select(StaffTask.key, StaffTask.id)).all())
    assert [e.id for e in events] == [f"overdue:{ids['b']}", f"overdue:{ids['a']}"]
    assert events[0].occurred_at == NOW - timedelta(hours=2)
    assert events[1].attributes["owner_role"] == "management"


def test_an_account_manager_task_is_assigned_to_the_customers_manager(engine: Engine) -> None:
    """A task for the role a customer attribute names goes to that person and keeps
    the role for routing; without a named person it waits in the role's queue."""
    add_customer(engine, "c1", account_manager="chen.hv")
    add_customer(engine, "c2")
    call = task("m1", "account_manager", timedelta(days=3))
    orphan = PlannedTask(**{**call.__dict__, "key": "m2", "customer_id": "c2"})
    with engine.begin() as connection:
        store_tasks(connection, [call, orphan, task("s1", "management", timedelta(days=1))], NOW)
    with engine.connect() as connection:
        mine = list_tasks(connection, NOW, owner="chen.hv")
        queue = list_tasks(connection, NOW, role="account_manager")
    assert [(t.customer_id, t.owner, t.owner_role) for t in mine] == [
        ("c1", "chen.hv", "account_manager")
    ]
    assert sorted((t.customer_id, t.owner) for t in queue) == [("c1", "chen.hv"), ("c2", None)]


def test_an_escalation_keeps_the_department(engine: Engine) -> None:
    add_customer(engine, "c1")
    item = PlannedTask(
        "r1",
        "c1",
        "rule",
        "feedback_remediation",
        "technical",
        "Technical support",
        NOW + timedelta(hours=24),
        "fixed and confirmed",
        True,
        "fb1",
    )
    with engine.begin() as connection:
        store_tasks(connection, [item], NOW)
        (overdue_id,) = connection.scalars(select(TASKS.c.id))
        escalation = PlannedTask(
            "r2",
            "c1",
            "up",
            "escalation",
            "management",
            None,
            NOW + timedelta(hours=72),
            "the department let it slip",
            False,
            f"overdue:{overdue_id}",
            escalates=overdue_id,
        )
        store_tasks(connection, [escalation], NOW + timedelta(hours=25))
    with engine.connect() as connection:
        (taken_over,) = list_tasks(connection, NOW, role="management")
    assert (taken_over.department, taken_over.ledger) == ("Technical support", True)


def test_tasks_list_filters_by_person_and_by_role(cli_engine: Engine) -> None:
    engine = cli_engine
    add_customer(engine, "c1", account_manager="chen.hv")
    with engine.begin() as connection:
        store_tasks(connection, [task("m1", "account_manager", timedelta(days=3))], NOW)
    runner = CliRunner()
    by_person = runner.invoke(app, ["tasks", "list", "--owner", "chen.hv"])
    assert by_person.exit_code == 0 and "1 open task," in by_person.output, by_person.output
    by_role = runner.invoke(app, ["tasks", "list", "--role", "account_manager"])
    assert by_role.exit_code == 0 and "1 open task," in by_role.output, by_role.output


def test_tasks_list_reads_in_local_time_as_of_a_moment_with_a_limit(cli_engine: Engine) -> None:
    """Due times as the staff read them (RAPPORT_TIMEZONE, or --tz), lateness as of
    --as-of, and a long list cut at --limit with a count of the rest."""
    seed(cli_engine)
    runner = CliRunner(env={"COLUMNS": "200"})
    as_of = ["--as-of", NOW.isoformat()]

    listed = runner.invoke(app, ["tasks", "list", *as_of])
    assert listed.exit_code == 0, listed.output
    assert "Jun 30, 2026 6:00\u202fPM (overdue)" in listed.output  # NOW - 2 h, in Shanghai
    assert listed.output.count("(overdue)") == 1
    assert "Z" not in listed.output.replace("Asia/Shanghai", "")
    later = runner.invoke(app, ["tasks", "list", "--as-of", (NOW + timedelta(days=4)).isoformat()])
    assert later.output.count("(overdue)") == 3
    utc = runner.invoke(app, ["tasks", "list", *as_of, "--tz", "UTC"])
    assert "Jun 30, 2026 10:00\u202fAM (overdue)" in utc.output
    cut = runner.invoke(app, ["tasks", "list", *as_of, "--limit", "1"])
    assert "customer_service" in cut.output and "management" not in cut.output
    assert "2 more not shown" in cut.output

    as_json = runner.invoke(app, ["tasks", "list", *as_of, "--json", "--limit", "2"])
    found = json.loads(as_json.output)
    assert found["open"] == 3 and len(found["tasks"]) == 2
    first = found["tasks"][0]
    assert first["owner_role"] == "customer_service" and first["overdue"] is True
    assert datetime.fromisoformat(first["due_at"]) == NOW - timedelta(hours=2)


def test_tasks_list_in_the_staff_language(
    cli_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RAPPORT_STAFF_LOCALE=zh-CN (the default outside tests): title, columns, due times
    and the lateness mark in Chinese, dates as zh-CN writes them."""
    seed(cli_engine)
    monkeypatch.setenv("RAPPORT_STAFF_LOCALE", "zh-CN")
    get_settings.cache_clear()
    runner = CliRunner(env={"COLUMNS": "200"})

    listed = runner.invoke(app, ["tasks", "list", "--as-of", NOW.isoformat(), "--limit", "2"])
    assert listed.exit_code == 0, listed.output
    assert "3 项未关闭任务，截止时间为 Asia/Shanghai" in listed.output
    assert "截止时间" in listed.output and "负责人" in listed.output
    assert "2026年6月30日 18:00（逾期）" in listed.output  # NOW - 2 h, in Shanghai
    assert "另有 1 项未显示（--limit 2）" in listed.output
    assert "overdue" not in listed.output


def test_tasks_show_tells_the_whole_task(cli_engine: Engine) -> None:
    seed(cli_engine)
    runner = CliRunner(env={"COLUMNS": "200"})
    shown = runner.invoke(app, ["tasks", "show", "1"])
    assert shown.exit_code == 0, shown.output
    assert "management" in shown.output and "customer confirms the fix" in shown.output
    as_json = json.loads(runner.invoke(app, ["tasks", "show", "1", "--json"]).output)
    assert as_json["id"] == 1 and as_json["ledger"] is True and as_json["status"] == "open"
    missing = runner.invoke(app, ["tasks", "show", "99"])
    assert missing.exit_code == 1 and "no task 99" in missing.output
