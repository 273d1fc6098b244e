"""Feedback service levels and the business calendar their clocks run on.

A feedback item's deadlines (its level's first-response and resolution targets, and
the time each escalation gives the next owner) count from when the item *happened*,
on its level's clock:

- `business`: only working time counts, as helpdesks keep SLA clocks (Zendesk,
  Zammad). Working time is the weekday hours of `BusinessCalendar`, in its timezone,
  less public holidays (the `holidays` library, China by default, which also knows
  the weekend days China moves work to) and local additions. Each whole 24 hours of a
  target is one working day (an inquiry answered "within 24h" on a Friday afternoon is
  due on Monday afternoon); the rest counts as working hours and minutes.
- `24x7`: wall-clock time, for levels that cannot wait for Monday (a major item).

Everything here is pure: the caller passes the start; nothing reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

Clock = Literal["business", "24x7"]
CLOCKS: tuple[Clock, ...] = ("business", "24x7")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TARGETS = ("first_response", "resolution")
"""The targets a level sets; `open_task`'s `due_in` may name one instead of a duration."""

DEFAULT_LEVEL = "general"  # a feedback item without a level is handled as an inquiry
_DAY = timedelta(days=1)
_SEARCH_DAYS = 800  # a calendar with no working day in two years is a mistake, not a wait

Hours = tuple[time, time | None]
"""Opening and closing wall-clock times; a closing time of None is midnight (24:00)."""

NINE_TO_SIX: Hours = (time(9), time(18))


@lru_cache(maxsize=64)
def public_holidays(country: str, year: int) -> holidays.HolidayBase:
    """The `holidays` library's calendar for one country and year (built once: a year's
    calendar takes milliseconds to compute and deadlines are computed per task)."""
    return holidays.country_holidays(country, years=year)


def known_countries() -> tuple[str, ...]:
    return tuple(sorted(holidays.list_supported_countries()))


@dataclass(frozen=True)
class BusinessCalendar:
    """When staff work: hours per weekday in `timezone`, less public holidays of
    `country` (None: no public holidays) and the `closed` days, plus the `open` days.

    A weekend day the holiday library lists as a working day (China's adjusted
    working days) and an `open` day keep the hours of the first weekday that has any.
    """

    timezone: str = "Asia/Shanghai"
    country: str | None = "CN"
    hours: tuple[Hours | None, ...] = (NINE_TO_SIX,) * 5 + (None, None)
    closed: frozenset[date] = frozenset()
    open: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # an unknown zone fails here, not at the first deadline
        if len(self.hours) != len(WEEKDAYS):
            raise ValueError("hours has one entry per weekday, Monday first")
        if not any(self.hours):
            raise ValueError("a business calendar needs working hours on some weekday")
        if self.country is not None and self.country not in known_countries():
            raise ValueError(f"the holidays library does not know the country {self.country!r}")

    def is_working_day(self, day: date) -> bool:
        if day in self.closed:
            return False
        if day in self.open:
            return True
        if self.country is not None:
            calendar = public_holidays(self.country, day.year)
            if day in calendar:
                return False
            if day in getattr(calendar, "weekend_workdays", ()):
                return True
        return self.hours[day.weekday()] is not None

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working hours of `day` as naive local times; None on a day off."""
        if not self.is_working_day(day):
            return None
        hours = self.hours[day.weekday()] or next(h for h in self.hours if h is not None)
        opening, closing = hours
        end = datetime.combine(day if closing is not None else day + _DAY, closing or time())
        return datetime.combine(day, opening), end

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """`duration` of working time after `start` (aware): each whole day of it is a
        working day at the same time of day, the rest working hours and minutes."""
        zone = ZoneInfo(self.timezone)
        local = start.astimezone(zone).replace(tzinfo=None)
        days, rest = divmod(duration, _DAY)
        moment = self._working(local)
        for _ in range(days):
            moment = self._next_day_at(moment)
        moment = self._spend(moment, rest)
        return moment.replace(tzinfo=zone).astimezone(UTC)

    def _windows(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The working hours of `day` and the working days after it, in order."""
        for _ in range(_SEARCH_DAYS):
            window = self.window(day)
            if window is not None:
                yield window
            day += _DAY
        raise ValueError("the business calendar has no working day in two years")

    def _working(self, local: datetime) -> datetime:
        """`local` if it is working time, else the next opening."""
        opening, _ = next(w for w in self._windows(local.date()) if local < w[1])
        return max(local, opening)

    def _next_day_at(self, local: datetime) -> datetime:
        """The same time of day on the next working day (within that day's hours)."""
        opening, closing = next(self._windows(local.date() + _DAY))
        wanted = datetime.combine(opening.date(), local.time())
        return min(max(wanted, opening), closing)

    def _spend(self, local: datetime, amount: timedelta) -> datetime:
        moment = self._working(local)
        while True:
            window = self.window(moment.date())
            assert window is not None  # `_working` only returns working time
            if moment + amount <= window[1]:
                return moment + amount
            amount -= window[1] - moment
            moment = self._working(window[1])


@dataclass(frozen=True)
class FeedbackSla:
    """A feedback level's targets and the clock they run on."""

    first_response: timedelta
    resolution: timedelta
    clock: Clock = "business"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"clock is one of {', '.join(CLOCKS)}")


DEFAULT_SLA: Mapping[str, FeedbackSla] = MappingProxyType(
    {
        # The SPEC's table: an inquiry answered within 1 (working) hour; a product fault
        # handed over within 24 hours (one working day); a group complaint solved within
        # 48 hours, counted around the clock: it cannot wait for Monday.
        "general": FeedbackSla(timedelta(hours=1), timedelta(hours=24)),
        "complex": FeedbackSla(timedelta(hours=24), timedelta(days=7)),
        "major": FeedbackSla(timedelta(hours=48), timedelta(days=7), "24x7"),
    }
)


@dataclass(frozen=True)
class ServiceLevels:
    """The feedback levels' targets with the calendar: every deadline of a feedback
    item (live tasks, the backtest's, the acknowledgement's promise, the report's SLA
    compliance) comes from `due`."""

    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    targets: Mapping[str, FeedbackSla] = field(default_factory=lambda: DEFAULT_SLA)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))

    def __hash__(self) -> int:  # the read-only mapping is not hashable by itself
        return hash((self.calendar, tuple(self.targets.items())))

    def clock(self, level: str | None) -> Clock:
        """A level's clock; work that serves no feedback item runs around the clock."""
        sla = self.targets.get(level) if level is not None else None
        return sla.clock if sla is not None else "24x7"

    def due(self, level: str | None, start: datetime, duration: timedelta) -> datetime:
        """`duration` after `start` on `level`'s clock."""
        if self.clock(level) == "business":
            return self.calendar.add(start, duration)
        return start + duration

    def target(self, level: str | None, which: str, start: datetime) -> datetime:
        """When an item of `level` (none given: general) that happened at `start` must
        have its `which` (first_response or resolution)."""
        level = level or DEFAULT_LEVEL
        return self.due(level, start, getattr(self.targets[level], which))
