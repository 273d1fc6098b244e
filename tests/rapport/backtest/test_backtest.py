"""The backtest on small hand-made histories, every expectation worked out by hand.

Each test writes a tiny rules directory, so what fires and why can be followed line by
line; steps are at 08:00 in Shanghai (00:00 UTC) unless a test says otherwise. The
engine fixture runs each test on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from engine.loader import load_rules
from engine.model import RuleSet
from rapport.backtest.results import Run, summarize
from rapport.backtest.runner import Replayed, run_backtest
from rapport.backtest.tally import Journal
from rapport.backtest.timeline import Window
from storage.revisions import activate
from storage.tables import FIRINGS, MESSAGES
from tests.factories import add_customer, add_events
from tests.paths import ROOT

ROOT = ROOT
SHANGHAI = "Asia/Shanghai"
CREATED = datetime(2024, 1, 1, tzinfo=UTC)
NO_CONTROL_GROUP = "measures:\n  control_group: {percent: 0}\n"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rules(tmp_path: Path, text: str) -> tuple[Path, RuleSet]:
    """A rules directory holding `text` (and no control group), loaded."""
    directory = tmp_path / "rules"
    directory.mkdir(exist_ok=True)
    (directory / "rules.yaml").write_text(text, encoding="utf-8")
    (directory / "measures.yaml").write_text(NO_CONTROL_GROUP, encoding="utf-8")
    result = load_rules(directory)
    assert result.ruleset is not None, result.problems
    return directory, result.ruleset


def replay(engine: Engine, ruleset: tuple[Path, RuleSet], window: Window) -> Replayed:
    return run_backtest(engine, [ruleset], window, journal=True)


def journal_of(replayed: Replayed) -> Journal:
    journal = replayed.tallies[0].journal
    assert journal is not None
    return journal


def customer(engine: Engine, customer_id: str, **fields: Any) -> None:
    add_customer(engine, customer_id, created_at=CREATED, **fields)


def bought(engine: Engine, customer_id: str, *moments: str) -> None:
    add_events(
        engine,
        customer_id,
        *(
            {"id": f"{customer_id}-p{n}", "type": "purchase", "occurred_at": at(m), "amount": 100.0}
            for n, m in enumerate(moments)
        ),
    )


def logged_in(engine: Engine, customer_id: str, moment: str) -> None:
    login = {"id": f"{customer_id}-login", "type": "login", "occurred_at": at(moment)}
    add_events(engine, customer_id, login)


def march(last_day: int) -> Window:
    """Daily steps from 1 March 2026 to `last_day`, no warm-up, a 30-day horizon."""
    return Window(
        date(2026, 3, 1),
        date(2026, 3, last_day),
        time(8),
        SHANGHAI,
        warmup=timedelta(0),
        horizon=timedelta(days=30),
    )


def churn_figures(engine: Engine, tmp_path: Path, window: Window) -> dict[str, Any]:
    """The `quiet_spell` signal's outcome figures over the history in `engine`."""
    directory, ruleset = rules(tmp_path, QUIET_SPELL)
    replayed = replay(engine, (directory, ruleset), window)
    summary = summarize(Run(directory, ruleset, replayed.tallies[0]), window, replayed.history_end)
    figures: dict[str, Any] = summary["churn"]["quiet_spell"]
    return figures


def outcomes_by_day(journal: Journal, customer_id: str) -> dict[date, str]:
    """Each message's final outcome by the local day (Shanghai) it was decided."""
    return {
        when.astimezone(UTC).date(): outcome
        for key, (outcome, _, when) in journal.messages.items()
        if f":{customer_id}:" in key
    }


def promotion(rule_id: str, every: str, cap: int) -> str:
    """Rules: a marketing message to every buyer once per `every`, at most `cap` a week."""
    return f"""
policy:
  frequency_cap: {{marketing: {cap}, window: 7d}}
rules:
  - id: {rule_id}
    description: A promotion to anyone who bought.
    trigger: schedule
    when:
      - lifetime_orders: {{gte: 1}}
    actions:
      - send_message: {{template: mid_product_picks, purpose: marketing}}
    reentry: {{every: {every}}}
"""


DAILY_PROMO = promotion("daily_promo", "1d", cap=2)


def test_the_frequency_cap_lets_two_marketing_messages_through_per_seven_days(
    engine: Engine, tmp_path: Path
) -> None:
    """Nine daily firings: sent on days 1 and 2; days 3-7 see two messages in the 7 days
    before (`sent_at > now - 7d`); on day 8 the day-1 message is exactly 7 days old, so
    out of the window, and one is left: sent; on day 9 likewise."""
    customer(engine, "a", email="a@example.cn", consent_email=True)
    bought(engine, "a", "2025-01-10T10:00:00+08:00")
    window = Window(date(2026, 3, 2), date(2026, 3, 10), time(8), SHANGHAI, warmup=timedelta(0))
    directory = rules(tmp_path, DAILY_PROMO)

    replayed = replay(engine, directory, window)

    days = outcomes_by_day(journal_of(replayed), "a")
    expected = ["sent"] * 2 + ["suppressed:frequency_cap"] * 5 + ["sent"] * 2
    assert [days[date(2026, 3, 1) + timedelta(days=n)] for n in range(1, 10)] == expected
    summary = summarize(Run(directory[0], directory[1], replayed.tallies[0]), window, None)
    assert summary["firings"]["daily_promo"]["per_week"] == [7, 2]
    assert summary["messages"]["per_rule"]["daily_promo"]["suppressed"] == {"frequency_cap": 5}
    weeks = summary["messages"]["per_customer_week"]
    assert [(w["week"], w["histogram"], w["max"]) for w in weeks] == [
        ("2026-03-02", {"2": 1}, 2),
        ("2026-03-09", {"2": 1}, 2),
    ]


QUIET_AND_CONSENT = """
rules:
  - id: hello
    description: A first note to a buyer nobody has contacted.
    trigger: schedule
    when:
      - lifetime_orders: {gte: 1}
      - days_since_any_contact: {exists: false}
    actions:
      - send_message: {template: base_service_reminder, purpose: service}
    reentry: once
    priority: 10
  - id: again
    description: Another note once a whole day has passed since the last contact.
    trigger: schedule
    when:
      - days_since_any_contact: {gte: 1}
    actions:
      - send_message: {template: base_service_reminder, purpose: service}
    reentry: {every: 1d}
    priority: 20
  - id: promo_to_complainers
    description: Marketing to customers with an open complaint (held by the guards).
    trigger: schedule
    when:
      - open_complaints: {gte: 1}
    actions:
      - send_message: {template: mid_product_picks, purpose: marketing}
    reentry: once
"""


def test_quiet_hours_defer_and_the_contact_counts_from_when_it_was_sent(
    engine: Engine, tmp_path: Path
) -> None:
    """Steps at 00:00 UTC. In Shanghai that is 08:00: `hello` goes out at once, and a
    day later `again` fires every day. In London it is midnight: `hello` waits for
    08:00 London and the contact dates from then; cadence counts calendar days in the
    customer's zone, so on 6 January (16 h later) it is a day old and `again` fires every
    day from the 6th, each deferred to 08:00 London: one day apart, as promised. Without
    consent nothing is sent and, never contacted, `again` never fires. With an open
    complaint the marketing message waits (still held when the window ends); the service
    note still goes."""
    for name, zone in (("shanghai", SHANGHAI), ("london", "Europe/London")):
        customer(engine, name, email=f"{name}@example.com", consent_email=True, timezone=zone)
    customer(engine, "no_consent", email="nc@example.com")
    customer(engine, "complainer", email="cc@example.com", consent_email=True)
    for name in ("shanghai", "london", "no_consent", "complainer"):
        bought(engine, name, "2025-06-01T10:00:00+08:00")
    add_events(
        engine,
        "complainer",
        {
            "id": "fb",
            "type": "feedback",
            "occurred_at": at("2025-12-20T10:00:00+08:00"),
            "level": "general",
            "category": "complaint",
        },
    )
    window = Window(date(2026, 1, 5), date(2026, 1, 8), time(8), SHANGHAI, warmup=timedelta(0))

    journal = journal_of(replay(engine, rules(tmp_path, QUIET_AND_CONSENT), window))

    fired = Counter((rule, who, when.date().day) for rule, who, when, _, _ in journal.firings)
    assert fired == Counter(
        [("hello", name, 5) for name in ("shanghai", "london", "no_consent", "complainer")]
        + [("again", "shanghai", day) for day in (6, 7, 8)]
        + [("again", "complainer", day) for day in (6, 7, 8)]
        + [("again", "london", day) for day in (6, 7, 8)]
        + [("promo_to_complainers", "complainer", 5)]
    )
    sent = {
        key.split(":")[1] + " " + key.split(".")[0]: value
        for key, value in journal.messages.items()
    }
    eight_london = datetime(2026, 1, 5, 8, tzinfo=UTC)  # 08:00 GMT
    assert sent["london hello"] == ("sent", "email", eight_london)
    assert sent["london again"] == ("sent", "email", eight_london + timedelta(days=3))
    assert sent["shanghai hello"] == ("sent", "email", datetime(2026, 1, 5, tzinfo=UTC))
    assert sent["no_consent hello"][0] == "suppressed:no_consent"
    held_until = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=14)  # the hold's limit
    assert sent["complainer promo_to_complainers"] == ("deferred", None, held_until)
    assert sent["complainer hello"][0] == "sent"


ACK_ONCE = """
rules:
  - id: ack_once
    description: Acknowledge the first feedback a customer ever gives.
    trigger: {event: feedback}
    when:
      - event.level: {exists: true}
    actions:
      - send_message: {template: feedback_received, purpose: service}
    reentry: once
"""


def test_two_events_in_one_batch_fire_twice_but_plan_one_message(
    engine: Engine, tmp_path: Path
) -> None:
    """As live: events reacted to together are admitted against the history before them
    (both firings are recorded), and the second plans the same key, which the outbox
    takes once (dedupe). The next day `once` admits nothing."""
    customer(engine, "f", email="f@example.cn", consent_email=True)
    feedback = {"type": "feedback", "level": "general", "category": "inquiry"}
    add_events(
        engine,
        "f",
        {**feedback, "id": "fb1", "occurred_at": at("2026-01-05T10:00:00+08:00")},
        {**feedback, "id": "fb2", "occurred_at": at("2026-01-05T10:00:00+08:00")},
        {**feedback, "id": "fb3", "occurred_at": at("2026-01-06T10:00:00+08:00")},
    )
    window = Window(date(2026, 1, 5), date(2026, 1, 7), time(8), SHANGHAI, warmup=timedelta(0))

    replayed = replay(engine, rules(tmp_path, ACK_ONCE), window)

    journal = journal_of(replayed)
    assert [(rule, event) for rule, _, _, event, _ in journal.sorted_firings()] == [
        ("ack_once", "fb1"),
        ("ack_once", "fb2"),
    ]
    assert list(journal.messages) == ["ack_once.0:f:once"]
    assert replayed.tallies[0].messages[("ack_once", "planned")] == 1


def test_feedback_items_that_breach_their_sla_escalate_as_live(engine: Engine) -> None:
    """The shipped feedback rules. Answered in 30 minutes: no breach. Answered after 3
    hours: the 1-hour task goes overdue and business takes it over, then the answer
    closes it. Never answered: customer service, then business (24 h), then management
    (48 h), whose task goes overdue too with no rule left. Praise gets no task."""
    for name in ("s1", "s2", "s3", "s4"):
        customer(engine, name)
    general = {"type": "feedback", "level": "general"}
    add_events(
        engine,
        "s1",
        {
            **general,
            "id": "i1",
            "category": "inquiry",
            "occurred_at": at("2026-01-05T10:00:00+08:00"),
        },
    )
    add_events(
        engine,
        "s1",
        {
            "id": "r1",
            "type": "contact",
            "channel": "phone",
            "ref": "i1",
            "occurred_at": at("2026-01-05T10:30:00+08:00"),
        },
    )
    add_events(
        engine,
        "s2",
        {
            **general,
            "id": "i2",
            "category": "complaint",
            "occurred_at": at("2026-01-05T11:00:00+08:00"),
        },
    )
    add_events(
        engine,
        "s2",
        {
            "id": "r2",
            "type": "contact",
            "channel": "phone",
            "ref": "i2",
            "occurred_at": at("2026-01-05T14:00:00+08:00"),
        },
    )
    add_events(
        engine,
        "s3",
        {
            **general,
            "id": "i3",
            "category": "inquiry",
            "occurred_at": at("2026-01-06T09:00:00+08:00"),
        },
    )
    add_events(
        engine,
        "s4",
        {
            **general,
            "id": "i4",
            "category": "praise",
            "occurred_at": at("2026-01-07T09:00:00+08:00"),
        },
    )
    ruleset = load_rules(ROOT / "rules").ruleset
    assert ruleset is not None
    window = Window(date(2026, 1, 5), date(2026, 1, 9), time(8), SHANGHAI, warmup=timedelta(0))

    replayed = replay(engine, (ROOT / "rules", ruleset), window)

    summary = summarize(Run(ROOT / "rules", ruleset, replayed.tallies[0]), window, None)
    feedback = summary["feedback"]
    assert (feedback["items"], feedback["owned"], feedback["breached"]) == (4, 3, 2)
    assert {owner: t["opened"] for owner, t in summary["tasks"].items()} == {
        "customer_service": 3,
        "business": 2,
        "management": 1,
    }
    assert {owner: t["overdue"] for owner, t in summary["tasks"].items()} == {
        "customer_service": 2,
        "business": 1,
        "management": 1,
    }
    journal = journal_of(replayed)
    escalations = sorted(
        (rule, who)
        for rule, who, _, event, _ in journal.firings
        if (event or "").startswith("overdue:")
    )
    assert escalations == [
        ("feedback_overdue_to_business", "s2"),
        ("feedback_overdue_to_business", "s3"),
        ("feedback_overdue_to_management", "s3"),
    ]


QUIET_SPELL = """
rules:
  - id: quiet_spell
    description: 20 days without a purchase and no login in the last 30.
    trigger: schedule
    when:
      - days_since_last_purchase: {gte: 20}
      - logins_30d: 0
    actions:
      - tag: {tag: churn_risk}
    reentry: {every: 100d}
    tags: [churn_signal]
"""


def test_churn_outcomes_precision_unflagged_share_and_recall(
    engine: Engine, tmp_path: Path
) -> None:
    """Ten daily steps S0..S9 from 1 March (D0), horizon 30 days, all outcomes known (a
    login 200 days later ends the history).

    customer | purchases            | flagged           | current / left after, per step
    a        | D0-25d               | S0, then left     | 10 / 10 (no purchase ever after)
    b        | D0-25d, D0+4d 10:00  | S0, did not leave | 10 / 5 (S5..S9: nothing after D0+4d)
    c        | D0-5d                | not (20 d only at S15) | 10 / 10
    g        | D0-22d, login D0-2d  | not (the login)   | 10 / 10
    d        | D0-400d              | S0, late: bought nothing for a year | 0
    e        | never                | no                | 0

    precision = 1/2 (a left, b did not); unflagged = 40 current customer-steps - 2
    flagged = 38, of whom 35 - 1 = 34 left: 34/38. The eligible population (the rule's
    other condition, no login in 30 days, and a last purchase): a, b and c at every step
    (g logged in), 30 customer-steps, of which 10 + 5 + 10 = 25 left: fair lift
    (1/2) / (25/30) = 0.6. Departures (a purchase, then 30 days
    without one, ending in the period): a (D0+5d) and g (D0+8d); b bought again within
    30 days, c's ends after the period. The rule caught a: recall 1/2.
    """
    for name in "abcdeg":
        customer(engine, name)
    bought(engine, "a", "2026-02-04T10:00:00+08:00")
    bought(engine, "b", "2026-02-04T10:00:00+08:00", "2026-03-05T10:00:00+08:00")
    bought(engine, "c", "2026-02-24T10:00:00+08:00")
    bought(engine, "g", "2026-02-07T10:00:00+08:00")
    bought(engine, "d", "2025-01-20T10:00:00+08:00")
    logged_in(engine, "g", "2026-02-27T10:00:00+08:00")
    logged_in(engine, "e", "2026-09-17T10:00:00+08:00")

    churn = churn_figures(engine, tmp_path, march(10))

    assert churn["flagged"] == 2 and churn["flagged_left"] == 1 and churn["precision"] == 0.5
    assert (churn["unflagged"], churn["unflagged_share"]) == (38, 34 / 38)
    assert (churn["eligible"], churn["eligible_share"]) == (30, 25 / 30)
    assert churn["fair_lift"] == 0.5 / (25 / 30)
    assert (churn["customers_left"], churn["customers_caught"], churn["recall"]) == (2, 1, 0.5)
    assert (churn["late"], churn["pending"]) == (1, 0)


def test_a_flag_too_recent_to_judge_is_pending(engine: Engine, tmp_path: Path) -> None:
    """The history ends ten days after the flag: with a 30-day horizon its outcome is
    not known yet, so it is neither right nor wrong."""
    customer(engine, "a")
    bought(engine, "a", "2026-02-04T10:00:00+08:00")
    logged_in(engine, "a", "2026-03-11T10:00:00+08:00")

    churn = churn_figures(engine, tmp_path, march(3))

    assert churn["pending"] == 1 and churn["flagged"] == 0


WEEKLY = promotion("weekly", "7d", cap=1)


def test_the_replay_starts_where_live_left_off_and_counts_nothing_of_the_warm_up(
    engine: Engine, tmp_path: Path
) -> None:
    """Live fired `weekly` for `a` on 3 March and sent `b` a marketing message on 4
    March: the replay (warm-up from 5 March, counting from 8 March) knows both. `a` is
    due again on the 10th; `b` fires on the 5th but the cap holds it, which spends no
    re-entry: it fires every morning, its week's message planned again, until the cap
    lets it out on the 11th. A customer created on the 9th is first seen on the 10th; `c`, with no
    live history, fires on the 5th, in the warm-up: not counted."""
    for name in "abc":
        customer(engine, name, email=f"{name}@example.cn", consent_email=True)
        bought(engine, name, "2025-06-01T10:00:00+08:00")
    add_customer(
        engine,
        "late",
        email="l@example.cn",
        consent_email=True,
        created_at=at("2026-03-09T12:00:00+08:00"),
    )
    bought(engine, "late", "2026-03-09T13:00:00+08:00")
    directory = rules(tmp_path, WEEKLY)
    activate(engine, directory[1], at("2026-03-01T00:00:00+08:00"))
    with engine.begin() as connection:
        connection.execute(
            insert(FIRINGS),
            [
                {
                    "revision": directory[1].revision,
                    "rule_id": "weekly",
                    "customer_id": "a",
                    "as_of": at("2026-03-03T08:00:00+08:00"),
                    "event_id": "",
                    "values": {},
                    "held_out": False,
                    "created_at": at("2026-03-03T08:00:00+08:00"),
                }
            ],
        )
        connection.execute(
            insert(MESSAGES),
            [
                {
                    "key": "other.0:b:once",
                    "customer_id": "b",
                    "rule_id": "other",
                    "channels": "",
                    "template": "t",
                    "purpose": "marketing",
                    "status": "sent",
                    "channel": "email",
                    "due_at": at("2026-03-04T08:00:00+08:00"),
                    "sent_at": at("2026-03-04T08:00:00+08:00"),
                    "attempts": 1,
                    "created_at": at("2026-03-04T08:00:00+08:00"),
                }
            ],
        )
    window = Window(
        date(2026, 3, 8), date(2026, 3, 14), time(8), SHANGHAI, warmup=timedelta(days=3)
    )

    replayed = replay(engine, directory, window)

    journal = journal_of(replayed)
    fired = sorted((who, when.astimezone(UTC).day) for _, who, when, _, _ in journal.firings)
    held = [("b", day) for day in range(5, 12)]
    assert fired == [("a", 10), *held, ("c", 5), ("c", 12), ("late", 10)]
    outcomes = {
        key.split(":")[1] + f" {when.day}": outcome
        for key, (outcome, _, when) in journal.messages.items()
    }
    assert outcomes["b 8"] == "suppressed:frequency_cap" and outcomes["b 11"] == "sent"
    assert replayed.tallies[0].firings["weekly"] == [7]  # a 10, b 8 to 11, c 12, late 10
    assert replayed.tallies[0].customers == 4
