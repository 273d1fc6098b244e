"""The backtest's clock: its steps, the weeks results are counted in, the warm-up.

Inside the replay every moment is an integer of microseconds since the epoch (UTC), so
window edges compare exactly as the SQL of `storage/facts.py` compares them and nothing
is rounded. Steps of whole days keep their wall-clock time in the configured timezone
(08:00 stays 08:00 across a daylight-saving change, as the `evaluate-rules` cron does);
shorter steps are plain intervals.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def to_us(moment: datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    return (moment - EPOCH) // MICROSECOND


def from_us(value: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=value)


def advance(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`: by the wall clock of `moment`'s zone for whole days, else absolute."""
    if delta % DAY == timedelta(0):
        return (moment + delta).astimezone(UTC)  # aware arithmetic keeps the wall time
    return moment.astimezone(UTC) + delta


@dataclass(frozen=True)
class Window:
    """What one backtest covers.

    `first` and `last` are the first and last counted days; each has one step per `step`
    from `at` o'clock in `timezone`. The warm-up runs the same replay on the steps before
    `first` so re-entry periods, the frequency cap and open tasks are in their usual state
    when counting starts; nothing in it is counted. `horizon` is the churn outcome window.
    """

    first: date
    last: date
    at: time
    timezone: str
    step: timedelta = DAY
    warmup: timedelta = timedelta(days=30)
    horizon: timedelta = timedelta(days=90)
    steps: tuple[datetime, ...] = field(init=False)
    steps_us: tuple[int, ...] = field(init=False)
    weeks_us: tuple[int, ...] = field(init=False)
    end_us: int = field(init=False)  # where the replay stops: one step after the last step

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"--to {self.last} is before --from {self.first}")
        if self.step <= timedelta(0) or self.warmup < timedelta(0) or self.horizon <= timedelta(0):
            raise ValueError("step and horizon must be positive and the warm-up not negative")
        zone = ZoneInfo(self.timezone)
        start = datetime.combine(self.first, self.at, tzinfo=zone)
        stop = datetime.combine(self.last + DAY, self.at, tzinfo=zone)
        before = -(-self.warmup // self.step)  # whole steps covering the warm-up
        steps, index = [], -before
        while (moment := advance(start, self.step * index)) < stop.astimezone(UTC):
            steps.append(moment)
            index += 1
        weeks, index = [], 0
        while (week := advance(start, WEEK * index)) < stop.astimezone(UTC):
            weeks.append(to_us(week))
            index += 1
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "steps_us", tuple(to_us(s) for s in steps))
        object.__setattr__(self, "weeks_us", tuple(weeks))
        object.__setattr__(self, "end_us", to_us(advance(steps[-1], self.step)))

    @property
    def begin_us(self) -> int:
        """The first moment replayed: the first warm-up step."""
        return self.steps_us[0]

    @property
    def start_us(self) -> int:
        """The first counted moment: the first step of `first`."""
        return self.weeks_us[0]

    @property
    def counted_steps(self) -> int:
        return sum(1 for moment in self.steps_us if moment >= self.start_us)

    @property
    def horizon_us(self) -> int:
        return self.horizon // MICROSECOND

    @property
    def week_labels(self) -> list[str]:
        """Each counted week by its first local day, e.g. `2026-01-05`."""
        zone = ZoneInfo(self.timezone)
        return [from_us(week).astimezone(zone).date().isoformat() for week in self.weeks_us]

    def week_of(self, moment: int) -> int:
        """The index of the counted week `moment` falls in; -1 before counting starts (the
        warm-up) or after the end."""
        if moment < self.start_us or moment >= self.end_us:
            return -1
        return bisect_right(self.weeks_us, moment) - 1
