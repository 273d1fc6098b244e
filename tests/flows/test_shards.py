"""Sharded evaluation in this process (what embedded mode, `rapport serve` and the
ephemeral API run): the shards together are exactly one evaluation, a failed shard
runs again without adding anything twice, and shards are told no customer id.

The same shards as flow runs of a deployment on a work pool: tests/flows/test_deploy.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from rapport.services.settings import get_settings
from storage.shards import finish_shard
from storage.tables import CUSTOMERS, EVENTS, FIRINGS, MESSAGES, TASKS
from tests.conftest import fresh_engine
from tests.flows.test_flows import AS_OF, configure, latest_artifact, sample
from tests.paths import ROOT

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path) -> Engine:
    configure(monkeypatch, engine, tmp_path, 25)  # nothing is sent here
    yield engine
    get_settings.cache_clear()


def outcome(engine: Engine) -> dict[str, list[Any]]:
    """Everything an evaluation writes, comparable across databases."""
    with engine.connect() as connection:
        return {
            "firings": sorted(
                connection.execute(
                    select(
                        FIRINGS.c.revision,
                        FIRINGS.c.rule_id,
                        FIRINGS.c.customer_id,
                        FIRINGS.c.event_id,
                        FIRINGS.c.held_out,
                    )
                ).all()
            ),
            "messages": sorted(
                connection.execute(
                    select(MESSAGES.c.key, MESSAGES.c.status, MESSAGES.c.template)
                ).all()
            ),
            "tasks": sorted(
                connection.execute(select(TASKS.c.key, TASKS.c.owner_role, TASKS.c.kind)).all()
            ),
            "events": sorted(connection.execute(select(EVENTS.c.id, EVENTS.c.type)).all()),
        }


def shard_runs(parent: str) -> list[dict[str, Any]]:
    """The evaluate-shard flow runs of one evaluate-rules run, as the API lists them."""
    from prefect.settings import PREFECT_API_URL

    response = httpx.post(
        f"{PREFECT_API_URL.value()}/flow_runs/filter",
        json={"flows": {"name": {"any_": ["evaluate-shard"]}}, "limit": 200},
    )
    response.raise_for_status()
    return [r for r in response.json() if r["parameters"].get("run_id") == parent]


def evaluate(**parameters: Any) -> tuple[dict[str, Any], str, Any]:
    """Runs evaluate-rules; its figures, its flow run id and its final state."""
    from flows.evaluate import evaluate_rules

    state = evaluate_rules(as_of=AS_OF.isoformat(), batch_size=10, return_state=True, **parameters)
    parent = str(state.state_details.flow_run_id)
    return (state.result() if state.is_completed() else {}), parent, state


def test_three_shards_write_and_count_what_one_shard_does(
    configured: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample(configured, tmp_path, customers=60)
    figures, parent, _ = evaluate(shards=3)
    sharded = outcome(configured)
    runs = shard_runs(parent)
    assert sorted(r["parameters"]["shard"] for r in runs) == [0, 1, 2]
    assert {r["state_type"] for r in runs} == {"COMPLETED"}
    fired = {
        row["rule"]: row["count"] for row in json.loads(str(latest_artifact("evaluate-firings")))
    }

    again = fresh_engine(configured.dialect.name, tmp_path / "one")
    configure(monkeypatch, again, tmp_path / "one", 25)
    sample(again, tmp_path / "one", customers=60)
    one_figures, one_parent, _ = evaluate(shards=1)
    assert len(shard_runs(one_parent)) == 1
    assert figures == one_figures
    assert figures["customers"] == 60 and figures["messages planned"] > 0
    assert outcome(again) == sharded
    assert sum(fired.values()) == figures["firings"] == len(sharded["firings"])
    assert figures["messages planned"] == len(sharded["messages"])
    assert figures["tasks opened"] == len(sharded["tasks"])
    again.dispose()


def test_a_shard_that_failed_runs_again_and_counts_each_thing_once(
    configured: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shard fails after its batches committed; its rerun adds nothing to the
    database, and the figures still count what its first run wrote."""
    import flows.evaluate

    sample(configured, tmp_path, customers=40)
    failed: list[int] = []

    def flaky_finish(connection: Any, run_id: str, shard: int, *rest: Any) -> None:
        if shard == 1 and not failed:
            failed.append(shard)
            raise ConnectionError("the database went away (injected)")
        finish_shard(connection, run_id, shard, *rest)

    monkeypatch.setattr(flows.evaluate, "finish_shard", flaky_finish)
    figures, parent, state = evaluate(shards=2)
    assert state.is_completed() and failed == [1]
    attempts = sorted((r["parameters"]["shard"], r["state_type"]) for r in shard_runs(parent))
    assert attempts == [(0, "COMPLETED"), (1, "COMPLETED"), (1, "FAILED")]
    written = outcome(configured)
    assert figures["customers"] == 40
    assert figures["firings"] == len(written["firings"]) > 0
    assert figures["messages planned"] == len(written["messages"]) > 0
    assert figures["tasks opened"] == len(written["tasks"])


def test_a_shard_that_keeps_failing_fails_the_evaluation_by_name(
    configured: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.evaluate

    sample(configured, tmp_path, customers=10)

    def broken(connection: Any, run_id: str, shard: int, *rest: Any) -> None:
        if shard == 0:
            raise ConnectionError("the database went away (injected)")
        finish_shard(connection, run_id, shard, *rest)

    monkeypatch.setattr(flows.evaluate, "finish_shard", broken)
    _, parent, state = evaluate(shards=2)
    assert state.is_failed()
    with pytest.raises(Exception, match=r"^shard 0 failed: Failed: .*database went away"):
        state.result()
    assert [r["parameters"]["shard"] for r in shard_runs(parent)].count(0) == 3  # 2 reruns


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_shards_are_told_no_customer_id(configured: Engine, tmp_path: Path) -> None:
    sample(configured, tmp_path, customers=12)
    _, parent, _ = evaluate(shards=2)
    runs = shard_runs(parent)
    with configured.connect() as connection:
        ids = set(connection.scalars(select(CUSTOMERS.c.id)))
    for run in runs:
        assert set(run["parameters"]) == {
            "run_id",
            "shard",
            "shards",
            "as_of",
            "revision",
            "batch_size",
        }
        told = json.dumps(run["parameters"])
        assert not [i for i in ids if i in told]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_shard_runs_its_parents_revision_after_the_rules_changed(
    configured: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent recorded revision A; the rules are edited (B is now in force) before
    a shard starts: the shard still evaluates with A."""
    from flows.context import flow_context
    from flows.evaluate import evaluate_shard

    sample(configured, tmp_path, customers=20)
    first = flow_context(AS_OF.isoformat()).ruleset.revision
    edited = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", edited)
    with (edited / "cadence.yaml").open("a", encoding="utf-8") as rules:
        rules.write("\n# edited while the shards ran\n")
    monkeypatch.setenv("RAPPORT_RULES_DIR", str(edited))
    get_settings.cache_clear()
    assert flow_context(AS_OF.isoformat()).ruleset.revision != first  # B is in force
    figures = evaluate_shard(
        run_id="test-run", shard=0, shards=1, as_of=AS_OF.isoformat(), revision=first
    )
    assert figures["firings"] > 0
    with configured.connect() as connection:
        revisions = set(connection.scalars(select(FIRINGS.c.revision).distinct()))
        count = connection.scalar(select(func.count()).select_from(FIRINGS))
    assert revisions == {first} and count == figures["firings"]
