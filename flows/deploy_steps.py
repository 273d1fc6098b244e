"""A build step of `prefect.yaml`: `prefect deploy` stops, with the fix, when the schedules'
timezone would be empty.

Prefect fills `{{ $RAPPORT_TIMEZONE }}` from the environment and, when it is not set,
silently writes an empty timezone: the 08:00 evaluation would run at 08:00 UTC. Build
steps run before Prefect creates a deployment, so failing here creates none.
`rapport deploy` sets the variable from Rapport's settings (default Asia/Shanghai).
"""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class TimezoneNotSet(RuntimeError):
    """RAPPORT_TIMEZONE is missing or not a timezone."""


def require_timezone() -> dict[str, str]:
    """The schedules' timezone, or TimezoneNotSet saying how to give it."""
    zone = os.environ.get("RAPPORT_TIMEZONE", "")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimezoneNotSet(
            f"RAPPORT_TIMEZONE is {zone!r}, not a timezone: the schedules would run in UTC. "
            "Deploy with `rapport deploy` (it uses Rapport's settings, default "
            "Asia/Shanghai) or export RAPPORT_TIMEZONE=Asia/Shanghai first."
        ) from None
    return {"timezone": zone}
