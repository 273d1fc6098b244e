"""The as-of clock: the one parser of the moments people and schedules pass as `as_of`.

The command line, the flows and the API all read `--as-of` / `as_of` here, so a
value means the same everywhere: ISO 8601, a time without an offset is read in
RAPPORT_TIMEZONE, and a bare date is the start of that day there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def parse_moment(text: str, default_zone: str) -> datetime:
    """An aware datetime from ISO 8601; a time without offset is read in `default_zone`.

    A bare date means the start of that day, so `--as-of 2026-07-01` sees nothing of
    1 July itself.
    """
    try:
        moment = datetime.fromisoformat(text.strip().upper())  # RFC 3339 allows t and z
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "…"  # an answer, not an echo
        raise ValueError(
            f"{shown!r} is not an ISO 8601 time such as 2026-07-01T09:00+08:00"
        ) from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=ZoneInfo(default_zone))
    return moment


def as_of_or_now(text: str | None, default_zone: str) -> datetime:
    """`parse_moment` of an optional value; absent means now."""
    return datetime.now(UTC) if text is None else parse_moment(text, default_zone)


def local_time(moment: datetime, zone: str) -> str:
    """`2026-12-04 08:00` in `zone`: how staff read a time (RAPPORT_TIMEZONE), the same in
    every command's output."""
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
