"""Tests for `rapport.demo.sample`: the seeded synthetic customer base and event history."""

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import exp
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.vocabulary import SURVEY_CATEGORIES
from rapport.demo.sample import SampleFiles, write_sample

END = datetime(2026, 3, 15, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
WINDOW_START = END - timedelta(days=400)
HEADER = (
    "id,name,email,phone,wechat,segment,birthday,locale,timezone,account_manager,"
    "consent_email,consent_sms,consent_wechat,consent_app,created_at,city"
)
EXTRA_KEYS = {
    "purchase": {"amount", "quantity", "product"},
    "refund": {"amount", "product"},
    "login": set(),
    "contact": {"channel", "text"},
    "feedback": {"level", "category", "channel", "text"},
    "feedback_resolved": {"ref", "text"},
    "survey": {"score"},
}
OPTIONAL_KEYS = {"contact": {"ref"}, "survey": {"category"}}  # first responses, dimensions
DIMENSIONS = set(SURVEY_CATEGORIES) - {"nps"}
SLA = {"general": timedelta(hours=1), "complex": timedelta(hours=24), "major": timedelta(hours=48)}
OFFSET = re.compile(r"T\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
EN_ZONES = {"Europe/London", "America/New_York", "Asia/Singapore", "Australia/Sydney"}
Sample = tuple[SampleFiles, list[dict[str, str]], list[dict]]
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Truth:
    """A row of truth.csv: what the process drew for one customer."""

    purchase_rate: float  # a day
    dropout_rate: float  # a day
    observed_from: datetime
    dropout_at: datetime | None  # None: still alive at END


def read_truth(files: SampleFiles) -> dict[str, Truth]:
    """The customers' draws, prospects left out."""
    assert files.truth is not None
    with files.truth.open(encoding="utf-8", newline="") as handle:
        return {
            row["id"]: Truth(
                float(row["purchase_rate"]),
                float(row["dropout_rate"]),
                datetime.fromisoformat(row["observed_from"]),
                datetime.fromisoformat(row["dropout_at"]) if row["dropout_at"] else None,
            )
            for row in csv.DictReader(handle)
            if row["purchase_rate"]
        }


def moments(events: list[dict], kind: str) -> dict[str, list[datetime]]:
    """Per customer, when their events of `kind` happened."""
    found: dict[str, list[datetime]] = defaultdict(list)
    for event in events:
        if event["type"] == kind:
            found[event["customer_id"]].append(datetime.fromisoformat(event["occurred_at"]))
    return found


def read_customers(files: SampleFiles) -> list[dict[str, str]]:
    with files.customers.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert ",".join(reader.fieldnames or []) == HEADER
        return list(reader)


def read_events(files: SampleFiles) -> list[dict]:
    with files.events.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """2,000 customers with the default 20 events each, and what the process drew, read back."""
    files = write_sample(tmp_path_factory.mktemp("sample"), customers=2_000, end=END, truth=True)
    return files, read_customers(files), read_events(files)


def test_same_arguments_give_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    first = write_sample(tmp_path / "a", customers=300, seed=3, end=END, truth=True)
    again = write_sample(tmp_path / "b", customers=300, seed=3, end=END, truth=True)
    other = write_sample(tmp_path / "c", customers=300, seed=4, end=END)
    assert first.customers.read_bytes() == again.customers.read_bytes()
    assert first.events.read_bytes() == again.events.read_bytes()
    assert first.truth and again.truth and first.truth.read_bytes() == again.truth.read_bytes()
    assert other.truth is None and not (tmp_path / "c" / "truth.csv").exists()
    assert (first.customer_count, first.event_count) == (again.customer_count, again.event_count)
    assert first.customers.read_bytes() != other.customers.read_bytes()
    assert first.events.read_bytes() != other.events.read_bytes()


def test_counts_match_the_files(sample: Sample) -> None:
    files, customers, events = sample
    assert files.customers.name == "customers.csv" and files.events.name == "events.jsonl"
    assert files.customer_count == len(customers) == 2_000
    assert files.event_count == len(events)
    assert files.events.read_text(encoding="utf-8").count("\n") == files.event_count


def test_mean_events_per_customer_is_close_to_the_request(sample: Sample) -> None:
    files, _, _ = sample
    assert abs(files.event_count / files.customer_count - 20.0) <= 20.0 * 0.15


def test_fewer_events_asked_for_make_fewer_and_none_make_prospects(tmp_path: Path) -> None:
    few = write_sample(tmp_path / "few", customers=3_000, events_per_customer=4.0, end=END)
    assert abs(few.event_count / few.customer_count - 4.0) <= 4.0 * 0.15
    none = write_sample(tmp_path / "none", customers=50, events_per_customer=0, end=END)
    assert (none.customer_count, none.event_count) == (50, 0)
    assert len(read_customers(none)) == 50


def test_customer_rows_are_well_formed(sample: Sample) -> None:
    _, customers, _ = sample
    assert [row["id"] for row in customers] == [f"C{n:06d}" for n in range(1, 2_001)]
    for row in customers:
        assert row["segment"] in {"consumer", "enterprise"}
        if row["locale"] == "zh-CN":
            assert row["timezone"] == "Asia/Shanghai" and row["phone"].startswith("+86 1")
        else:
            assert row["locale"] == "en" and row["timezone"] in EN_ZONES
            assert not row["phone"].startswith("+86")
        if row["email"]:
            assert row["email"].isascii() and "@" in row["email"]
        if row["segment"] == "enterprise":
            assert row["birthday"] == "" and row["account_manager"]
        elif row["birthday"]:
            assert re.fullmatch(r"(19[5-9]\d|200\d)-\d\d-\d\d", row["birthday"])
        for column in ("consent_email", "consent_sms", "consent_wechat", "consent_app"):
            assert row[column] in {"true", "false"}
        assert OFFSET.search(row["created_at"]) and datetime.fromisoformat(row["created_at"]) < END
    chinese = sum(row["locale"] == "zh-CN" for row in customers) / len(customers)
    enterprise = sum(row["segment"] == "enterprise" for row in customers) / len(customers)
    assert 0.55 < chinese < 0.65 and 0.12 < enterprise < 0.18
    assert any(row["birthday"].endswith("-02-29") for row in customers)


def test_events_are_well_formed_and_inside_the_window(sample: Sample) -> None:
    _, customers, events = sample
    zones = {row["id"]: ZoneInfo(row["timezone"]) for row in customers}
    assert len({event["id"] for event in events}) == len(events)
    for event in events:
        assert event["customer_id"] in zones
        extra = set(event) - {"id", "customer_id", "type", "occurred_at"}
        required = EXTRA_KEYS[event["type"]]
        assert required <= extra <= required | OPTIONAL_KEYS.get(event["type"], set()), event
        assert OFFSET.search(event["occurred_at"]), event
        occurred = datetime.fromisoformat(event["occurred_at"])
        assert WINDOW_START <= occurred <= END
        assert occurred.utcoffset() == occurred.astimezone(zones[event["customer_id"]]).utcoffset()
        if event["type"] == "purchase":
            assert event["amount"] > 0 and event["amount"] == round(event["amount"], 2)
            assert isinstance(event["quantity"], int) and event["quantity"] >= 1
        if event["type"] == "survey":
            assert event["score"] in range(11)


def test_each_customer_history_is_contiguous_sorted_and_after_creation(sample: Sample) -> None:
    _, customers, events = sample
    created = {row["id"]: datetime.fromisoformat(row["created_at"]) for row in customers}
    order = [event["customer_id"] for event in events]
    runs = [cid for index, cid in enumerate(order) if index == 0 or order[index - 1] != cid]
    assert runs == sorted(set(order))  # one block per customer, in customer order
    by_customer: dict[str, list[datetime]] = defaultdict(list)
    for event in events:
        by_customer[event["customer_id"]].append(datetime.fromisoformat(event["occurred_at"]))
    for cid, times in by_customer.items():
        assert times == sorted(times) and created[cid] < times[0]
    prospects = len(customers) - len(by_customer)
    assert 1 <= prospects <= 20  # about 0.3% have no events at all


def test_resolutions_point_to_an_earlier_feedback_of_the_same_customer(sample: Sample) -> None:
    _, _, events = sample
    seen: dict[str, dict] = {}
    resolved, feedback = set(), 0
    for event in events:
        if event["type"] == "feedback_resolved":
            source = seen[event["ref"]]  # KeyError if the ref is not an earlier event
            assert source["type"] == "feedback"
            assert source["customer_id"] == event["customer_id"]
            opened = datetime.fromisoformat(source["occurred_at"])
            assert opened < datetime.fromisoformat(event["occurred_at"])
            assert event["ref"] not in resolved
            resolved.add(event["ref"])
        feedback += event["type"] == "feedback"
        seen[event["id"]] = event
    assert 0.7 * feedback < len(resolved) < feedback  # most are resolved, some stay open


def test_spending_tiers_and_behaviour_patterns_exist(sample: Sample) -> None:
    _, customers, events = sample
    year_ago = END - timedelta(days=365)
    spend: dict[str, float] = defaultdict(float)
    days_ago: dict[tuple[str, str], list[int]] = defaultdict(list)  # (customer, type) -> days
    for event in events:
        occurred = datetime.fromisoformat(event["occurred_at"])
        days_ago[event["customer_id"], event["type"]].append((END - occurred).days)
        if event["type"] == "purchase" and occurred > year_ago:
            spend[event["customer_id"]] += event["amount"]
    count = len(customers)
    assert 0.03 < sum(value > 100_000 for value in spend.values()) / count < 0.08
    assert 0.22 < sum(10_000 <= value <= 100_000 for value in spend.values()) / count < 0.38
    purchases = [days for (_, kind), days in days_ago.items() if kind == "purchase"]
    logins = [days for (_, kind), days in days_ago.items() if kind == "login"]

    def share(lists: list[list[int]], recent: int, earlier: tuple[int, int], least: int) -> float:
        """Share of customers with >= `least` items `earlier` but <= 1 in the last `recent` days."""
        return (
            sum(
                sum(earlier[0] <= day < earlier[1] for day in days) >= least
                and sum(day < recent for day in days) <= 1
                for days in lists
            )
            / count
        )

    assert sum(max(days) < 90 for days in purchases) > 0.05 * count  # new customers
    assert sum(min(days) >= 180 for days in purchases) > 0.1 * count  # gone quiet
    assert share(purchases, 90, (90, 180), 3) > 0.03  # purchase frequency dropped
    # Logins dropped as `churn_login_drop` sees it: rarer than the purchase patterns, as only
    # customers who log in often can drop (the fade itself is tested with the truth below).
    dropped = sum(
        sum(30 <= day < 60 for day in days) >= 4
        and sum(day < 30 for day in days) < sum(30 <= day < 60 for day in days) / 2
        for days in logins
    )
    assert dropped > 0.01 * count


def test_end_must_be_timezone_aware(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        write_sample(tmp_path, customers=1, end=datetime(2026, 3, 15))


def test_some_surveys_also_rate_each_satisfaction_dimension(sample: Sample) -> None:
    _, _, events = sample
    surveys = [event for event in events if event["type"] == "survey"]
    nps = [event for event in surveys if "category" not in event]
    dimensions = [event for event in surveys if "category" in event]
    assert {event["category"] for event in dimensions} == DIMENSIONS
    assert all(event["score"] in range(11) for event in dimensions)
    # Each dimension answer follows an NPS answer of the same moment: the NPS answer, then
    # one answer per dimension, ids in sequence; scores stay close to the NPS score.
    index = {event["id"]: position for position, event in enumerate(events)}
    asked, gaps = 0, defaultdict(list)
    for answer in nps:
        group = events[index[answer["id"]] + 1 : index[answer["id"]] + 1 + len(DIMENSIONS)]
        if not (group and group[0]["type"] == "survey" and "category" in group[0]):
            continue
        asked += 1
        assert [event["category"] for event in group] == sorted(
            DIMENSIONS, key=SURVEY_CATEGORIES.index
        )
        for event in group:
            assert event["customer_id"] == answer["customer_id"]
            assert event["occurred_at"] == answer["occurred_at"]
            assert abs(event["score"] - answer["score"]) <= 3
            gaps[event["category"]].append(event["score"] - answer["score"])
    assert asked * len(DIMENSIONS) == len(dimensions)  # none stray from an NPS answer
    assert 0.4 < asked / len(nps) < 0.6  # about half the survey moments ask about them
    mean = {name: sum(values) / len(values) for name, values in gaps.items()}
    assert all(-0.6 < mean[name] < 0.3 for name in DIMENSIONS - {"price"})
    assert mean["price"] < min(mean[name] for name in DIMENSIONS - {"price"}) - 0.5


def test_first_responses_answer_an_earlier_feedback_of_the_same_customer(sample: Sample) -> None:
    _, _, events = sample
    seen: dict[str, dict] = {}
    answered: set[str] = set()
    feedback = 0
    for event in events:
        if event["type"] == "contact" and "ref" in event:
            source = seen[event["ref"]]  # KeyError if the ref is not an earlier event
            assert source["type"] == "feedback"
            assert source["customer_id"] == event["customer_id"]
            assert source["channel"] == event["channel"]  # answered where it was raised
            opened = datetime.fromisoformat(source["occurred_at"])
            assert opened < datetime.fromisoformat(event["occurred_at"])
            assert event["ref"] not in answered  # one first response per feedback item
            answered.add(event["ref"])
        feedback += event["type"] == "feedback"
        seen[event["id"]] = event
    assert 0.97 * feedback <= len(answered) <= feedback  # only the latest may be unanswered


def test_a_resolution_never_precedes_the_first_response(sample: Sample) -> None:
    _, _, events = sample
    responded = {
        event["ref"]: datetime.fromisoformat(event["occurred_at"])
        for event in events
        if event["type"] == "contact" and "ref" in event
    }
    resolutions = [event for event in events if event["type"] == "feedback_resolved"]
    assert resolutions
    for event in resolutions:
        assert responded[event["ref"]] <= datetime.fromisoformat(event["occurred_at"])


def test_most_but_not_all_first_responses_meet_the_level_sla(sample: Sample) -> None:
    _, _, events = sample
    by_id = {event["id"]: event for event in events}
    delays: dict[str, list[timedelta]] = defaultdict(list)
    for event in events:
        if event["type"] == "contact" and "ref" in event:
            source = by_id[event["ref"]]
            delay = datetime.fromisoformat(event["occurred_at"]) - datetime.fromisoformat(
                source["occurred_at"]
            )
            delays[source["level"]].append(delay)
    bands = {"general": (0.74, 0.86), "complex": (0.75, 0.93), "major": (0.55, 0.92)}
    for level, (low, high) in bands.items():
        within = sum(delay <= SLA[level] for delay in delays[level]) / len(delays[level])
        assert low < within < high, (level, within, len(delays[level]))
        assert max(delays[level]) <= 4 * SLA[level]  # late ones come within a few times it
    assert len(delays["major"]) >= 30  # enough items for the band to mean something


def test_the_share_who_dropped_out_is_what_the_drawn_rates_imply(sample: Sample) -> None:
    files, customers, _ = sample
    truth = read_truth(files)
    assert len(truth) >= 0.99 * len(customers)  # all but the prospects
    implied = sum(
        1 - exp(-life.dropout_rate * (END - life.observed_from) / DAY) for life in truth.values()
    )
    dropped = [life for life in truth.values() if life.dropout_at is not None]
    assert 0.15 * len(truth) < len(dropped) < 0.5 * len(truth)  # churn to be found, not all
    assert abs(len(dropped) - implied) < 0.03 * len(truth), (len(dropped), implied)
    for life in dropped:
        assert life.dropout_at and life.observed_from < life.dropout_at <= END
    # Rates differ between customers: the quartiles of each are well apart.
    for rates in ([life.purchase_rate for life in truth.values()],
                  [life.dropout_rate for life in truth.values()]):  # fmt: skip
        rates.sort()
        assert rates[3 * len(rates) // 4] > 2 * rates[len(rates) // 4]


def test_customers_alive_buy_at_their_drawn_rate(sample: Sample) -> None:
    files, _, events = sample
    truth, bought = read_truth(files), moments(events, "purchase")
    since = END - timedelta(days=180)
    alive = [
        cid for cid, life in truth.items() if life.dropout_at is None and life.observed_from < since
    ]
    alive.sort(key=lambda cid: truth[cid].purchase_rate)
    # Slow and fast buyers each make the purchases their rates say, within 10%.
    for half in (alive[: len(alive) // 2], alive[len(alive) // 2 :]):
        expected = sum(truth[cid].purchase_rate * 180 for cid in half)
        counted = sum(sum(at > since for at in bought[cid]) for cid in half)
        assert abs(counted - expected) < 0.1 * expected, (counted, expected)


def test_nobody_buys_after_dropping_out(sample: Sample) -> None:
    files, _, events = sample
    truth, bought = read_truth(files), moments(events, "purchase")
    leavers = {cid: life.dropout_at for cid, life in truth.items() if life.dropout_at}
    # A purchase is stamped on its day at a time of day of its own: allow that day.
    assert all(at < leavers[cid] + DAY for cid in leavers for at in bought[cid])
    assert sum(bool(bought[cid]) for cid in leavers) > 0.8 * len(leavers)


def test_logins_fall_off_before_the_dropout_and_almost_stop_after(sample: Sample) -> None:
    files, _, events = sample
    truth, logins = read_truth(files), moments(events, "login")
    last_month = month_before = after = leavers = 0
    days_after = 0.0
    for cid, life in truth.items():
        dropout = life.dropout_at
        if dropout is None or dropout - life.observed_from < timedelta(days=60):
            continue
        last_month += sum(dropout - timedelta(days=30) <= at < dropout for at in logins[cid])
        month_before += sum(
            dropout - timedelta(days=60) <= at < dropout - timedelta(days=30) for at in logins[cid]
        )
        leavers += 1
        after += sum(at >= dropout + DAY for at in logins[cid])
        days_after += max(0.0, (END - dropout) / DAY - 1)
    assert month_before >= 150  # enough logins to compare
    assert last_month < 0.6 * month_before, (last_month, month_before)
    assert after / days_after < 0.1 * month_before / (30 * leavers)  # a trickle once gone
