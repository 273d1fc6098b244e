"""Reading `business_hours:` and `feedback_sla:` of the `policy:` section into
`ServiceLevels`, with a position for every problem (codes wrong-type, unknown-key,
bad-choice, bad-duration, missing-key). A bad part keeps its default so the rest is
still checked; the loader rejects the directory when there is any error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from engine.durations import parse_duration
from engine.problems import did_you_mean
from engine.service_levels import (
    CLOCKS,
    DEFAULT_SLA,
    TARGETS,
    WEEKDAYS,
    BusinessCalendar,
    FeedbackSla,
    Hours,
    known_countries,
)
from engine.vocabulary import FEEDBACK_LEVELS
from engine.yamlsource import Source

CALENDAR_KEYS = ("timezone", "holidays", "hours", "closed", "open")
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]|24):([0-5][0-9])$")


def parse_business_hours(source: Source, node: CommentedMap) -> BusinessCalendar:
    section = source.section(node, "business_hours", "{timezone, holidays, hours, ...}")
    if section is None:
        return BusinessCalendar()
    source.unknown_keys(section, CALENDAR_KEYS, "business_hours key")
    values: dict[str, Any] = {}
    if "timezone" in section:
        try:
            ZoneInfo(str(section["timezone"]))
            values["timezone"] = str(section["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            source.error(
                Source.value(section, "timezone"),
                "bad-choice",
                f"{section['timezone']!r} is not a timezone such as Asia/Shanghai",
            )
    if "holidays" in section:
        country = section["holidays"]
        countries = known_countries()
        if country is None or country == "none":
            values["country"] = None
        elif country in countries:
            values["country"] = str(country)
        else:
            source.error(
                Source.value(section, "holidays"),
                "bad-choice",
                f"{country!r} is not a country the holidays library knows (a code such as "
                f"CN, or none){did_you_mean(str(country), countries)}",
            )
    if "hours" in section:
        hours = _weekly_hours(source, section)
        if hours is not None:
            values["hours"] = hours
    for key in ("closed", "open"):
        if key in section:
            values[key] = _dates(source, section, key)
    return BusinessCalendar(**values)


def _weekly_hours(source: Source, section: CommentedMap) -> tuple[Hours | None, ...] | None:
    hours = source.section(section, "hours", "of weekday (mon … sun): '09:00-18:00'")
    if hours is None:
        return None
    source.unknown_keys(hours, WEEKDAYS, "weekday")
    week: list[Hours | None] = [None] * len(WEEKDAYS)
    good = True
    for index, day in enumerate(WEEKDAYS):
        if day not in hours:
            continue
        match = _HOURS.match(str(hours[day]).strip())
        opening = time(int(match[1]), int(match[2])) if match else None
        closing = None if match is None or match[3] == "24" else time(int(match[3]), int(match[4]))
        if (
            match is None
            or (match[3] == "24" and match[4] != "00")
            or (closing is not None and opening is not None and closing <= opening)
        ):
            source.error(
                Source.value(hours, day),
                "wrong-type",
                f"`{day}` is opening and closing time such as '09:00-18:00' (24-hour, the "
                f"closing later than the opening; 24:00 for midnight); not {hours[day]!r}",
            )
            good = False
            continue
        assert opening is not None
        week[index] = (opening, closing)
    if good and not any(week):
        source.error(Source.value(section, "hours"), "wrong-type", "no weekday has working hours")
        return None
    return tuple(week) if good else None


def _dates(source: Source, section: CommentedMap, key: str) -> frozenset[date]:
    items = section[key]
    if not isinstance(items, CommentedSeq):
        source.error(Source.value(section, key), "wrong-type", f"`{key}` is a list of YYYY-MM-DD")
        return frozenset()
    days = set()
    for index, item in enumerate(items):
        try:
            days.add(date.fromisoformat(str(item)))
        except ValueError:
            source.error(
                Source.item(items, index), "wrong-type", f"{item!r} is not a date (YYYY-MM-DD)"
            )
    return frozenset(days)


def parse_feedback_sla(source: Source, node: CommentedMap) -> Mapping[str, FeedbackSla]:
    merged = dict(DEFAULT_SLA)
    shape = "of level: {first_response: 1h, resolution: 24h, clock: business}"
    section = source.section(node, "feedback_sla", shape)
    if section is None:
        return merged
    source.unknown_keys(section, FEEDBACK_LEVELS, "feedback level")
    for level in FEEDBACK_LEVELS:
        if level not in section:
            continue
        targets = source.section(section, level, "{first_response: 1h, resolution: 24h}")
        if targets is None:
            continue
        source.unknown_keys(targets, (*TARGETS, "clock"), f"{level} key")
        values: dict[str, Any] = {}
        for key in TARGETS:
            if key not in targets:
                message = f"`{level}` needs both first_response and resolution; {key} is missing"
                source.error(Source.of(targets), "missing-key", message)
                continue
            try:
                values[key] = parse_duration(targets[key])
            except ValueError as error:
                source.error(
                    Source.value(targets, key), "bad-duration", f"`{level}.{key}`: {error}"
                )
        if "clock" in targets:
            if targets["clock"] in CLOCKS:
                values["clock"] = targets["clock"]
            else:
                source.error(
                    Source.value(targets, "clock"),
                    "bad-choice",
                    f"`clock` is {' or '.join(CLOCKS)}; not {targets['clock']!r}"
                    f"{did_you_mean(str(targets['clock']), CLOCKS)}",
                )
        if all(key in values for key in TARGETS):
            merged[level] = FeedbackSla(**values)
    return merged
