"""Durations as people write them in rules: 30m, 1h, 24h, 7d, 2w."""

from __future__ import annotations

import re
from datetime import timedelta

_PATTERN = re.compile(r"^([1-9][0-9]{0,4})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: object) -> timedelta:
    """A timedelta from `24h`-style text; ValueError with the accepted forms otherwise."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h, 24h, 7d or 2w")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def format_duration(value: timedelta) -> str:
    """The shortest `7d`-style text for a whole number of minutes, hours, days or weeks."""
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"
