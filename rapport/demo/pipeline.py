"""`rapport demo`: the README's first command, the whole pipeline through the Prefect flows.

A fresh machine gets a database and a generated customer base; then the flows that
`prefect.yaml` schedules ingest the events, evaluate the rules, deliver the messages
(email to a loopback SMTP sink, other channels to the outbox folder), watch the SLAs
and report the day. Running it again adds nothing twice: stored events are skipped and
keys make planning idempotent.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from rapport.demo.sample import SampleFiles, write_sample
from rapport.demo.smtp_sink import LOOPBACK, running_sink
from rapport.demo.summary import (
    distribution_table,
    examples_table,
    firings_table,
    ledger_table,
    status_table,
)
from rapport.services.rules import rules_in_force
from rapport.services.settings import InsecureSecret, Settings, get_settings
from rapport.services.staff_language import N_, _, format_number
from rapport.services.terminal import output, progress
from storage.db import make_engine
from storage.facts import iter_customer_facts
from storage.imports import import_customers
from storage.migrate import upgrade_database
from storage.summary import (
    firings_per_rule,
    last_firing_id,
    messages_per_channel,
    open_ledger,
    tasks_per_owner_role,
)

console = output()  # as the other commands print
# Settings the demo takes over while the flows run, so that nothing leaves this machine.
UNSET_DURING_DEMO = (
    "RAPPORT_SMTP_USER",
    "RAPPORT_SMTP_PASSWORD",
    "RAPPORT_WEBHOOK_SMS_URL",
    "RAPPORT_WEBHOOK_WECHAT_URL",
    "RAPPORT_WEBHOOK_APP_URL",
)
TASK_STATUSES = ("open", "escalated", "closed")
MESSAGE_STATUSES = N_(
    "pending: not due yet, e.g. quiet hours in the customer's own timezone (a later dispatch "
    "sends it); suppressed: a guard said no (consent, frequency cap, open complaint)"
)
HISTORY_WEEKS = 6  # weeks of scheduled runs the demo replays before today's
DEMO_FLOW_RUNS = 1 + 3 * HISTORY_WEEKS + 5  # ingest, the past weeks (3 flows each), today (5)


def run_demo(config: Settings, customers: int, directory: Path) -> None:
    """Create the database, import a generated customer base and run every flow once."""
    started = monotonic()
    engine = make_engine(config.database_url)
    upgrade_database(engine)
    zone = ZoneInfo(config.timezone)
    today = datetime.now(zone).date()
    files = _prepare(engine, config, directory, customers, today)
    with engine.connect() as connection:
        before = last_firing_id(connection)
    own_key = _needs_own_key(config)
    with (
        running_sink(directory) as (port, received),
        _local_delivery(port, own_key),
        progress(console, "demo", DEMO_FLOW_RUNS) as advance,
    ):
        sink = _(
            "email goes to a loopback SMTP sink on {address} started for this demo (your "
            "RAPPORT_SMTP_* and webhooks are ignored); sms, wechat and app messages are "
            "written to {outbox}/"
        )
        console.print("\n" + sink.format(address=f"{LOOPBACK}:{port}", outbox=config.outbox_dir))
        _ingest(files.events)
        advance(1)
        first = _show_customers(engine, config)
        _run_day(today, zone, advance)
    _print_summary(engine, zone, before)
    line = _(
        "the SMTP sink received {emails} emails ({bytes} bytes over {connections} connections)"
    )
    console.print(
        line.format(
            emails=received.get("messages", 0),
            bytes=format_number(received.get("bytes", 0)),
            connections=received.get("connections", 0),
        )
    )
    finished = _("demo finished in {seconds} s")
    console.print(finished.format(seconds=format_number(monotonic() - started, decimals=1)))
    _print_next(first, today, own_key)


def _prepare(
    engine: Engine, config: Settings, directory: Path, customers: int, today: date
) -> SampleFiles:
    """A year of generated history ending today, and its customers imported (the events
    are left to the ingest flow)."""
    end = datetime.combine(today, time(), tzinfo=ZoneInfo(config.timezone))
    files = write_sample(directory, customers=customers, end=end)
    generated = _("generated {customers} customers and {events} events in {directory}")
    console.print(
        generated.format(
            customers=files.customer_count, events=files.event_count, directory=directory
        )
    )
    report = import_customers(engine, files.customers, default_timezone=config.timezone)
    imported = _("imported customers: {new} new, {updated} already there, {rejected} rejected")
    console.print(
        imported.format(new=report.inserted, updated=report.updated, rejected=report.rejected)
    )
    return files


def _tomorrow_morning(today: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(today + timedelta(days=1), time(9), tzinfo=zone)


@contextmanager
def _local_delivery(port: int, own_key: bool) -> Iterator[None]:
    """Email to the sink, every other channel to the outbox folder, for the flows (they
    read `get_settings()`); with `own_key`, links are signed with a random key made for
    this run. The environment is restored afterwards."""
    overrides = {
        "RAPPORT_SMTP_HOST": LOOPBACK,
        "RAPPORT_SMTP_PORT": str(port),
        "RAPPORT_SMTP_TLS": "none",
    }
    if own_key:
        overrides["RAPPORT_SECRET_KEY"] = secrets.token_urlsafe(32)
    saved = {name: os.environ.get(name) for name in (*overrides, *UNSET_DURING_DEMO)}
    os.environ.update(overrides)
    for name in UNSET_DURING_DEMO:
        os.environ.pop(name, None)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def _ingest(events: Path) -> None:
    """The events through the ingest flow, which runs the event rules on the recent ones.
    Flows are imported here: importing Prefect is slow, other commands need not pay."""
    from flows.ingest import ingest_events

    running = _(
        "Running the Prefect flows: they record to the Prefect server in PREFECT_API_URL, "
        "or to a temporary local one that Prefect starts first (a few seconds)"
    )
    console.print("\n" + running)
    _figures("ingest-events", ingest_events(path=str(events.resolve())))


def _run_day(today: date, zone: ZoneInfo, advance: Callable[[float], None]) -> None:
    """The scheduled flows in the order a day runs them, the SLA watch as of tomorrow;
    `advance` counts the flow runs."""
    from flows.dispatch import dispatch_outbox
    from flows.evaluate import evaluate_rules
    from flows.report import daily_report
    from flows.sla import watch_sla

    later = _tomorrow_morning(today, zone).isoformat()
    _past_weeks(today, zone, advance)
    _figures("evaluate-rules", evaluate_rules())
    advance(1)
    _dispatched("dispatch-outbox (now)", asyncio.run(dispatch_outbox()))
    advance(1)
    watch = _(
        "The SLA watch runs every 5 minutes; here it runs once as of {moment}, tomorrow "
        "morning, so that the deadlines of tasks due today have passed: it raises the "
        "overdue events, escalations and due follow-up steps the schedule would have "
        "raised by then. The dispatch after it delivers what they planned and what quiet "
        "hours held back until then."
    )
    console.print("\n" + watch.format(moment=later))
    _figures("watch-sla (tomorrow morning)", watch_sla(as_of=later))
    advance(1)
    _dispatched("dispatch-outbox (tomorrow morning)", asyncio.run(dispatch_outbox(as_of=later)))
    advance(1)
    _figures("daily-report (today so far)", daily_report(day=today.isoformat()))
    advance(1)


def _past_weeks(today: date, zone: ZoneInfo, advance: Callable[[float], None]) -> None:
    """The weekly cycle as it would have run on the same weekday of the last three weeks,
    so the relationship report has weeks of work to show, not only today's."""
    from flows.dispatch import dispatch_outbox
    from flows.evaluate import evaluate_rules
    from flows.sla import watch_sla

    first = _(
        "First, so that the relationship report has weeks of work to show, the rules run as "
        "of 10:00 on the same weekday of each of the last {weeks} weeks (evaluate, deliver, "
        "watch the SLAs), as the schedules would have run them then:"
    )
    console.print("\n" + first.format(weeks=HISTORY_WEEKS))
    for weeks in range(HISTORY_WEEKS, 0, -1):
        moment = datetime.combine(today - timedelta(weeks=weeks), time(10), tzinfo=zone)
        evaluated = evaluate_rules(as_of=moment.isoformat())
        sent = asyncio.run(dispatch_outbox(as_of=moment.isoformat()))["outcomes"].get("sent", 0)
        escalated = watch_sla(as_of=moment.isoformat())
        advance(3)
        week = _(
            "{day}: firings {firings}, messages planned {planned}, sent {sent}, tasks opened "
            "{opened}, tasks overdue {overdue}"
        )
        line = week.format(
            day=moment.date(),
            firings=evaluated["firings"],
            planned=evaluated["messages planned"],
            sent=sent,
            opened=evaluated["tasks opened"],
            overdue=escalated.get("overdue events raised", 0),
        )
        console.print(f"  {line}")


def _figures(flow: str, figures: Mapping[str, object]) -> None:
    console.print(f"[bold]{flow}[/bold]: " + "; ".join(f"{k}: {v}" for k, v in figures.items()))


def _dispatched(flow: str, figures: Mapping[str, Any]) -> None:
    outcomes = ", ".join(f"{count} {name}" for name, count in figures["outcomes"].items())
    decisions = ", ".join(f"{name} {count}" for name, count in figures["decisions"].items())
    line = _("{count} claimed: {outcomes}").format(
        count=figures["claimed"], outcomes=outcomes or _("nothing due")
    )
    if decisions:
        line += _(" (guards: {decisions})").format(decisions=decisions)
    console.print(f"[bold]{flow}[/bold]: {line}")


def _show_customers(engine: Engine, config: Settings) -> str:
    """How customers spread over tiers and stages, and one of each stage; returns the
    first customer shown, for the commands to try next."""
    as_of = datetime.now(UTC)
    ruleset, _revision = rules_in_force(engine, config.rules_dir, config.templates_dir, as_of)
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        for facts in iter_customer_facts(connection, as_of, ruleset.parameters):
            counts[(facts["tier"], facts["lifecycle_stage"])] += 1
            examples.setdefault(facts["lifecycle_stage"], facts)
    console.print(distribution_table(counts))
    console.print(examples_table(examples))
    return str(next(iter(examples.values()))["customer_id"])


def _print_summary(engine: Engine, zone: ZoneInfo, before: int) -> None:
    """What the flows left in the database: only ids, rules, channels and roles."""
    console.print()
    with engine.connect() as connection:
        console.print(firings_table(firings_per_rule(connection, before)))
        channels = messages_per_channel(connection)
        console.print(status_table(channels, _("channel"), _("Messages per channel and status")))
        console.print(_(MESSAGE_STATUSES))
        roles = tasks_per_owner_role(connection)
        console.print(
            status_table(roles, _("owner role"), _("Staff tasks per owner role"), TASK_STATUSES)
        )
        console.print(ledger_table(open_ledger(connection), zone))


def _needs_own_key(config: Settings) -> bool:
    """Whether RAPPORT_SECRET_KEY is one anyone knows (the README's default, or empty):
    the dispatch flow refuses it, so the demo's links are signed with a key of its own."""
    try:
        config.signing_key()
    except InsecureSecret:
        return True
    return False


def _print_next(first: str, today: date, own_key: bool) -> None:
    refuse = _("dispatch, run, serve and api refuse the default")
    key = (
        "  export RAPPORT_SECRET_KEY=$(python3 -c 'import secrets; "
        f"print(secrets.token_urlsafe(32))')   # {refuse}\n"
        if own_key
        else ""
    )
    deliver = _("deliver the planned messages into var/outbox/")
    measures = _("measures and charts, any period")
    schedules = _("the flows on their schedules, no server")
    prefect_ui = _("Prefect's UI: these flow runs and artifacts")
    console.print(
        "\n" + _("Next, try:") + "\n"
        f"  .venv/bin/rapport explain {first}\n"
        f"  .venv/bin/rapport customers show {first} --as-of {today - timedelta(days=90)}\n"
        f"  .venv/bin/rapport customers history {first} --since {today - timedelta(days=30)}\n"
        "  .venv/bin/rapport evaluate --dry-run --json | head\n"
        f"{key}"
        f"  .venv/bin/rapport dispatch            # {deliver}\n"
        "  .venv/bin/rapport tasks list --owner account_manager\n"
        f"  .venv/bin/rapport report --html var/report.html   # {measures}\n"
        "  .venv/bin/rapport rules check\n"
        "  .venv/bin/rapport rules test\n"
        f"  .venv/bin/rapport serve --embedded    # {schedules}\n"
        f"  .venv/bin/rapport ui                  # {prefect_ui}\n"
        "  .venv/bin/rapport --help"
    )
