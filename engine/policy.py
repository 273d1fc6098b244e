"""The delivery policy: the guards every outgoing message passes (see `actions/guards.py`).

Operations set it in the `policy:` section of a file in `rules/` (`rules/policy.yaml`);
whatever is left out keeps the default below, which follows the SPEC:

- quiet hours 21:00–08:00 in the customer's own timezone: a message due inside them
  is deferred to their end, never dropped. A start equal to the end means no quiet
  hours at all;
- a global frequency cap across all rules: at most 2 messages per customer per 7 days
  of the purposes it `counts` (`marketing`; `care` greetings and `service` messages
  are exempt unless counted; `service` never is);
- marketing (every purpose but `service`) is held back while the customer has an open
  complaint: it waits for the resolution, at most `complaint_hold.limit` (14 days),
  and is then suppressed with that reason;
- channel defaults by audience, used when neither the rule nor the customer names
  channels (see `Policy.defaults_for` for the lookup order);
- the feedback service levels and the business calendar their clocks run on
  (`business_hours`, `feedback_sla`; see `engine/service_levels.py`).

`parse_policy` validates the YAML with positions, like the rest of the loader: every
problem is reported, and a bad part keeps its default so the rest is still checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from types import MappingProxyType
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from engine.durations import parse_duration
from engine.facts import MESSAGE_CHANNELS
from engine.problems import did_you_mean
from engine.service_level_settings import parse_business_hours, parse_feedback_sla
from engine.service_levels import ServiceLevels
from engine.vocabulary import PURPOSES
from engine.yamlsource import Source

AUDIENCES = ("high", "enterprise", "base", "consumer")
"""The audiences of `channel_defaults`, in lookup order (see `Policy.defaults_for`)."""

DEFAULT_CHANNELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # High value: the playbook's phone / visit contacts are staff *tasks*; of the
        # message channels, the personal ones first.
        "high": ("wechat", "email"),
        # Enterprise: email (the playbook's video meetings are tasks), then SMS.
        "enterprise": ("email", "sms"),
        # Base tier: a plain service reminder, on the channel nearly everyone has.
        "base": ("sms", "email", "wechat"),
        # Consumers (the playbook's "younger consumers"): WeChat and app push first.
        "consumer": ("wechat", "app", "sms", "email"),
    }
)

POLICY_KEYS = (
    "quiet_hours",
    "frequency_cap",
    "suppress_marketing_on_open_complaint",
    "complaint_hold",
    "channel_defaults",
    "business_hours",
    "feedback_sla",
)
CAPPABLE = tuple(purpose for purpose in PURPOSES if purpose != "service")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True)
class Policy:
    """What the guards enforce. Immutable; the defaults are the SPEC's."""

    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    cap_marketing: int = 2
    cap_window: timedelta = timedelta(days=7)
    cap_counts: tuple[str, ...] = ("marketing",)
    suppress_marketing_on_open_complaint: bool = True
    complaint_hold_limit: timedelta = timedelta(days=14)
    channel_defaults: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: DEFAULT_CHANNELS
    )
    service_levels: ServiceLevels = field(default_factory=ServiceLevels)

    def __post_init__(self) -> None:
        if self.cap_marketing < 0:
            raise ValueError("cap_marketing is a number ≥ 0")
        if self.cap_window <= timedelta(0):
            raise ValueError("cap_window is a positive duration")
        if not set(self.cap_counts) <= set(CAPPABLE):
            raise ValueError(f"cap_counts lists purposes of {', '.join(CAPPABLE)}")
        if self.complaint_hold_limit < timedelta(0):
            raise ValueError("complaint_hold_limit is a duration ≥ 0")
        if any(t.tzinfo is not None for t in (self.quiet_start, self.quiet_end)):
            raise ValueError("quiet hours are wall-clock times without a timezone")
        defaults = {str(k): tuple(v) for k, v in self.channel_defaults.items()}
        if set(defaults) != set(AUDIENCES):
            raise ValueError(f"channel_defaults needs exactly {', '.join(AUDIENCES)}")
        for audience, channels in defaults.items():
            if not channels or any(c not in MESSAGE_CHANNELS for c in channels):
                raise ValueError(f"channel_defaults[{audience!r}] lists message channels")
        ordered = {audience: defaults[audience] for audience in AUDIENCES}  # hash == eq
        object.__setattr__(self, "channel_defaults", MappingProxyType(ordered))

    def __hash__(self) -> int:  # the read-only mapping is not hashable by itself
        return hash(
            (
                self.quiet_start,
                self.quiet_end,
                self.cap_marketing,
                self.cap_window,
                self.cap_counts,
                self.suppress_marketing_on_open_complaint,
                self.complaint_hold_limit,
                tuple(self.channel_defaults.items()),
                self.service_levels,
            )
        )

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start != self.quiet_end

    def defaults_for(self, tier: str, segment: str) -> tuple[str, ...]:
        """The default channels for a customer, looked up in this order:

        1. tier `high` → `high` (whatever the segment: the account manager's customers);
        2. segment `enterprise` → `enterprise`;
        3. tier `base` → `base`;
        4. everyone else (mid-tier consumers) → `consumer`.
        """
        if tier == "high":
            return self.channel_defaults["high"]
        if segment == "enterprise":
            return self.channel_defaults["enterprise"]
        if tier == "base":
            return self.channel_defaults["base"]
        return self.channel_defaults["consumer"]


def parse_clock(text: object) -> time:
    """A wall-clock time from `HH:MM` (24-hour) text; ValueError otherwise."""
    match = _CLOCK.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a time of day such as 21:00 or 08:00 (24-hour HH:MM)")
    return time(int(match[1]), int(match[2]))


def parse_policy(source: Source, node: Any, at: tuple[int, int]) -> Policy:
    """The `policy:` mapping of a rules file as a `Policy`.

    `at` is where the `policy` key is, for a value that is not a mapping. Every problem
    goes to `source` with its position (codes wrong-type, unknown-key, bad-duration,
    bad-choice); a part with a problem keeps its default, and the caller (the loader)
    rejects the whole directory when there is any error, as for rules.
    """
    if not isinstance(node, CommentedMap):
        source.error(
            at,
            "wrong-type",
            f"`policy` is a mapping with {', '.join(POLICY_KEYS)}",
        )
        return Policy()
    source.unknown_keys(node, POLICY_KEYS, "policy key")
    values: dict[str, Any] = {}
    if "quiet_hours" in node:
        values.update(_quiet_hours(source, node))
    if "frequency_cap" in node:
        values.update(_frequency_cap(source, node))
    if "suppress_marketing_on_open_complaint" in node:
        value = node["suppress_marketing_on_open_complaint"]
        if isinstance(value, bool):
            values["suppress_marketing_on_open_complaint"] = value
        else:
            source.error(
                Source.value(node, "suppress_marketing_on_open_complaint"),
                "wrong-type",
                "`suppress_marketing_on_open_complaint` is true or false",
            )
    if "complaint_hold" in node:
        values.update(_complaint_hold(source, node))
    if "channel_defaults" in node:
        values["channel_defaults"] = _channel_defaults(source, node)
    if "business_hours" in node or "feedback_sla" in node:
        default = ServiceLevels()
        calendar = parse_business_hours(source, node) if "business_hours" in node else None
        targets = parse_feedback_sla(source, node) if "feedback_sla" in node else None
        values["service_levels"] = ServiceLevels(
            calendar or default.calendar, targets or default.targets
        )
    return Policy(**values)


def _quiet_hours(source: Source, node: CommentedMap) -> dict[str, time]:
    section = source.section(node, "quiet_hours", "{start: '21:00', end: '08:00'}")
    if section is None:
        return {}
    source.unknown_keys(section, ("start", "end"), "quiet_hours key")
    values = {}
    for key in ("start", "end"):
        if key not in section:
            continue
        try:
            values[f"quiet_{key}"] = parse_clock(section[key])
        except ValueError as error:
            source.error(Source.value(section, key), "wrong-type", str(error))
    return values


def _frequency_cap(source: Source, node: CommentedMap) -> dict[str, Any]:
    section = source.section(
        node, "frequency_cap", "{marketing: 2, window: 7d, counts: [marketing]}"
    )
    if section is None:
        return {}
    source.unknown_keys(section, ("marketing", "window", "counts"), "frequency_cap key")
    values: dict[str, Any] = {}
    if "marketing" in section:
        count = section["marketing"]
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            values["cap_marketing"] = count
        else:
            source.error(
                Source.value(section, "marketing"),
                "wrong-type",
                "`marketing` is a whole number ≥ 0: marketing messages allowed per window",
            )
    if "window" in section:
        try:
            values["cap_window"] = parse_duration(section["window"])
        except ValueError as error:
            source.error(Source.value(section, "window"), "bad-duration", str(error))
    if "counts" in section:
        values.update(_cap_counts(source, section))
    return values


def _cap_counts(source: Source, section: CommentedMap) -> dict[str, tuple[str, ...]]:
    """The purposes the cap counts (and stops): a list of marketing and care."""
    counts = section["counts"]
    if not isinstance(counts, CommentedSeq):
        source.error(
            Source.value(section, "counts"), "wrong-type", "`counts` is a list such as [marketing]"
        )
        return {}
    good = True
    for index, purpose in enumerate(counts):
        if purpose not in CAPPABLE:
            hint = " (service messages are never capped)" if purpose == "service" else ""
            source.error(
                Source.item(counts, index),
                "bad-choice",
                f"{purpose!r} is not a purpose the cap counts ({', '.join(CAPPABLE)}){hint}",
            )
            good = False
    return {"cap_counts": tuple(dict.fromkeys(str(p) for p in counts))} if good else {}


def _complaint_hold(source: Source, node: CommentedMap) -> dict[str, timedelta]:
    section = source.section(node, "complaint_hold", "{limit: 14d}")
    if section is None:
        return {}
    source.unknown_keys(section, ("limit",), "complaint_hold key")
    if "limit" not in section:
        return {}
    try:
        return {"complaint_hold_limit": parse_duration(section["limit"])}
    except ValueError as error:
        source.error(Source.value(section, "limit"), "bad-duration", str(error))
        return {}


def _channel_defaults(source: Source, node: CommentedMap) -> Mapping[str, tuple[str, ...]]:
    """The given audiences' lists over the defaults; a bad list keeps its default."""
    merged = dict(DEFAULT_CHANNELS)
    section = source.section(node, "channel_defaults", "of audience: [channels]")
    if section is None:
        return merged
    source.unknown_keys(section, AUDIENCES, "audience")
    for audience, channels in section.items():
        if audience not in AUDIENCES:
            continue
        at = Source.value(section, audience)
        if not isinstance(channels, CommentedSeq) or not channels:
            source.error(
                at, "wrong-type", f"`{audience}` is a non-empty list such as [wechat, email]"
            )
            continue
        good = True
        seen: set[str] = set()
        for index, channel in enumerate(channels):
            item_at = Source.item(channels, index)
            if channel in ("phone", "visit"):
                source.error(
                    item_at,
                    "bad-choice",
                    f"{channel!r} is a staff task (open_task), not a message channel",
                )
                good = False
            elif channel not in MESSAGE_CHANNELS:
                hint = did_you_mean(str(channel), MESSAGE_CHANNELS)
                source.error(
                    item_at,
                    "bad-choice",
                    f"{channel!r} is not a message channel ({', '.join(MESSAGE_CHANNELS)}){hint}",
                )
                good = False
            elif channel in seen:
                source.error(item_at, "bad-choice", f"{channel!r} is listed twice")
                good = False
            seen.add(str(channel))
        if good:
            merged[str(audience)] = tuple(str(channel) for channel in channels)
    return merged
