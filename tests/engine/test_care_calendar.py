"""The care calendar: festivals the holiday library dates, on their first local day,
computed once per country and year, and misspellings reported where they are."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from engine.care_calendar import Festival, first_days
from engine.facts import (
    MESSAGE_CHANNELS,
    CustomerAggregates,
    FactParameters,
    derive_facts,
    holiday_on,
)
from engine.loader import load_rules
from rapport.backtest.aggregates import CustomerHistory
from rapport.backtest.history import Profile
from rapport.backtest.timeline import to_us

SPRING = Festival("Chinese New Year (Spring Festival)", "CN", "Spring Festival")
MID_AUTUMN = Festival("Mid-Autumn Festival", "CN", "Mid-Autumn Festival")
CALENDAR = FactParameters(holidays=(SPRING, MID_AUTUMN))


def test_a_festival_of_several_days_is_greeted_on_its_first_day_only() -> None:
    # 2028: the Eve is 25 January, the festival 26-28 January.
    days = {day: holiday_on(date(2028, 1, day), CALENDAR) for day in range(24, 30)}
    assert days == {24: None, 25: None, 26: "Spring Festival", 27: None, 28: None, 29: None}


def test_a_festival_falls_on_the_customers_own_local_date() -> None:
    moment = datetime(2028, 10, 2, 18, tzinfo=UTC)  # 3 October 02:00 in Shanghai
    facts = {
        zone: derive_facts(_aggregates(zone, moment), moment, CALENDAR)["holiday"]
        for zone in ("Asia/Shanghai", "America/New_York")
    }
    assert facts == {"Asia/Shanghai": "Mid-Autumn Festival", "America/New_York": None}


def test_another_countrys_festival_follows_that_countrys_calendar() -> None:
    thanksgiving = Festival("Thanksgiving Day", "US", "Thanksgiving")
    assert [d.day for d in _days_of(2028, 11) if thanksgiving.falls_on(d)] == [23]


def test_festival_dates_are_computed_once_per_country_and_year() -> None:
    first_days.cache_clear()
    for day in _days_of(2028, *range(1, 13)):
        for _customer in range(50):
            holiday_on(day, CALENDAR)
    assert first_days.cache_info().misses == 1


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{festival: Mid-Autum Festival, name: Mid-Autumn Festival}",
            "rules/care.yaml:3:16: bad-choice: 'Mid-Autum Festival' is not a holiday "
            "holidays knows for CN (did you mean 'Mid-Autumn Festival'?)",
        ),
        (
            "{festival: Mid-Autumn Festival, country: CNN, name: Mid-Autumn}",
            "rules/care.yaml:3:46: bad-choice: 'CNN' is not a country holidays knows "
            "(did you mean 'CN'?)",
        ),
        (
            "{festival: Thanksgiving Day, name: Thanksgiving}",  # CN's calendar by default
            "rules/care.yaml:3:16: bad-choice: 'Thanksgiving Day' is not a holiday "
            "holidays knows for CN",
        ),
        (
            "{festival: Dragon Boat Festival, county: CN, name: Dragon Boat}",
            "rules/care.yaml:3:38: unknown-key: unknown key 'county' (did you mean 'country'?)",
        ),
        (
            "{festival: Dragon Boat Festival}",
            "rules/care.yaml:3:5: missing-key: a holiday needs `name`, what greetings call it",
        ),
    ],
)
def test_a_wrong_festival_entry_is_reported_where_it_is(
    entry: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "care.yaml").write_text(
        f"holidays:\n  - {{date: 01-01, name: New Year's Day}}\n  - {entry}\n"
    )
    result = load_rules(Path("rules"))
    assert result.ruleset is None
    assert [str(problem) for problem in result.problems] == [expected]


def _days_of(year: int, *months: int) -> list[date]:
    day, days = date(year, 1, 1), []
    while day.year == year:
        if day.month in months:
            days.append(day)
        day += timedelta(days=1)
    return days


def _aggregates(zone: str, moment: datetime) -> CustomerAggregates:
    profile = Profile(
        id=f"c-{zone}",
        segment="consumer",
        locale="en",
        timezone=zone,
        birthday=None,
        account_manager=None,
        consents=dict.fromkeys(MESSAGE_CHANNELS, True),
        reachable={},
        preferred_channels="",
        created_at=None,
    )
    return CustomerHistory(profile, [], {}, CALENDAR).aggregates(to_us(moment))
