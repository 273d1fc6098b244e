"""The outbox: idempotent planning, claiming with leases, safe concurrent dispatchers."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import Engine, func, select

from storage.models import OutboxMessage
from storage.outbox import claim_due, mark_sent, postpone, store_messages
from storage.planned import PlannedMessage
from tests.factories import NOW, add_customer

LEASE = timedelta(minutes=5)


def planned(count: int, due_in: timedelta = timedelta(0)) -> list[PlannedMessage]:
    return [
        PlannedMessage(
            f"rule.0:c1:every:604800s:{n}",
            "c1",
            "rule",
            "tpl",
            ("wechat", "email"),
            "marketing",
            NOW + due_in,
            None,
        )
        for n in range(count)
    ]


def rows(engine: Engine, status: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == status)
        )


def test_planning_twice_adds_nothing(engine: Engine) -> None:
    add_customer(engine, "c1")
    with engine.begin() as connection:
        assert store_messages(connection, planned(10), NOW) == 10
    with engine.begin() as connection:
        assert store_messages(connection, planned(12), NOW) == 2
    assert rows(engine, "pending") == 12


def test_claims_only_due_rows_and_each_row_once(engine: Engine) -> None:
    add_customer(engine, "c1")
    with engine.begin() as connection:
        store_messages(connection, planned(5), NOW)
        store_messages(
            connection,
            [PlannedMessage("later", "c1", "rule", "tpl", (), "service", NOW + LEASE, None)],
            NOW,
        )
    first = claim_due(engine, "a", NOW, LEASE, limit=3)
    second = claim_due(engine, "b", NOW, LEASE, limit=10)
    assert len(first) == 3 and len(second) == 2
    assert not {m.id for m in first} & {m.id for m in second}
    assert first[0].channels == ("wechat", "email") and first[0].attempts == 1
    assert claim_due(engine, "c", NOW, LEASE, limit=10) == []
    assert rows(engine, "sending") == 5 and rows(engine, "pending") == 1


def test_a_dead_dispatchers_rows_are_reclaimed_after_the_lease(engine: Engine) -> None:
    add_customer(engine, "c1")
    with engine.begin() as connection:
        store_messages(connection, planned(2), NOW)
    taken = claim_due(engine, "dead", NOW, LEASE, limit=10)
    assert claim_due(engine, "alive", NOW + LEASE - timedelta(seconds=1), LEASE, 10) == []
    again = claim_due(engine, "alive", NOW + LEASE + timedelta(seconds=1), LEASE, limit=10)
    assert [m.key for m in again] == [m.key for m in taken]
    assert again[0].attempts == 2
    with engine.begin() as connection:
        assert not mark_sent(connection, again[0].id, "dead", "email", "250 ok", NOW)
        assert mark_sent(connection, again[0].id, "alive", "email", "250 ok", NOW)
    assert rows(engine, "sent") == 1


def test_postponed_rows_come_back_when_due(engine: Engine) -> None:
    add_customer(engine, "c1")
    with engine.begin() as connection:
        store_messages(connection, planned(1), NOW)
    (message,) = claim_due(engine, "a", NOW, LEASE, limit=1)
    with engine.begin() as connection:
        assert postpone(connection, message.id, "a", NOW, NOW + timedelta(hours=11), "quiet_hours")
    assert claim_due(engine, "a", NOW + timedelta(hours=10), LEASE, limit=1) == []
    assert len(claim_due(engine, "a", NOW + timedelta(hours=11), LEASE, limit=1)) == 1


def test_concurrent_dispatchers_never_claim_the_same_row(engine: Engine) -> None:
    add_customer(engine, "c1")
    with engine.begin() as connection:
        store_messages(connection, planned(600), NOW)
    claimed: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def work(worker: str) -> None:
        while batch := claim_due(engine, worker, NOW, LEASE, limit=25):
            claimed[worker].extend(message.id for message in batch)

    threads = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for ids in claimed.values() for i in ids]
    assert len(everything) == len(set(everything)) == 600
