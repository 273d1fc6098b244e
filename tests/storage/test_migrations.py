"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from storage.migrate import check_schema, upgrade_database
from storage.tables import MESSAGES, TASKS
from tests.factories import add_customer


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
    assert {"customers", "events", "outbox_messages", "staff_tasks"} <= set(
        inspect(engine).get_table_names()
    )


def test_upgrade_is_repeatable_and_schema_check_passes(engine: Engine) -> None:
    upgrade_database(engine)
    check_schema(engine)


def test_outbox_and_task_keys_are_unique(engine: Engine) -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    add_customer(engine, "c1")
    message = {
        "key": "rule:c1:2026-07",
        "customer_id": "c1",
        "rule_id": "rule",
        "channel": "email",
        "template": "t",
        "purpose": "marketing",
        "status": "pending",
        "due_at": now,
        "attempts": 0,
        "created_at": now,
    }
    task = {
        "key": "rule:c1:2026-07",
        "customer_id": "c1",
        "rule_id": "rule",
        "kind": "call",
        "owner_role": "account_manager",
        "ledger": False,
        "status": "open",
        "due_at": now,
        "created_at": now,
    }
    for table, row in ((MESSAGES, message), (TASKS, task)):
        with engine.begin() as connection:
            connection.execute(insert(table), [row])
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(table), [row])
