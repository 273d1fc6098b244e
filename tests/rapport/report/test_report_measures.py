"""Every measure of the relationship report against values computed by hand.

The data set: six customers over June 2026 (UTC). C is in the control group (salt
`test-0`, 20 %), the others are treated. The comments give each hand computation.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Table, insert

from engine.loader import load_rules
from engine.measure_settings import ControlGroup, Measures
from engine.model import RuleSet
from rapport.report.build import Report, build_report
from rapport.report.html import report_html
from rapport.report.measures import Rate
from rapport.report.text import comparison_headers, comparison_rows, headline, return_line
from rapport.services.staff_language import use_locale
from storage.tables import FIRINGS, MESSAGES, REVISIONS, TASKS
from tests.factories import add_customer, add_events
from tests.paths import ROOT
from tests.rapport.report.test_comparison import group

START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 7, 1, tzinfo=UTC)
RULES = ROOT / "rules"
SETTINGS = Measures(
    control=ControlGroup(percent=20, salt="test-0"),
    message_costs={"email": 1.0, "sms": 2.0, "wechat": 0.5, "app": 0.25},
    task_costs={"default": 10.0, "relationship_call": 25.0},
)


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _ruleset() -> RuleSet:
    ruleset = load_rules(RULES).ruleset
    assert ruleset is not None
    return replace(ruleset, measures=SETTINGS)


def _insert(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    with engine.begin() as connection:
        return [
            connection.execute(insert(table).returning(table.c.id), row).one()[0] for row in rows
        ]


def _sale(kind: str, when: datetime, amount: float) -> dict[str, Any]:
    return {"type": kind, "occurred_at": when, "amount": amount}


def _survey(when: datetime, score: int, question: str | None = None) -> dict[str, Any]:
    return {"type": "survey", "occurred_at": when, "score": score, "category": question}


def _data_set(engine: Engine, revision: str) -> None:
    for customer in "ABCDEF":
        add_customer(engine, customer, segment="enterprise" if customer == "D" else "consumer")
    add_events(
        engine,
        "A",
        _sale("purchase", at(5, 1, year=2025), 100),
        _sale("purchase", at(3, 15), 100),
        _sale("purchase", at(5, 20), 200),
        _sale("purchase", at(6, 10), 300),
        _sale("refund", at(6, 12), 50),
        _survey(at(5, 30), 0),  # before the period
        _survey(at(6, 2), 9),
        _survey(at(6, 2), 6, "product_fit"),
        _survey(at(6, 2), 9, "response_speed"),
        {"id": "fb-a0", "type": "feedback", "occurred_at": at(5, 20), "level": "general"},
        {"id": "fb-a1", "type": "feedback", "occurred_at": at(6, 3, 10), "level": "general"},
        {"type": "contact", "occurred_at": at(6, 3, 10, 30), "ref": "fb-a1", "channel": "phone"},
        {"type": "feedback_resolved", "occurred_at": at(6, 4, 8), "ref": "fb-a1"},
    )
    add_events(
        engine,
        "B",
        _sale("purchase", at(5, 25, year=2025), 1000),
        _sale("purchase", at(3, 10, 12), 150_000),
        _survey(at(6, 3), 6),
        {"id": "fb-b1", "type": "feedback", "occurred_at": at(6, 5, 10), "level": "general"},
        {"type": "contact", "occurred_at": at(6, 5, 12), "ref": "fb-b1", "channel": "phone"},
        {"id": "fb-b2", "type": "feedback", "occurred_at": at(6, 10), "level": "complex"},
        {"type": "feedback_resolved", "occurred_at": at(6, 20), "ref": "fb-b2"},
    )
    add_events(
        engine,
        "C",
        _sale("purchase", at(2, 1), 500),
        _sale("purchase", at(6, 20), 400),
        _survey(at(6, 9), 7),
    )
    add_events(
        engine,
        "D",
        _survey(at(6, 4), 10),
        _survey(at(6, 4), 8, "product_fit"),
        _survey(at(6, 4), 5, "price"),
        {"id": "fb-d1", "type": "feedback", "occurred_at": at(6, 30, 12), "level": "major"},
    )
    with engine.begin() as connection:
        connection.execute(
            insert(REVISIONS),
            [{"hash": revision, "loaded_at": START, "files": {}, "active": True}],
        )

    def firing(customer: str, rule: str, when: datetime, held: bool = False):  # type: ignore[no-untyped-def]
        return {
            "revision": revision,
            "rule_id": rule,
            "customer_id": customer,
            "as_of": when,
            "event_id": "",
            "values": {},
            "held_out": held,
            "created_at": when,
        }

    _insert(
        engine,
        FIRINGS,
        [
            firing("C", "at_risk_winback", at(5, 25), held=True),  # control: held out
            firing("E", "at_risk_winback", at(5, 10)),  # its 30 days end on 9 June
            firing("F", "at_risk_winback", at(6, 20)),  # its window ends in July: not yet
            firing("B", "at_risk_winback", at(4, 20)),  # its window ended in May
        ],
    )

    def task(customer: str, key: str, created: datetime, due: datetime, **values: Any):  # type: ignore[no-untyped-def]
        return {
            "key": key,
            "customer_id": customer,
            "rule_id": values.pop("rule_id", "feedback_complex_to_business"),
            "kind": values.pop("kind", "feedback_remediation"),
            "owner_role": "business",
            "ledger": values.pop("ledger", True),
            "status": values.pop("status", "open"),
            "due_at": due,
            "created_at": created,
            **values,
        }

    _insert(
        engine,
        TASKS,
        [
            task(
                "B",
                "L1",
                at(6, 10),
                at(6, 17),
                event_id="fb-b2",
                status="closed",
                closed_at=at(6, 10, 20),
                acceptance_note="unit replaced",
            ),
            task("A", "L2", at(6, 15), at(6, 20)),  # open past its deadline
            task("D", "L3", at(6, 28), at(7, 5)),  # open, not yet due
            task(
                "A",
                "L4",
                at(5, 1),
                at(5, 8),
                status="closed",
                closed_at=at(5, 5),
                acceptance_note="ok",
            ),
            task("B", "L5", at(6, 11), at(6, 12), status="escalated", closed_at=at(6, 12)),
            task(
                "B",
                "T6",
                at(6, 2),
                at(6, 9),
                ledger=False,
                kind="relationship_call",
                rule_id="high_monthly_personal_contact",
            ),
        ],
    )

    def message(customer: str, key: str, rule: str, channel: str, sent: datetime | None):  # type: ignore[no-untyped-def]
        return {
            "key": key,
            "customer_id": customer,
            "rule_id": rule,
            "template": "t",
            "channel": channel,
            "status": "sent" if sent else "pending",
            "due_at": sent or at(6, 1),
            "sent_at": sent,
            "created_at": sent or at(6, 1),
        }

    _insert(
        engine,
        MESSAGES,
        [
            message("A", "M1", "mid_biweekly_message", "email", at(6, 5)),
            message("A", "M2", "mid_biweekly_message", "sms", at(6, 8)),
            message("C", "M3", "feedback_acknowledgement", "email", at(6, 6)),
            message("A", "M4", "mid_biweekly_message", "email", None),  # not sent: free
            message("B", "M5", "mid_biweekly_message", "email", at(5, 30)),  # before
        ],
    )


@pytest.fixture
def report(engine: Engine) -> Report:
    ruleset = _ruleset()
    _data_set(engine, ruleset.revision)
    return build_report(engine, ruleset, START, END, timezone="UTC", currency="CNY")


def test_the_control_group_of_the_data_set_is_c_alone() -> None:
    assert [c for c in "ABCDEF" if SETTINGS.control.holds_out(c)] == ["C"]


def test_retention_and_churn(report: Report) -> None:
    # Active on 1 June (a purchase in [3 March, 1 June)): A and B. On 1 July ([2 April,
    # 1 July)): A (10 June), not B (last bought 10 March). C bought in February only.
    assert report.overall.retention == Rate(1, 2)
    assert report.overall.churn == Rate(1, 2)
    assert report.treated.retention == Rate(1, 2)
    assert report.control.retention == Rate(0, 0)  # nobody in control was active
    assert report.control.retention.value is None


def test_winback_rate(report: Report) -> None:
    # Windows ending in June: C's (held out, 25 May) and E's (10 May). C bought on
    # 20 June, within 30 days: won. E did not buy. F's window ends in July and B's
    # ended in May: neither counts in June.
    assert report.overall.winback == Rate(1, 2)
    assert report.treated.winback == Rate(0, 1)
    assert report.control.winback == Rate(1, 1)


def test_net_promoter_score(report: Report) -> None:
    # June NPS answers: A 9, B 6, D 10 (treated), C 7 (control); A's 0 is from May.
    assert report.overall.nps == pytest.approx(100 * (2 - 1) / 4)
    assert report.overall.nps_answers == 4
    assert report.treated.nps == pytest.approx(100 / 3)
    assert report.control.nps == 0.0


def test_weighted_satisfaction_index_is_normalised(report: Report) -> None:
    # Product fit (6 + 8) / 2 = 7, response speed 9, price 5; resolution quality and
    # brand unanswered, so the weights 40 + 25 + 15 = 80 are what is divided by.
    assert report.overall.dimensions == {
        "product_fit": 7.0,
        "response_speed": 9.0,
        "resolution_quality": None,
        "price": 5.0,
        "brand": None,
    }
    assert report.overall.satisfaction == pytest.approx(10 * (40 * 7 + 25 * 9 + 15 * 5) / 80)
    assert report.control.satisfaction is None


def test_feedback_sla_per_level(report: Report) -> None:
    general, complex_, major = (
        report.overall.sla[level] for level in ("general", "complex", "major")
    )
    # Targets count on the business clock (09:00-18:00 in Shanghai, policy.yaml).
    # fb-a1: answered after 30 min (within 1 h), resolved after 22 h (within 24 h);
    # fb-b1 came at 18:00 on a Friday in Shanghai (10:00 UTC), after hours: its working
    # hour runs to Monday 10:00, so the answer at 20:00 met it; never resolved though
    # its working day passed. fb-a0 is May's.
    assert general.items == 2
    assert general.response == Rate(2, 2)
    assert general.resolution == Rate(1, 2)
    assert general.median_response_hours == pytest.approx(1.25)
    assert general.median_resolution_hours == pytest.approx(22)
    # fb-b2: its task was closed after 20 h (within 24 h); resolved after 10 calendar
    # days, within its 7 working days: they run to Monday 22 June 09:00, because of
    # the weekends and the Dragon Boat Festival (Friday 19 June).
    assert complex_.items == 1
    assert complex_.response == Rate(1, 1)
    assert complex_.resolution == Rate(1, 1)
    assert complex_.median_resolution_hours == pytest.approx(240)
    # fb-d1 arrived 12 h before the end: nothing is due yet, so no rate.
    assert major.items == 1
    assert major.response == Rate(0, 0)
    assert major.median_response_hours is None
    assert report.control.sla["general"].items == 0  # control had no feedback


def test_remediation_ledger_status(report: Report) -> None:
    # L1 closed in June with a note; L2 open past its due date; L3 open, due in July.
    # L4 was closed in May; L5 was escalated (its successor is what counts).
    ledger = report.overall.ledger
    assert (ledger.open, ledger.overdue, ledger.closed_accepted) == (1, 1, 1)
    assert report.control.ledger.overdue == 0


def test_lifetime_value_historical_and_projected(report: Report) -> None:
    # Buyers A (650 net), B (151,000), C (900). Active a year before the end: A and B;
    # of them A is active at the end, so r = 0.5 and r + r² + r³ = 0.875. Trailing 12
    # months: A 550, B 150,000, C 900.
    assert report.overall.clv == pytest.approx((650 + 151_000 + 900) / 3)
    projected = (650 + 151_000 + 900 + (550 + 150_000 + 900) * 0.875) / 3
    assert report.overall.clv_projected == pytest.approx(projected)
    assert report.control.clv == pytest.approx(900)
    # Nobody in control was active a year ago: everyone's r (0.5) stands in.
    assert report.control.clv_projected == pytest.approx(900 + 900 * 0.875)
    enterprise = report.by_segment["enterprise"]  # D alone, who never bought
    assert enterprise.customers == 1
    assert enterprise.clv is None
    assert enterprise.revenue == 0


def test_return_on_relationship_spend(report: Report) -> None:
    # Spend: A email 1 + SMS 2 + task L2 10; B tasks L1, L5 10 each + call T6 25;
    # D task L3 10; C (control) a service email 1. M4 was not sent, M5 was in May.
    assert report.treated.spend == pytest.approx(68)
    assert report.control.spend == pytest.approx(1)
    # Revenue after each customer's first contact: A from 5 June: 300 − 50; B from
    # 2 June: nothing; C from 6 June: 400.
    assert report.treated.contacted_revenue == pytest.approx(250)
    assert report.overall.contacted_revenue_per_spend == pytest.approx(650 / 69)
    assert report.treated.revenue == pytest.approx(250)
    assert report.control.revenue_per_customer == pytest.approx(400)


def test_the_previous_period_of_the_same_length(report: Report) -> None:
    # June has 30 days: the previous period is 2 May to 31 May. In it: A's purchase of
    # 200 on 20 May and A's NPS answer of 0 on 30 May.
    assert report.previous.customers == 6
    assert report.previous.revenue == pytest.approx(200)
    assert (report.previous.nps, report.previous.nps_answers) == (-100, 1)


def test_the_headline_names_the_last_day_included(report: Report) -> None:
    assert "Jun 1, 2026 to Jun 30, 2026 (both days included, UTC)" in headline(report)


def test_groups_are_the_customers_standing_at_the_start(report: Report) -> None:
    # B's 150,000 in March makes B high tier; D, E and F never bought: prospects.
    assert report.by_tier["high"].customers == 1
    assert report.by_tier["high"].retention == Rate(0, 1)
    assert report.by_tier["base"].customers == 5
    assert report.by_stage["prospect"].customers == 3
    assert report.treated.customers + report.control.customers == 6


def test_series_per_week(report: Report) -> None:
    assert [begin.day for begin, _ in report.steps] == [1, 8, 15, 22, 29]
    assert report.series.messages["mid_biweekly_message"] == [1, 1, 0, 0, 0]
    assert report.series.messages["feedback_acknowledgement"] == [1, 0, 0, 0, 0]
    assert report.series.tasks["feedback_complex_to_business"] == [
        0,
        2,
        1,
        1,
        0,
    ]  # L1, L5 | L2 | L3
    assert report.series.nps[:2] == [pytest.approx(100 / 3), 0.0]
    assert report.series.nps[2:] == [None, None, None]
    # A and B were active on 1 June; B's activity lapses at noon on 8 June (10 March
    # + 90 days), after the first week's end.
    assert report.series.retention["treated"] == [1.0, 0.5, 0.5, 0.5, 0.5]


def test_a_period_with_no_feedback_surveys_or_work(engine: Engine) -> None:
    ruleset = _ruleset()
    _data_set(engine, ruleset.revision)
    quiet = build_report(
        engine, ruleset, at(1, 1), at(1, 8), timezone="UTC", currency="CNY"
    )  # a January week
    assert quiet.overall.nps is None and quiet.overall.satisfaction is None
    assert all(sla.items == 0 and sla.response.value is None for sla in quiet.overall.sla.values())
    assert quiet.overall.spend == 0 and quiet.overall.contacted_revenue_per_spend is None
    assert quiet.overall.winback == Rate(0, 0)
    # Active on 1 January (a purchase since 3 October 2025): nobody, so no retention.
    assert quiet.overall.retention.value is None


def test_the_period_must_end_after_it_starts(engine: Engine) -> None:
    with pytest.raises(ValueError, match="ends after"):
        build_report(
            engine, _ruleset(), END, END - timedelta(days=1), timezone="UTC", currency="CNY"
        )


def test_the_return_line_says_when_the_data_show_nothing(report: Report) -> None:
    # The June data set has one control customer: nothing to compare with.
    assert "n/a (treated and control need 2 customers each" in return_line(report)
    noisy = replace(
        report,
        treated=group(customers=300, revenue=30_000.0, revenue_squares=3e9, spend=1_000.0),
        control=group(customers=100, revenue=9_000.0, revenue_squares=1e9),
    )
    line = return_line(noisy)
    assert "incremental revenue +3,000 CNY" in line and ": 3.0:1 (" in line
    assert "the interval includes 0" in line


def test_the_page_and_its_tables_in_the_staff_language(report: Report) -> None:
    """zh-CN: the page says so (`lang`), every section title and header is Chinese, and
    dates read as Chinese writes them; en stays English."""
    with use_locale("zh-CN"):
        page = report_html(report)
        line = headline(report)
        rows = comparison_rows(report)
        headers = comparison_headers()
    assert page.startswith('<!DOCTYPE html>\n<html lang="zh-CN">')
    assert "<title>客户关系报告：2026年6月1日 至 2026年6月30日</title>" in page
    titles = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert "概要" in titles and "实验组与对照组" in titles and "目录" in titles
    assert not [title for title in titles if re.search("[a-z]{3}", title)], titles
    assert "6月1日" in page  # the charts' x axis
    assert line.startswith("客户关系报告：2026年6月1日 至 2026年6月30日（含首尾两日，UTC）")
    assert headers[5] == "实验组 − 对照组（95% 置信区间）"
    assert [row[0] for row in rows[:4]] == ["客户数", "留存率", "流失率", "挽回率"]

    english = report_html(report)
    assert english.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert "Relationship report Jun 1, 2026 to Jun 30, 2026" in english
    assert not re.search("[\u4e00-\u9fff]", english)
