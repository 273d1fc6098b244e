"""The guards every planned message passes before it is sent: what, when and how.

`decide` is pure: no clock, no database, no I/O. The dispatcher gathers what it needs
(the recipient, the policy, `now`, and how many marketing messages the customer was
sent in the cap window) and records the returned `Decision` — including its `reason`
— with the outbox row, so what a guard stopped or deferred is auditable.

The guards, in the order they are applied:

1. **open complaint** (`open_complaint`) — marketing (every purpose but `service`)
   waits while the customer has an open complaint
   (`Policy.suppress_marketing_on_open_complaint`): it is deferred to the end of the
   complaint hold (`Policy.complaint_hold_limit` after it was first held, `held_since`)
   and the dispatcher wakes it as soon as the complaint is resolved. Still open at the
   limit: suppressed, and the reason says the limit passed. Service messages, such as
   replies to that very complaint, still go out.
2. **frequency cap** (`frequency_cap`) — a global cap across all rules: once the
   customer got `Policy.cap_marketing` messages of the purposes the cap counts
   (`Policy.cap_counts`, by default marketing) within `Policy.cap_window` before
   `now`, further messages of those purposes are suppressed. Other purposes (care
   greetings, unless counted; service, always) are exempt and do not count. The
   caller counts messages *sent* (or claimed for sending) in the window.
3. **consent and channel** (`no_consent`) — the first usable channel of: the rule's
   `channels` if it names any (they replace every other preference); otherwise the
   customer's stated preference followed by the policy defaults for their tier and
   segment (`Policy.defaults_for`). A channel is usable when the customer consented
   to it **and** there is an address for it. No usable channel: suppressed, never
   sent on an opted-out channel.
4. **quiet hours** (`quiet_hours`) — a message due inside the quiet hours in the
   customer's own timezone is deferred to the first moment after them (not dropped).
   Quiet hours apply to *all* messages, service included: nothing in the SPEC's
   service levels needs a message at night (first responses are staff tasks, which
   guards do not touch), and a 02:00 SMS is a complaint of its own.
   Windows crossing midnight, daylight-saving gaps and repeats, and `now` exactly on
   a boundary are handled: the start is inside, the end is outside.

Otherwise the message is sent now (`ok`).

A deferred message is decided again when it comes due: consent, complaints and the
cap may have changed overnight, so the dispatcher must not send it on the strength
of the earlier decision. Several deferred marketing messages of one customer then
meet the cap one after the other, so the dispatcher should count the ones it has
just sent before deciding the next.

**Dedupe** needs no guard here: every planned message has a deterministic key
(`actions/planning.py`) and `outbox_messages.key` is unique, so planning, retrying or
dispatching the same thing twice cannot send it twice.

Reasons are `code: human text` with a stable code (`Decision.code`); they name
channels, counts and timezones, never an address or a name (SPEC, Privacy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.facts import MESSAGE_CHANNELS
from engine.policy import Policy

Outcome = Literal["send", "defer", "suppress"]

OK = "ok"
OPEN_COMPLAINT = "open_complaint"
FREQUENCY_CAP = "frequency_cap"
NO_CONSENT = "no_consent"
QUIET_HOURS = "quiet_hours"
REASON_CODES = (OK, OPEN_COMPLAINT, FREQUENCY_CAP, NO_CONSENT, QUIET_HOURS)
HOLDS = (OPEN_COMPLAINT, FREQUENCY_CAP)
"""The guards that hold a message back for a while, not for good: a message they
suppress gives its rule's re-entry back (`storage.firings.give_back`), so the rule may
fire again. No consent is not a hold: trying again each day would change nothing."""

_SAMPLE = timedelta(hours=1)  # no timezone changes its offset twice within an hour
_HORIZON = timedelta(hours=48)  # quiet hours last < 24 h; DST shifts add at most a few


@dataclass(frozen=True)
class Recipient:
    """What the guards know about the customer a message is for.

    `addresses` holds where each channel reaches them: the email address, the phone
    for sms, the WeChat id, and for app push the customer id when they have the app
    (None or empty: the channel cannot be used, whatever the consent).
    """

    customer_id: str
    timezone: str
    consents: dict[str, bool]
    addresses: dict[str, str | None]
    preferred_channels: tuple[str, ...]
    tier: str
    segment: str
    open_complaints: int

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def unusable(self, channel: str) -> str | None:
        """Why `channel` cannot reach the customer, or None when it can."""
        if channel not in MESSAGE_CHANNELS:
            return "not a message channel"
        if not self.consents.get(channel, False):
            return "no consent"
        address = self.addresses.get(channel)
        if address is None or not address.strip():
            return "no address"
        return None


@dataclass(frozen=True)
class Decision:
    """What to do with one planned message, and why.

    `send`: `channel` and `send_at` (= now) are set. `defer`: `send_at` is the time to
    decide again, and `channel` the one chosen now (None while a complaint holds it).
    `suppress`: neither, the message is not sent; `reason` says which guard stopped it.

    `send_at` is always in UTC (the reason shows the customer's local time): Python
    does arithmetic on two datetimes of the same zone by wall clock, and an ambiguous
    local time never compares equal to another zone's, both wrong across a
    daylight-saving change.
    """

    outcome: Outcome
    channel: str | None
    send_at: datetime | None
    reason: str

    @property
    def code(self) -> str:
        """The stable part of the reason: ok, open_complaint, frequency_cap, ..."""
        return self.reason.partition(":")[0]


class Plannable(Protocol):
    """What the guards read of a message: planned, or claimed from the outbox."""

    @property
    def purpose(self) -> str: ...

    @property
    def channels(self) -> tuple[str, ...]: ...


def decide(
    message: Plannable,
    recipient: Recipient,
    policy: Policy,
    now: datetime,
    capped_sent_in_window: int,
    held_since: datetime | None = None,
) -> Decision:
    """Send, defer or suppress `message` at `now` (aware); see the module docstring.

    `capped_sent_in_window`: messages of the purposes the cap counts sent in its window;
    `held_since`: when an open complaint first held this message, if one did."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    held = message.purpose != "service"  # anything not declared service waits
    if held and policy.suppress_marketing_on_open_complaint and recipient.open_complaints > 0:
        return _complaint_hold(recipient, policy, now, held_since or now)
    if message.purpose in policy.cap_counts and capped_sent_in_window >= policy.cap_marketing:
        return _suppress(
            FREQUENCY_CAP,
            f"{capped_sent_in_window} {'/'.join(policy.cap_counts)} message"
            f"{'' if capped_sent_in_window == 1 else 's'} in the last "
            f"{_human(policy.cap_window)} (cap {policy.cap_marketing})",
        )
    channels = candidate_channels(message, recipient, policy)
    channel = next((c for c in channels if recipient.unusable(c) is None), None)
    if channel is None:
        tried = "; ".join(f"{c}: {recipient.unusable(c)}" for c in channels) or "none listed"
        return _suppress(NO_CONSENT, f"no channel the customer agreed to ({tried})")
    if message.channels:
        source = "the rule's channels"
    elif channel in recipient.preferred_channels:
        source = "the customer's preference"
    else:
        source = f"the default for {recipient.tier} tier, {recipient.segment}"
    zone = recipient.zone
    allowed = first_allowed_time(now, zone, policy)
    if allowed > now:
        local = allowed.astimezone(zone)
        return Decision(
            "defer",
            channel,
            allowed,
            f"{QUIET_HOURS}: deferred to {local:%Y-%m-%d %H:%M} {recipient.timezone} "
            f"(quiet {policy.quiet_start:%H:%M}–{policy.quiet_end:%H:%M})",
        )
    return Decision("send", channel, now, f"{OK}: by {channel} ({source})")


def _complaint_hold(
    recipient: Recipient, policy: Policy, now: datetime, since: datetime
) -> Decision:
    """Wait for the complaint's resolution until the hold's limit; suppressed after it."""
    until = since + policy.complaint_hold_limit
    limit = f"the complaint hold's limit of {_human(policy.complaint_hold_limit)}"
    if now >= until:
        held = since.astimezone(recipient.zone)
        return _suppress(
            OPEN_COMPLAINT,
            f"the complaint is still open after {limit} (held since "
            f"{held:%Y-%m-%d %H:%M} {recipient.timezone}); not sent",
        )
    local = until.astimezone(recipient.zone)
    return Decision(
        "defer",
        None,
        until,
        f"{OPEN_COMPLAINT}: marketing held while a complaint is open, waiting for the "
        f"resolution until {local:%Y-%m-%d %H:%M} {recipient.timezone} at most ({limit})",
    )


def candidate_channels(message: Plannable, recipient: Recipient, policy: Policy) -> tuple[str, ...]:
    """The channels to try, in order.

    The rule's channels when it names any; otherwise the customer's preference, then
    the policy defaults for their tier and segment. Duplicates and non-message
    channels (a stated preference for phone, say) are left out.
    """
    if message.channels:
        return _unique(message.channels)
    defaults = policy.defaults_for(recipient.tier, recipient.segment)
    return _unique(tuple(recipient.preferred_channels) + defaults)


def in_quiet_hours(moment: time, policy: Policy) -> bool:
    """Whether a local wall-clock time is inside the quiet hours (start in, end out)."""
    start, end = policy.quiet_start, policy.quiet_end
    moment = moment.replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def first_allowed_time(now: datetime, zone: ZoneInfo, policy: Policy) -> datetime:
    """The earliest instant at or after `now` whose wall clock in `zone` is outside the
    quiet hours, in UTC: `now` itself when it is outside them.

    Walks the stretches of constant UTC offset from `now`: in each, wall-clock time
    runs evenly, so the first allowed instant is its start (when allowed) or the next
    wall-clock end of the quiet hours, if that comes before the offset changes. This
    covers a quiet end that a spring-forward skips (the first instant after the jump)
    and a fall-back that moves the clock out of the quiet hours early.
    """
    now = now.astimezone(UTC)
    if not policy.has_quiet_hours:
        return now
    segment_start = now
    horizon = segment_start + _HORIZON
    while segment_start < horizon:
        offset = _offset(zone, segment_start)
        wall = (segment_start + offset).replace(tzinfo=None)
        if not in_quiet_hours(wall.time(), policy):
            return segment_start
        end_wall = datetime.combine(wall.date(), policy.quiet_end)
        if end_wall <= wall:
            end_wall = datetime.combine(wall.date() + timedelta(days=1), policy.quiet_end)
        candidate = (end_wall - offset).replace(tzinfo=UTC)
        change = _next_offset_change(zone, segment_start, candidate)
        if change is None:
            return candidate
        segment_start = change
    raise AssertionError(f"no time outside quiet hours within {_HORIZON} of {now}")


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _next_offset_change(zone: ZoneInfo, start: datetime, stop: datetime) -> datetime | None:
    """The first instant in (start, stop] at which `zone`'s UTC offset differs from the
    one at `start`, to the second (zone transitions fall on whole seconds)."""
    before = _offset(zone, start)
    low = start
    while low < stop:
        high = min(low + _SAMPLE, stop)
        if _offset(zone, high) != before:
            low_s, high_s = int(low.timestamp()), int(high.timestamp()) + 1
            while high_s - low_s > 1:  # offset(low_s) == before, offset(high_s) != before
                middle = (low_s + high_s) // 2
                if _offset(zone, datetime.fromtimestamp(middle, UTC)) == before:
                    low_s = middle
                else:
                    high_s = middle
            return datetime.fromtimestamp(high_s, UTC)
        low = high
    return None


def _unique(channels: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in channels if c in MESSAGE_CHANNELS))


def _suppress(code: str, text: str) -> Decision:
    return Decision("suppress", None, None, f"{code}: {text}")


def _human(span: timedelta) -> str:
    """`7 days`, `1 day`, `12 hours`, `30 minutes`."""
    minutes = int(span.total_seconds() // 60)
    for unit, size in (("day", 24 * 60), ("hour", 60), ("minute", 1)):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return str(span)
