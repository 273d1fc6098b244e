"""Business time: working hours, China's holidays and adjusted working days, local
additions, whole days as working days, and the clock each level runs on."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.service_levels import BusinessCalendar, FeedbackSla, ServiceLevels

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHINA = BusinessCalendar()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        ("2026-11-30T10:00", timedelta(hours=1), "2026-11-30T11:00"),  # inside the hours
        ("2026-11-30T17:30", timedelta(hours=1), "2026-12-01T09:30"),  # spills overnight
        ("2026-11-27T23:00", timedelta(hours=1), "2026-11-30T10:00"),  # Friday night
        ("2026-11-28T12:00", timedelta(minutes=30), "2026-11-30T09:30"),  # Saturday
        ("2026-11-27T15:00", timedelta(hours=24), "2026-11-30T15:00"),  # one working day
        ("2026-11-27T15:00", timedelta(days=7), "2026-12-08T15:00"),  # seven working days
        ("2026-11-27T20:00", timedelta(hours=24), "2026-12-01T09:00"),  # a day from Monday 09:00
        ("2026-11-27T17:30", timedelta(hours=10), "2026-12-01T09:30"),  # 0:30 + 9:00 + 0:30
        ("2026-09-30T17:30", timedelta(hours=1), "2026-10-08T09:30"),  # National Day week
        ("2026-02-13T18:00", timedelta(hours=1), "2026-02-14T10:00"),  # Saturday, worked
        ("2026-02-14T17:00", timedelta(hours=24), "2026-02-24T17:00"),  # Spring Festival
    ],
)
def test_business_time_in_china(start: str, duration: timedelta, due: str) -> None:
    assert CHINA.add(local(start), duration) == local(due)


def test_local_days_off_and_extra_working_days_override_the_library() -> None:
    calendar = BusinessCalendar(closed=frozenset({date(2026, 12, 24)}), open=frozenset())
    assert calendar.add(local("2026-12-23T17:30"), timedelta(hours=1)) == local("2026-12-25T09:30")
    weekend_shift = BusinessCalendar(open=frozenset({date(2026, 12, 5)}))  # a Saturday
    assert weekend_shift.add(local("2026-12-04T17:30"), timedelta(hours=1)) == local(
        "2026-12-05T09:30"
    )


def test_hours_per_weekday_and_around_midnight() -> None:
    late_shift = (time(14), None)  # 14:00 to midnight
    calendar = BusinessCalendar(
        country=None, hours=(late_shift, late_shift, late_shift, late_shift, late_shift, None, None)
    )
    assert calendar.add(local("2026-11-30T23:30"), timedelta(hours=1)) == local("2026-12-01T14:30")
    assert calendar.add(local("2026-10-01T09:00"), timedelta(hours=1)) == local(
        "2026-10-01T15:00"  # no public holidays without a country
    )


def test_a_calendar_needs_some_working_time() -> None:
    with pytest.raises(ValueError, match="working hours"):
        BusinessCalendar(hours=(None,) * 7)
    with pytest.raises(ValueError, match="country"):
        BusinessCalendar(country="XX")


def test_each_level_runs_on_its_clock_and_other_work_around_the_clock() -> None:
    levels = ServiceLevels()
    friday_night = local("2026-11-27T23:00")
    assert levels.target("general", "first_response", friday_night) == local("2026-11-30T10:00")
    assert levels.target(None, "first_response", friday_night) == local("2026-11-30T10:00")
    assert levels.target("major", "first_response", friday_night) == local("2026-11-29T23:00")
    assert levels.due(None, friday_night, timedelta(hours=48)) == local("2026-11-29T23:00")
    always = ServiceLevels(
        targets={"general": FeedbackSla(timedelta(hours=1), timedelta(1), "24x7")}
    )
    assert always.target("general", "first_response", friday_night) == local("2026-11-28T00:00")
