"""Prefect's share of a run: evaluate + dispatch over every customer, with and without flows.

Run as `python -m bench.prefect_share [--max-batches N] [--rounds R]`; prints one JSON
object last.

Method. The storage benchmark's `var/bench/bench.db` (100,000 customers, ~2M events)
is copied once with SQLite's backup API, migrated to the newest schema and cleared of
anything an earlier run planned (firings, outbox, staff tasks, and the events Rapport
itself writes: `rapport:` contacts, `step:` steps, `overdue:` task events). Every run
of a side then gets its own copy of that base, so all start from the same state, and
runs in a fresh process of its own with the same environment, the same imports
(Prefect's included) and a loopback SMTP sink of its own (`rapport.demo.smtp_sink`);
channels other than email write files to a scratch outbox folder, all under
`var/bench/prefect-share/` (removed at the end). The clock is fixed a day after the
data ends at 04:00 UTC, noon in Shanghai, so quiet hours defer few messages.

- Direct: what the flows call, in the same units: the settings, the schema check and
  the rules in force (as `flows.context.flow_context` does), `Evaluator(ruleset)`, then
  `evaluate_customers(..., record=True)` once per batch of 5,000 customer ids; then the
  same context again and `dispatch_once` in batches of 500 until a batch claims nothing,
  with the senders of `build_senders(get_settings())`.
- Flows: `evaluate_rules(as_of, batch_size=5000)` then
  `asyncio.run(dispatch_outbox(as_of, batch_size=500))`, against Prefect's temporary
  local server (ephemeral mode, the default without `PREFECT_API_URL`). The server is
  started before the clock by a no-op flow with one no-op task, so its start-up
  (~10 s) is not counted; it gets a fresh `PREFECT_HOME` under the scratch folder, so
  every run starts from an empty Prefect database and none of it lands in `~/.prefect`.
  Prefect keeps its default settings otherwise (INFO run logs sent to the API,
  artifacts, the flow heartbeat thread); only its server analytics are off.

Each run's evaluate and dispatch phases are timed with `perf_counter`. The sides run in
the order direct, flows, flows, direct (`--rounds 2`), so a machine that slows down or
speeds up over the run weighs on both alike, and each side's best time per phase
counts; the ratio flows ÷ direct of the best totals is Prefect's share (goal: under
1.10). Every run must end with the same figures — firings, messages planned, tasks,
outcomes per status and channel, rows per status in the database, messages at the sink
and files written — or the benchmark fails.

100,000 customers plan ~176,000 messages, whose dispatch takes ~7 minutes per run, so
by default the dispatch stops after 30 batches of 500 (15,000 messages, the same ones
on every run: claims go by due time, then id) and the output says so;
`--max-batches 0` dispatches until nothing is due.
"""

from __future__ import annotations

import os

# Before anything imports Prefect (the flows below do): no telemetry from the server.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import datetime  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import prefect  # noqa: E402
from prefect import flow, task  # noqa: E402
from sqlalchemy import Engine, func, select, text  # noqa: E402

from actions.dispatch import DispatchReport, dispatch_batches, dispatch_once  # noqa: E402
from actions.templates import Templates  # noqa: E402
from bench.databases import prepare_base, sqlite_copy  # noqa: E402
from engine.evaluate import Evaluator  # noqa: E402
from engine.model import RuleSet  # noqa: E402
from flows import context as flow_context_module  # noqa: E402
from flows.context import moment  # noqa: E402
from flows.dispatch import dispatch_outbox  # noqa: E402
from flows.dispatch import figures as dispatch_figures  # noqa: E402
from flows.evaluate import evaluate_rules, run_figures  # noqa: E402
from rapport.demo.smtp_sink import LOOPBACK, running_sink  # noqa: E402
from rapport.services.delivery import build_senders, dispatch_settings  # noqa: E402
from rapport.services.rules import rules_in_force  # noqa: E402
from rapport.services.scheduled import RunSummary, evaluate_customers  # noqa: E402
from rapport.services.settings import Settings, get_settings  # noqa: E402
from storage.customers import customer_id_batches  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import check_schema  # noqa: E402
from storage.tables import FIRINGS, MESSAGES, TASKS  # noqa: E402

SOURCE = Path("var/bench/bench.db")
SCRATCH = Path("var/bench/prefect-share")
SIDES = ("direct", "flows")
CUSTOMER_BATCH = 5_000
DISPATCH_BATCH = 500
MAX_BATCHES = 30  # 15,000 of the ~176,000 messages planned: the full dispatch takes ~7 min
UNLIMITED = 1_000_000  # batches: more than any outbox here, i.e. until nothing is due
ROUNDS = 2
# --- one side, in a process of its own -----------------------------------------------


@task(name="bench-nothing")
def nothing() -> None:
    """A no-op task for the warm-up flow."""


@flow(name="bench-warm-up")
def warm_up() -> None:
    """Starts Prefect's temporary server and its client before the clock starts."""
    nothing()


@lru_cache(maxsize=1)
def direct_engine(url: str) -> Engine:
    """One engine per database for the side, as `flows.context` keeps one per process."""
    return make_engine(url)


def direct_context(as_of: str) -> tuple[Settings, Engine, RuleSet, datetime]:
    """What `flows.context.flow_context` does, without a Prefect run around it."""
    settings = get_settings()
    engine = direct_engine(settings.database_url)
    check_schema(engine)
    now = moment(as_of)
    ruleset, _problems = rules_in_force(engine, settings.rules_dir, settings.templates_dir, now)
    return settings, engine, ruleset, now


def direct_evaluate(as_of: str, batch_size: int) -> tuple[dict[str, object], int]:
    """The body of `evaluate_rules` and its `evaluate_batch` tasks, called directly."""
    _settings, engine, ruleset, now = direct_context(as_of)
    evaluator = Evaluator(ruleset)
    with engine.connect() as connection:
        batches = customer_id_batches(connection, batch_size)
    total = RunSummary()
    for batch in batches:
        summary = RunSummary()
        for _ in evaluate_customers(
            engine,
            ruleset,
            now,
            record=True,
            customer_ids=batch,
            summary=summary,
            evaluator=evaluator,
        ):
            pass
        total.add(summary)
    return run_figures(total, ruleset.revision), len(batches)


async def direct_dispatch(
    as_of: str, batch_size: int, max_batches: int
) -> tuple[dict[str, Any], int]:
    """The body of `dispatch_outbox` and its `dispatch_batch` tasks, called directly."""
    settings, engine, ruleset, now = direct_context(as_of)
    dispatching = replace(dispatch_settings(settings), batch=batch_size)
    senders = build_senders(settings)
    templates = Templates(settings.templates_dir)
    calls = 0

    def batch() -> Awaitable[DispatchReport]:
        nonlocal calls
        calls += 1
        return dispatch_once(engine, senders, templates, ruleset, now, dispatching)

    total = await dispatch_batches(batch, senders, max_batches)
    return dispatch_figures(total), calls


def stored_counts(url: str) -> dict[str, Any]:
    """What the run left in the database."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            statuses = connection.execute(
                select(MESSAGES.c.status, func.count()).group_by(MESSAGES.c.status)
            ).all()
            return {
                "firings": connection.execute(select(func.count()).select_from(FIRINGS)).scalar(),
                "tasks": connection.execute(select(func.count()).select_from(TASKS)).scalar(),
                "outbox": {status: count for status, count in sorted(statuses)},
                "contacts": connection.execute(
                    text("SELECT count(*) FROM events WHERE id LIKE 'rapport:%'")
                ).scalar(),
            }
    finally:
        engine.dispose()


def run_side(side: str, as_of: str, customer_batch: int, dispatch_batch: int, limit: int) -> Any:
    """One side from start to end; the environment names its database and outbox."""
    outbox = Path(os.environ["RAPPORT_OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"side": side}
    with running_sink(outbox.parent) as (port, sink):
        os.environ["RAPPORT_SMTP_PORT"] = str(port)
        get_settings.cache_clear()
        flow_context_module._engine.cache_clear()
        if side == "flows":
            started = time.perf_counter()
            warm_up()
            figures["warm_up_seconds"] = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        if side == "flows":
            evaluated = evaluate_rules(as_of=as_of, batch_size=customer_batch)
        else:
            evaluated, figures["evaluate_calls"] = direct_evaluate(as_of, customer_batch)
        middle = time.perf_counter()
        if side == "flows":
            dispatched = asyncio.run(
                dispatch_outbox(as_of=as_of, batch_size=dispatch_batch, max_batches=limit)
            )
        else:
            dispatched, figures["dispatch_calls"] = asyncio.run(
                direct_dispatch(as_of, dispatch_batch, limit)
            )
        ended, cpu = time.perf_counter(), time.process_time() - cpu
    figures.update(
        evaluate_seconds=middle - started,
        dispatch_seconds=ended - middle,
        total_seconds=ended - started,
        cpu_seconds=cpu,
        evaluated=evaluated,
        dispatched=dispatched,
        stored=stored_counts(get_settings().database_url),
        sink_messages=sink.get("messages", 0),
        outbox_files=sum(1 for path in outbox.iterdir() if path.is_file()),
    )
    return figures


# --- both sides ----------------------------------------------------------------------


def side_process(side: str, folder: Path, as_of: str, arguments: argparse.Namespace) -> Any:
    """Runs one side in a fresh Python process on the copy `folder/side.db`, with an
    outbox folder and a Prefect home of its own; returns its figures."""
    environment = {
        **os.environ,
        "PREFECT_HOME": str((folder / "prefect").resolve()),
        "RAPPORT_DATABASE_URL": f"sqlite:///{(folder / f'{side}.db').resolve()}",
        "RAPPORT_OUTBOX_DIR": str((folder / "outbox").resolve()),
        "RAPPORT_SMTP_HOST": LOOPBACK,
        "RAPPORT_SMTP_TLS": "none",
        "RAPPORT_SECRET_KEY": secrets.token_urlsafe(32),  # the documented default is refused
    }
    command = [
        sys.executable,
        "-m",
        "bench.prefect_share",
        "--side",
        side,
        "--as-of",
        as_of,
        "--customer-batch",
        str(arguments.customer_batch),
        "--dispatch-batch",
        str(arguments.dispatch_batch),
        "--max-batches",
        str(arguments.max_batches),
    ]
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-5_000:])
        raise RuntimeError(f"the {side} side failed (exit status {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def comparable(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures every run must agree on (the revision as far as both sides show it)."""
    same = {
        key: figures[key]
        for key in ("evaluated", "dispatched", "stored", "sink_messages", "outbox_files")
    }
    same["evaluated"] = {**same["evaluated"], "revision": same["evaluated"]["revision"][:12]}
    return same


def order(rounds: int) -> list[str]:
    """direct, flows, flows, direct, …: drift over the run weighs on both sides alike."""
    return [side for n in range(rounds) for side in (SIDES if n % 2 == 0 else SIDES[::-1])]


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    try:
        base = SCRATCH / "base.db"
        print(f"copying and migrating {SOURCE} …", file=sys.stderr, flush=True)
        as_of = prepare_base(SOURCE, base).isoformat()
        for number, side in enumerate(order(arguments.rounds)):
            folder = SCRATCH / f"{number}-{side}"
            folder.mkdir()
            sqlite_copy(base, folder / f"{side}.db")
            figures = side_process(side, folder, as_of, arguments)
            runs[side].append(figures)
            print(
                f"{side}: evaluate {figures['evaluate_seconds']:.1f} s, dispatch "
                f"{figures['dispatch_seconds']:.1f} s ({figures['dispatched']['claimed']:,} "
                f"messages), {figures['cpu_seconds']:.1f} s of CPU",
                file=sys.stderr,
                flush=True,
            )
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    reference = comparable(runs["direct"][0])
    for name, figures in ((side, f) for side in SIDES for f in runs[side]):
        if comparable(figures) != reference:
            raise RuntimeError(
                f"a {name} run disagrees with the first direct run:\n"
                f"direct: {json.dumps(reference, sort_keys=True)}\n"
                f"{name}: {json.dumps(comparable(figures), sort_keys=True)}"
            )
    seconds = {
        side: {
            phase: [f[f"{phase}_seconds"] for f in runs[side]]
            for phase in ("evaluate", "dispatch", "total")
        }
        for side in SIDES
    }
    best = {side: {phase: min(v) for phase, v in seconds[side].items()} for side in SIDES}
    ratios = {phase: best["flows"][phase] / best["direct"][phase] for phase in best["direct"]}
    first = runs["direct"][0]
    task_runs = first["evaluate_calls"] + first["dispatch_calls"]
    return {
        "as_of": as_of,
        "customers": first["evaluated"]["customers"],
        "customer_batch": arguments.customer_batch,
        "dispatch_batch": arguments.dispatch_batch,
        "max_batches": arguments.max_batches,
        "rounds": arguments.rounds,
        "order": order(arguments.rounds),
        "evaluate_tasks": first["evaluate_calls"],
        "dispatch_tasks": first["dispatch_calls"],
        "firings": first["evaluated"]["firings"],
        "messages_planned": first["evaluated"]["messages planned"],
        "tasks_opened": first["evaluated"]["tasks opened"],
        "claimed": first["dispatched"]["claimed"],
        "outcomes": first["dispatched"]["outcomes"],
        "channels": first["dispatched"]["channels"],
        "sent": first["dispatched"]["outcomes"].get("sent", 0),
        "seconds": seconds,
        "best": best,
        "ratio": ratios["total"],
        "evaluate_ratio": ratios["evaluate"],
        "dispatch_ratio": ratios["dispatch"],
        "adds_percent": (ratios["total"] - 1) * 100,
        "overhead_ms_per_task": (best["flows"]["total"] - best["direct"]["total"])
        / task_runs
        * 1000,
        "cpu_seconds": {side: [f["cpu_seconds"] for f in runs[side]] for side in SIDES},
        "warm_up_seconds": [f["warm_up_seconds"] for f in runs["flows"]],
        "wall_seconds": time.perf_counter() - began,
        "prefect_version": prefect.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customer-batch", type=int, default=CUSTOMER_BATCH)
    parser.add_argument("--dispatch-batch", type=int, default=DISPATCH_BATCH)
    parser.add_argument(
        "--max-batches",
        type=int,
        default=MAX_BATCHES,
        help="dispatch at most N batches on each side; 0: until nothing is due",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs of each side")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.side:
        figures = run_side(
            arguments.side,
            arguments.as_of,
            arguments.customer_batch,
            arguments.dispatch_batch,
            arguments.max_batches or UNLIMITED,
        )
    else:
        figures = run(arguments)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
