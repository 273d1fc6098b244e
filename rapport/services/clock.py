"""Parsing the `--as-of` moments people type on the command line."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def parse_moment(text: str, default_zone: str) -> datetime:
    """An aware datetime from ISO 8601; a time without offset is read in `default_zone`.

    A bare date means the start of that day, so `--as-of 2026-07-01` sees nothing of
    1 July itself.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time such as 2026-07-01T09:00+08:00"
        ) from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=ZoneInfo(default_zone))
    return moment
