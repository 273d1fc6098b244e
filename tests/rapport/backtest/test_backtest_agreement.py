"""Backtest and live agree: the live functions driven moment by moment over a short
history record the same firings, message outcomes and tasks the backtest computes.

The live side is what production runs, called as the schedules call it: event rules on
each event as it happens (`react_to_events`), the scheduled rules every morning
(`evaluate_customers(record=True)`), the dispatcher whenever a message is due
(`dispatch_once`, a fake provider accepting everything), the SLA watch a minute after
each deadline (`raise_overdue_events`, then the escalation rules). Staff close tasks as
the backtest assumes they do, any task by its deadline, except a feedback item's: live
itself finds those answered by a contact referring to the item or its resolution
(`raise_overdue_events`). The backtest then runs over the same database, which also
shows it ignores everything live recorded during the period. The feedback items test
the SLA clocks: business hours over the New Year holiday and China's adjusted working
Sunday, an inquiry at 23:00 on a Friday, a major item counted around the clock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from actions.dispatch import DispatchSettings, dispatch_once
from actions.templates import Templates
from engine.facts import MESSAGE_CHANNELS
from engine.loader import load_rules
from engine.model import RuleSet
from rapport.backtest.runner import run_backtest
from rapport.backtest.staff import WATCH_DELAY_US
from rapport.backtest.tally import Journal
from rapport.backtest.timeline import MICROSECOND, Window, from_us
from rapport.services.reactions import react_to_events
from rapport.services.scheduled import evaluate_customers
from storage.revisions import activate
from storage.tables import CUSTOMERS, EVENTS, FIRINGS, MESSAGES, TASKS
from storage.tasks import close_task, raise_overdue_events
from tests.factories import add_customer, add_events
from tests.paths import ROOT
from tests.senders import AcceptingSender

ROOT = ROOT
SHANGHAI = "Asia/Shanghai"
WINDOW = Window(date(2025, 12, 29), date(2026, 1, 18), time(8), SHANGHAI, warmup=timedelta(0))
WATCH_DELAY = WATCH_DELAY_US * MICROSECOND
OVERDUE_ID = re.compile(r"overdue:\d+")
WINDOW_BEGIN = WINDOW.steps[0].astimezone(UTC)
WINDOW_END = from_us(WINDOW.end_us)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def default_rules() -> RuleSet:
    ruleset = load_rules(ROOT / "rules").ruleset
    assert ruleset is not None
    return ruleset


def purchase(
    event_id: str, when: str, amount: float, product: str = "coffee-beans"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "purchase",
        "occurred_at": at(when),
        "amount": amount,
        "quantity": 1,
        "product": product,
    }


def contact(event_id: str, when: str, channel: str, ref: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "contact",
        "occurred_at": at(when),
        "channel": channel,
        "ref": ref,
    }


CREATED = at("2024-01-01T00:00:00+08:00")
LATE_JOINER = ("c07", at("2026-01-05T12:00:00+08:00"))


def build_history(engine: Engine) -> None:
    """Seven customers, each there for a reason (see the comments); one joins late."""
    # c01, high tier (115k in the tier year) with an account manager: the welcome, the
    # win-back and the weekly online touch meet the frequency cap (2 a week; the New
    # Year greeting is care, which the cap does not count);
    # no call for 30 days opens a task. Two autumn purchases and none since are a
    # frequency drop (at risk), so the win-back joins them.
    add_customer(
        engine,
        "c01",
        email="c01@example.cn",
        wechat="wx01",
        consent_email=True,
        consent_wechat=True,
        account_manager="li.na",
        created_at=CREATED,
    )
    add_events(
        engine,
        "c01",
        purchase("c01-p1", "2025-03-10T10:00:00+08:00", 60_000),
        purchase("c01-p2", "2025-09-15T10:00:00+08:00", 55_000),
        purchase("c01-p3", "2025-09-29T10:00:00+08:00", 500),
        contact("c01-c1", "2025-12-05T10:00:00+08:00", "phone"),
        contact("c01-c2", "2025-12-20T10:00:00+08:00", "email"),
    )
    # c02, mid tier in London: 08:00 in Shanghai is midnight there, so every message is
    # deferred to the end of the quiet hours and decided again then.
    add_customer(
        engine,
        "c02",
        email="c02@example.com",
        consent_email=True,
        timezone="Europe/London",
        locale="en",
        created_at=CREATED,
    )
    add_events(
        engine,
        "c02",
        purchase("c02-p1", "2025-06-01T10:00:00+01:00", 8_000),
        purchase("c02-p2", "2025-11-20T10:00:00+00:00", 7_000),
    )
    # c03, dormant with no consent at all: the win-back is suppressed, its task opens.
    add_customer(engine, "c03", created_at=CREATED)
    add_events(engine, "c03", purchase("c03-p1", "2025-03-01T10:00:00+08:00", 500))
    # c04, mid tier, complains on Saturday 3 January, a New Year holiday; the next
    # working day is Sunday 4 January (moved for the holiday), so the 1-hour deadline
    # is 10:00 that Sunday. Customer service answers two hours late, by phone, and
    # the item escalates to the business department; the win-back waits while the
    # complaint is open and goes out when it is resolved.
    add_customer(
        engine,
        "c04",
        email="c04@example.cn",
        wechat="wx04",
        consent_email=True,
        consent_wechat=True,
        created_at=CREATED,
    )
    complaint = {
        "id": "fb-c04",
        "type": "feedback",
        "occurred_at": at("2026-01-03T10:00:00+08:00"),
        "level": "general",
        "category": "complaint",
        "channel": "wechat",
    }
    add_events(
        engine,
        "c04",
        purchase("c04-p1", "2025-08-01T10:00:00+08:00", 9_000),
        purchase("c04-p2", "2025-10-15T10:00:00+08:00", 6_000),
        contact("c04-c1", "2025-12-27T10:00:00+08:00", "wechat"),
        complaint,
        contact("c04-c2", "2026-01-04T12:00:00+08:00", "phone", ref="fb-c04"),
        {
            "id": "c04-r",
            "type": "feedback_resolved",
            "occurred_at": at("2026-01-06T09:00:00+08:00"),
            "ref": "fb-c04",
        },
    )
    # c05 complains and the complaint stays open: the win-back waits for its resolution
    # for the complaint hold's 14 days, then is suppressed with that reason; that gives
    # the rule's re-entry back, so it fires again the next morning and waits again.
    add_customer(engine, "c05", email="c05@example.cn", consent_email=True, created_at=CREATED)
    add_events(
        engine,
        "c05",
        purchase("c05-p1", "2025-07-01T10:00:00+08:00", 4_000),
        purchase("c05-p2", "2025-12-01T10:00:00+08:00", 3_000),
        {
            "id": "fb-c05",
            "type": "feedback",
            "occurred_at": at("2026-01-02T12:00:00+08:00"),
            "level": "general",
            "category": "complaint",
            "channel": "email",
        },
    )
    # c28, a prospect in the control group: the first-purchase offer is held out; the
    # first purchase is thanked and its day-7 follow-up comes due as a step.
    add_customer(
        engine,
        "c28",
        wechat="wx28",
        consent_wechat=True,
        created_at=at("2025-06-01T00:00:00+08:00"),
    )
    add_events(
        engine, "c28", purchase("c28-p1", "2026-01-02T15:00:00+08:00", 6_800, "espresso-machine")
    )
    # c06, established, answers the survey with a 3 at night: a call-back task, and the
    # remediation check a week later falls in the quiet hours.
    add_customer(engine, "c06", phone="+86 13800000006", consent_sms=True, created_at=CREATED)
    add_events(
        engine,
        "c06",
        purchase("c06-p1", "2025-02-01T10:00:00+08:00", 3_000),
        purchase("c06-p2", "2025-05-01T10:00:00+08:00", 2_500),
        purchase("c06-p3", "2025-10-01T10:00:00+08:00", 2_000),
        contact("c06-c1", "2025-12-28T10:00:00+08:00", "sms"),
        {
            "id": "c06-s",
            "type": "survey",
            "occurred_at": at("2026-01-04T22:30:00+08:00"),
            "score": 3,
        },
    )
    # c08 asks a question at 23:00 on Friday 9 January: it is due at 10:00 on Monday,
    # and a phone answer at 09:30 that Monday stops the chain (nothing escalates
    # overnight or over the weekend). A group complaint on Saturday 10 January at
    # 22:00 is major: management's 48 hours run around the clock, to Monday 22:00,
    # and nobody answers (management is the last owner: the chain ends there).
    add_customer(engine, "c08", email="c08@example.cn", consent_email=True, created_at=CREATED)
    add_events(
        engine,
        "c08",
        purchase("c08-p1", "2025-11-01T10:00:00+08:00", 3_000),
        {
            "id": "fb-c08-q",
            "type": "feedback",
            "occurred_at": at("2026-01-09T23:00:00+08:00"),
            "level": "general",
            "category": "inquiry",
            "channel": "email",
        },
        contact("c08-c1", "2026-01-12T09:30:00+08:00", "phone", ref="fb-c08-q"),
        {
            "id": "fb-c08-m",
            "type": "feedback",
            "occurred_at": at("2026-01-10T22:00:00+08:00"),
            "level": "major",
            "category": "complaint",
            "channel": "phone",
        },
    )
    # c07 joins during the period: nothing happens to them before.
    add_customer(
        engine,
        LATE_JOINER[0],
        email="c07@example.cn",
        consent_email=True,
        segment="enterprise",
        created_at=LATE_JOINER[1],
    )


class LiveRun:
    """The live pipeline over the window, one moment at a time."""

    def __init__(
        self, engine: Engine, ruleset: RuleSet, joiners: dict[datetime, dict[str, Any]]
    ) -> None:
        self.engine, self.ruleset, self.joiners = engine, ruleset, joiners
        self.senders = {channel: AcceptingSender() for channel in MESSAGE_CHANNELS}
        self.templates = Templates(ROOT / "templates" / "messages")
        self.settings = DispatchSettings(
            "live",
            {"name": "Rapport", "service_phone": "400", "website": "https://example.com"},
            "http://127.0.0.1",
            "secret",
        )
        self.steps = [step for step in WINDOW.steps if step.astimezone(UTC) < WINDOW_END]
        with engine.connect() as connection:
            rows = connection.execute(
                select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.occurred_at, EVENTS.c.ref)
            ).all()
        times = {row.occurred_at for row in rows if WINDOW_BEGIN <= row.occurred_at < WINDOW_END}
        self.arrivals = sorted(times | set(joiners))
        self.feedback = {row.id for row in rows if row.type == "feedback"}

    def run(self) -> None:
        activate(self.engine, self.ruleset, WINDOW_BEGIN)
        moment: datetime | None = WINDOW_BEGIN
        while moment is not None:
            self.at(moment)
            moment = self.next_moment(moment)

    def at(self, moment: datetime) -> None:
        """One instant: staff close what is done, the SLA watch, event rules, the morning
        evaluation, the dispatcher — the order the backtest uses."""
        if moment in self.joiners:
            add_customer(self.engine, **self.joiners[moment])
        self.close_done_tasks(moment)
        with self.engine.begin() as connection:
            watch = connection.scalar(
                select(func.count()).where(
                    TASKS.c.status == "open", TASKS.c.due_at == moment - WATCH_DELAY
                )
            )
            overdue = raise_overdue_events(connection, moment) if watch else []
            arrived = list(
                connection.scalars(
                    select(EVENTS.c.id).where(
                        EVENTS.c.occurred_at == moment,
                        EVENTS.c.reacted_at.is_(None),
                        EVENTS.c.type != "task_overdue",
                    )
                )
            )
        if overdue or arrived:
            react_to_events(self.engine, self.ruleset, moment, event_ids=[*overdue, *arrived])
        if moment in self.steps:
            list(evaluate_customers(self.engine, self.ruleset, moment, record=True))
        while asyncio.run(
            dispatch_once(
                self.engine, self.senders, self.templates, self.ruleset, moment, self.settings
            )
        ).claimed:
            pass

    def next_moment(self, moment: datetime) -> datetime | None:
        with self.engine.connect() as connection:
            found = [
                connection.scalar(
                    select(func.min(EVENTS.c.occurred_at)).where(
                        EVENTS.c.occurred_at > moment,
                        EVENTS.c.reacted_at.is_(None),
                        EVENTS.c.type == "step_due",
                    )
                ),
                connection.scalar(
                    select(func.min(MESSAGES.c.due_at)).where(
                        MESSAGES.c.status == "pending", MESSAGES.c.due_at > moment
                    )
                ),
                *(
                    due + WATCH_DELAY
                    for due in connection.scalars(
                        select(TASKS.c.due_at).where(TASKS.c.status == "open")
                    )
                ),
            ]
        found += [*self.steps, *self.arrivals]
        later = [
            candidate
            for candidate in found
            if candidate is not None and moment < candidate < WINDOW_END
        ]
        return min(later, default=None)

    def close_done_tasks(self, moment: datetime) -> None:
        """Staff as the backtest assumes them (see `rapport/backtest/staff.py`): every
        task by its deadline, except a feedback item's, which the SLA watch follows."""
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(TASKS.c.id, TASKS.c.key, TASKS.c.status, TASKS.c.due_at).order_by(TASKS.c.id)
            ).all()
            serving: set[int] = set()  # tasks serving a feedback item
            for task_id, key, status, due_at in rows:
                source = key.partition(":event:")[2]
                if source in self.feedback or (
                    source.startswith("overdue:")
                    and int(source.removeprefix("overdue:")) in serving
                ):
                    serving.add(task_id)
                elif status == "open" and due_at <= moment:
                    close_task(connection, task_id, "done, as the history shows", moment)


def live_journal(engine: Engine) -> Journal:
    """What live recorded, in the journal's shape."""
    journal = Journal()
    with engine.connect() as connection:
        for row in connection.execute(select(FIRINGS)).mappings():
            journal.firings.append(
                (
                    row["rule_id"],
                    row["customer_id"],
                    row["as_of"],
                    row["event_id"] or None,
                    row["held_out"],
                )
            )
        for row in connection.execute(select(MESSAGES)).mappings():
            if row["status"] == "sent":
                journal.messages[row["key"]] = ("sent", row["channel"], row["sent_at"])
            elif row["status"] == "suppressed":
                journal.messages[row["key"]] = (
                    f"suppressed:{row['reason'].partition(':')[0]}",
                    None,
                    row["due_at"],
                )
            else:
                journal.messages[row["key"]] = ("deferred", None, row["due_at"])
        for row in connection.execute(select(TASKS)).mappings():
            journal.tasks[row["key"]] = (row["owner_role"], row["due_at"])
    return journal


def comparable(journal: Journal) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Task ids differ between live (the table's) and the backtest (its own): compare
    the keys and event ids without them. Suppressions are compared without their time
    (live stores none)."""
    firings = sorted(
        (rule, customer, when, OVERDUE_ID.sub("overdue:*", event or ""), held)
        for rule, customer, when, event, held in journal.firings
    )
    messages = {
        OVERDUE_ID.sub("overdue:*", key): (
            outcome,
            channel,
            None if outcome.startswith("suppressed") else when,
        )
        for key, (outcome, channel, when) in journal.messages.items()
    }
    tasks = {OVERDUE_ID.sub("overdue:*", key): value for key, value in journal.tasks.items()}
    return firings, messages, tasks


def table_contents(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as connection:
        return {
            table.name: sorted(map(tuple, connection.execute(select(table)).all()), key=repr)
            for table in (CUSTOMERS, EVENTS, MESSAGES, TASKS, FIRINGS)
        }


@pytest.fixture
def replayed_live(engine: Engine) -> Iterator[tuple[Engine, RuleSet]]:
    """The history, run through live; the late joiner is imported when they join."""
    ruleset = default_rules()
    build_history(engine)
    late_id, joined = LATE_JOINER
    with engine.begin() as connection:
        query = select(CUSTOMERS).where(CUSTOMERS.c.id == late_id)
        row = dict(connection.execute(query).mappings().one())
        connection.execute(CUSTOMERS.delete().where(CUSTOMERS.c.id == late_id))
    row["customer_id"] = row.pop("id")
    LiveRun(engine, ruleset, {joined: row}).run()
    yield engine, ruleset


def test_backtest_records_what_live_evaluation_does_day_by_day(
    replayed_live: tuple[Engine, RuleSet],
) -> None:
    engine, ruleset = replayed_live
    before = table_contents(engine)

    replayed = run_backtest(engine, [(ROOT / "rules", ruleset)], WINDOW, journal=True)

    assert table_contents(engine) == before  # nothing written, not even to a table live left alone
    journal = replayed.tallies[0].journal
    assert journal is not None
    live = comparable(live_journal(engine))
    backtest = comparable(journal)
    assert backtest[0] == live[0]  # the firings
    assert (
        backtest[1] == live[1]
    )  # every message's outcome: sent (channel, time), deferred, suppressed
    assert backtest[2] == live[2]  # the tasks: owner and deadline
    rules_fired = {row[0] for row in live[0]}
    outcomes = {value[0] for value in live[1].values()}
    # the history reaches what it was built for
    assert {
        "high_tier_welcome",
        "high_weekly_online_touch",
        "holiday_greeting",
        "mid_biweekly_message",
        "dormant_winback",
        "feedback_overdue_to_business",
        "new_customer_needs_followup",
        "churn_nps_detractor",
        "at_risk_remediation_check",
        "prospect_first_purchase_offer",
    } <= rules_fired
    assert {"sent", "deferred", "suppressed:frequency_cap", "suppressed:no_consent"} <= outcomes
    # c04's win-back waited for the complaint's resolution and went out then; the
    # remediation check asked a week after it went out
    resolved = at("2026-01-06T09:00:00+08:00")
    assert live[1]["at_risk_winback.0:c04:every:7776000s:105"] == ("sent", "wechat", resolved)
    check = "at_risk_remediation_check.0:c04:event:step:at_risk_winback.2:c04:every:7776000s:105"
    assert live[1][check] == ("sent", "wechat", resolved + timedelta(days=7))
    # c05's complaint stayed open: the win-back never went out, so no remediation check;
    # suppressed at the hold's limit, it spent no re-entry and fired again
    winbacks = [row[2] for row in live[0] if row[:2] == ("at_risk_winback", "c05")]
    assert winbacks == [at("2026-01-03T08:00:00+08:00"), at("2026-01-18T08:00:00+08:00")]
    assert live[1]["at_risk_winback.0:c05:every:7776000s:105"][0] == "deferred"
    assert not [key for key in live[1] if key.startswith("at_risk_remediation_check.0:c05")]
    assert any(row[4] for row in live[0])  # a held-out firing
    assert not [row for row in live[0] if row[1] == "c07" and row[2] < LATE_JOINER[1]]
    with (
        engine.connect() as connection
    ):  # deferred by the quiet hours, then sent at 08:00 in London
        london = (
            connection.execute(
                select(MESSAGES.c.sent_at).where(
                    MESSAGES.c.customer_id == "c02", MESSAGES.c.status == "sent"
                )
            )
            .scalars()
            .all()
        )
    assert london and all(sent.astimezone(UTC).time() == time(8) for sent in london)


def test_live_keeps_the_feedback_clocks_the_backtest_replays(
    replayed_live: tuple[Engine, RuleSet],
) -> None:
    engine, _ = replayed_live
    with engine.connect() as connection:
        rows = connection.execute(
            select(TASKS.c.key, TASKS.c.owner_role, TASKS.c.due_at, TASKS.c.status)
            .where(TASKS.c.customer_id.in_(("c04", "c08")), TASKS.c.rule_id.like("feedback%"))
            .order_by(TASKS.c.id)
        ).all()
        overdue = set(
            connection.scalars(
                select(EVENTS.c.ref).where(
                    EVENTS.c.type == "task_overdue", EVENTS.c.customer_id.in_(("c04", "c08"))
                )
            )
        )
    tasks = [
        (OVERDUE_ID.sub("overdue:*", key), role, due, status) for key, role, due, status in rows
    ]
    assert tasks == [
        # the holiday Saturday's complaint is due on the adjusted working Sunday
        (
            "feedback_general_to_customer_service.0:c04:event:fb-c04",
            "customer_service",
            at("2026-01-04T10:00:00+08:00"),
            "escalated",
        ),
        (
            "feedback_overdue_to_business.0:c04:event:overdue:*",
            "business",
            at("2026-01-05T10:00:00+08:00"),  # one working day after the missed deadline
            "closed",  # answered by the phone call (at 12:00 on Sunday)
        ),
        # Friday 23:00 → Monday 10:00; the 09:30 call answered it
        (
            "feedback_general_to_customer_service.0:c08:event:fb-c08-q",
            "customer_service",
            at("2026-01-12T10:00:00+08:00"),
            "closed",
        ),
        # major: 48 hours around the clock; unanswered, overdue, and nobody above
        (
            "feedback_major_to_management.0:c08:event:fb-c08-m",
            "management",
            at("2026-01-12T22:00:00+08:00"),
            "open",
        ),
    ]
    assert overdue == {"fb-c04", "fb-c08-m"}
