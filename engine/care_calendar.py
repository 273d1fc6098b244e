"""The care calendar (`holidays:` in `rules/care.yaml`): the days greetings go out.

An entry is a fixed day, `{date: MM-DD}` every year or `{date: YYYY-MM-DD}` that year
only, or a festival the `holidays` library dates for any year, `{festival: NAME}`
with an optional `country:` (China by default). The lunar festivals move from year to
year; naming them keeps anyone from having to type next year's dates before New Year.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import holidays
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from engine.problems import did_you_mean
from engine.service_levels import known_countries
from engine.yamlsource import Source

DEFAULT_COUNTRY = "CN"
"""The country whose festivals an entry without `country:` names."""

FESTIVAL_YEARS = range(2025, 2035)
"""A festival is a name the library gives in every one of these years: it recurs, so a
one-off (a day off in lieu, a single year's extra holiday) is not one."""

LANGUAGE = "en_US"
"""Names are read in English, whatever the machine's locale (the library would follow
it); a country without English names keeps its own language's."""

DATE_KEYS = ("date", "name")
FESTIVAL_KEYS = ("festival", "country", "name")
ENTRY = "{date: MM-DD or YYYY-MM-DD, name: NAME} or {festival: FESTIVAL, name: NAME}"


@dataclass(frozen=True)
class Holiday:
    """A fixed day: every year, or one year only."""

    month: int
    day: int
    year: int | None  # None: every year
    name: str

    def falls_on(self, today: date) -> bool:
        return (self.year in (None, today.year)) and (today.month, today.day) == (
            self.month,
            self.day,
        )


@dataclass(frozen=True)
class Festival:
    """A holiday the library dates each year, greeted on its first day only: Spring
    Festival spans several days there, and the customer hears from us once."""

    festival: str  # the library's English name, e.g. "Chinese New Year (Spring Festival)"
    country: str
    name: str  # what the `holiday` fact and the templates call it

    def falls_on(self, today: date) -> bool:
        return self.festival in first_days(self.country, today.year).get(today, ())


CareDay = Holiday | Festival


@lru_cache(maxsize=64)
def first_days(country: str, year: int) -> Mapping[date, frozenset[str]]:
    """The festivals starting on each day of `year`: named that day but not the day
    before. Computed once per country and year: the `holiday` fact asks for every
    customer at every evaluation, and the backtest for every day of its window."""
    calendar = _calendar(country, (year - 1, year))
    starts: dict[date, frozenset[str]] = {}
    for day in sorted(calendar):
        if day.year == year:
            before = set(calendar.get_list(day - timedelta(days=1)))
            if names := frozenset(calendar.get_list(day)) - before:
                starts[day] = names
    return starts


@lru_cache(maxsize=16)
def festival_names(country: str) -> frozenset[str]:
    """The festivals of `country`: the names its calendar has in every `FESTIVAL_YEARS`."""
    calendar = _calendar(country, FESTIVAL_YEARS)
    by_year: dict[int, set[str]] = {year: set() for year in FESTIVAL_YEARS}
    for day in calendar:
        by_year[day.year].update(calendar.get_list(day))
    return frozenset(set.intersection(*by_year.values()))


def _calendar(country: str, years: Iterable[int]) -> holidays.HolidayBase:
    """Public holidays on the day itself: no observed days, no days off in lieu."""
    return holidays.country_holidays(country, years=years, observed=False, language=LANGUAGE)


def parse_holidays(source: Source, node: Any, at: tuple[int, int]) -> list[CareDay]:
    """The care calendar's entries; every problem is reported and a bad entry left out."""
    if not isinstance(node, CommentedSeq):
        source.error(at, "wrong-type", f"`holidays` is a list of {ENTRY}")
        return []
    days: list[CareDay] = []
    for index, item in enumerate(node):
        item_at = Source.of(item, Source.item(node, index))
        if not isinstance(item, CommentedMap) or ("date" in item) == ("festival" in item):
            source.error(item_at, "wrong-type", f"a holiday is {ENTRY}")
        elif source.unknown_keys(item, DATE_KEYS if "date" in item else FESTIVAL_KEYS, "key"):
            continue
        elif "name" not in item:
            source.error(item_at, "missing-key", "a holiday needs `name`, what greetings call it")
        elif "date" in item:
            days.extend(_fixed_day(source, item))
        else:
            days.extend(_festival(source, item))
    return days


def _fixed_day(source: Source, item: CommentedMap) -> list[CareDay]:
    text = str(item["date"])
    try:
        if re.fullmatch(r"\d{2}-\d{2}", text):
            day = date.fromisoformat(f"2000-{text}")
            return [Holiday(day.month, day.day, None, str(item["name"]))]
        day = date.fromisoformat(text)
        return [Holiday(day.month, day.day, day.year, str(item["name"]))]
    except ValueError:
        source.error(
            Source.value(item, "date"),
            "wrong-type",
            f"{text!r} is not a date such as 01-01 or 2027-02-06",
        )
        return []


def _festival(source: Source, item: CommentedMap) -> list[CareDay]:
    country = str(item.get("country", DEFAULT_COUNTRY))
    countries = known_countries()
    if country not in countries:
        source.error(
            Source.value(item, "country"),
            "bad-choice",
            f"{country!r} is not a country holidays knows{did_you_mean(country, countries)}",
        )
        return []
    festival, known = str(item["festival"]), festival_names(country)
    if festival not in known:
        source.error(
            Source.value(item, "festival"),
            "bad-choice",
            f"{festival!r} is not a holiday holidays knows for {country}"
            f"{did_you_mean(festival, sorted(known))}",
        )
        return []
    return [Festival(festival, country, str(item["name"]))]
