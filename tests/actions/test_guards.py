"""The delivery guards (`actions/guards.py`) and their policy (`engine/policy.py`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions.guards import (
    REASON_CODES,
    Decision,
    Recipient,
    candidate_channels,
    decide,
    first_allowed_time,
    in_quiet_hours,
)
from engine.policy import AUDIENCES, DEFAULT_CHANNELS, Policy, parse_clock, parse_policy
from engine.problems import CODES
from engine.yamlsource import Source, parse
from storage.planned import PlannedMessage
from tests.paths import ROOT

POLICY_FILE = ROOT / "rules" / "policy.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
DAYTIME = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)
POLICY = Policy()


def recipient(**changes: Any) -> Recipient:
    """A mid-tier consumer in Shanghai who agreed to every channel and has every address."""
    base = Recipient(
        customer_id="c-001",
        timezone="Asia/Shanghai",
        consents={"email": True, "sms": True, "wechat": True, "app": True},
        addresses={
            "email": "li.wei@example.com",
            "sms": "+86 138 0000 0000",
            "wechat": "wx_liwei",
            "app": "c-001",
        },
        preferred_channels=(),
        tier="mid",
        segment="consumer",
        open_complaints=0,
    )
    return replace(base, **changes)


def without(channel: str, *, consent: bool = False, address: str | None = None) -> dict[str, Any]:
    """Recipient changes that take `channel` away: no consent (or, with consent, no address)."""
    base = recipient()
    if consent:
        return {"addresses": {**base.addresses, channel: address}}
    return {"consents": {**base.consents, channel: False}}


def message(channels: tuple[str, ...] = (), purpose: str = "marketing") -> PlannedMessage:
    return PlannedMessage(
        key="high_weekly_online_touch.0:c-001:every:604800s:1368",
        customer_id="c-001",
        rule_id="high_weekly_online_touch",
        template="insight_report",
        channels=channels,
        purpose=purpose,
        due_at=datetime(2026, 3, 10, 1, 0, tzinfo=UTC),
        event_id=None,
    )


def run(
    msg: PlannedMessage | None = None,
    who: Recipient | None = None,
    policy: Policy = POLICY,
    now: datetime = DAYTIME,
    sent: int = 0,
    held_since: datetime | None = None,
) -> Decision:
    return decide(msg or message(), who or recipient(), policy, now, sent, held_since)


def sent(decision: Decision, channel: str) -> bool:
    return decision.outcome == "send" and decision.channel == channel


# ------------------------------------------------------------------ open complaint


def test_marketing_waits_while_a_complaint_is_open() -> None:
    decision = run(who=recipient(open_complaints=1))
    assert decision == Decision(
        "defer",
        None,
        DAYTIME.astimezone(UTC) + timedelta(days=14),
        "open_complaint: marketing held while a complaint is open, waiting for the "
        "resolution until 2026-03-24 10:00 Asia/Shanghai at most (the complaint hold's "
        "limit of 14 days)",
    )
    assert decision.code == "open_complaint"


def test_the_hold_counts_from_when_it_began_and_ends_in_suppression() -> None:
    held = DAYTIME - timedelta(days=10)
    assert run(who=recipient(open_complaints=1), held_since=held).send_at == DAYTIME.astimezone(
        UTC
    ) + timedelta(days=4)
    decision = run(who=recipient(open_complaints=1), held_since=held - timedelta(days=4))
    assert (decision.outcome, decision.reason) == (
        "suppress",
        "open_complaint: the complaint is still open after the complaint hold's limit of "
        "14 days (held since 2026-02-24 10:00 Asia/Shanghai); not sent",
    )


def test_the_hold_limit_comes_from_the_policy() -> None:
    policy = Policy(complaint_hold_limit=timedelta(hours=12))
    decision = run(who=recipient(open_complaints=1), policy=policy)
    assert decision.send_at == DAYTIME.astimezone(UTC) + timedelta(hours=12)
    assert "limit of 12 hours" in decision.reason


def test_care_greetings_wait_for_a_complaint_too() -> None:
    assert run(message(purpose="care"), recipient(open_complaints=1)).outcome == "defer"


def test_service_messages_go_out_during_an_open_complaint() -> None:
    assert sent(run(message(purpose="service"), recipient(open_complaints=2)), "wechat")


def test_complaint_suppression_can_be_switched_off() -> None:
    policy = Policy(suppress_marketing_on_open_complaint=False)
    assert sent(run(who=recipient(open_complaints=1), policy=policy), "wechat")


def test_the_open_complaint_is_the_reason_when_the_cap_is_also_reached() -> None:
    assert run(who=recipient(open_complaints=1), sent=5).code == "open_complaint"


# ------------------------------------------------------------------ frequency cap


def test_one_marketing_message_in_the_window_leaves_room_for_a_second() -> None:
    assert sent(run(sent=1), "wechat")


@pytest.mark.parametrize("count", [2, 3, 10])
def test_the_cap_stops_marketing_at_two_in_seven_days(count: int) -> None:
    decision = run(sent=count)
    assert decision.outcome == "suppress"
    assert decision.channel is None and decision.send_at is None
    assert decision.reason == (
        f"frequency_cap: {count} marketing messages in the last 7 days (cap 2)"
    )


def test_service_messages_are_exempt_from_the_cap() -> None:
    assert sent(run(message(purpose="service"), sent=50), "wechat")


def test_care_greetings_are_capped_only_when_the_cap_counts_them() -> None:
    assert sent(run(message(purpose="care"), sent=5), "wechat")
    counting = Policy(cap_counts=("marketing", "care"))
    assert run(message(purpose="care"), policy=counting, sent=2).reason == (
        "frequency_cap: 2 marketing/care messages in the last 7 days (cap 2)"
    )


def test_the_cap_and_its_window_come_from_the_policy() -> None:
    policy = Policy(cap_marketing=3, cap_window=timedelta(days=14))
    assert sent(run(policy=policy, sent=2), "wechat")
    assert run(policy=policy, sent=3).reason == (
        "frequency_cap: 3 marketing messages in the last 14 days (cap 3)"
    )
    no_marketing = Policy(cap_marketing=0, cap_window=timedelta(days=1))
    assert run(policy=no_marketing, sent=0).reason == (
        "frequency_cap: 0 marketing messages in the last 1 day (cap 0)"
    )


def test_the_cap_suppresses_before_channels_and_quiet_hours_are_looked_at() -> None:
    nobody = recipient(consents=dict.fromkeys(("email", "sms", "wechat", "app"), False))
    assert run(who=nobody, sent=2).code == "frequency_cap"
    night = datetime(2026, 3, 10, 23, 0, tzinfo=SHANGHAI)
    assert run(now=night, sent=2).outcome == "suppress"


# ------------------------------------------------------------------ consent and channel


def test_the_rules_channels_override_the_customers_preference() -> None:
    decision = run(message(channels=("email", "sms")), recipient(preferred_channels=("wechat",)))
    assert sent(decision, "email")
    assert decision.reason == "ok: by email (the rule's channels)"


def test_the_rules_channels_are_the_only_ones_tried() -> None:
    who = recipient(**without("email"))
    decision = run(message(channels=("email",)), who)
    assert decision == Decision(
        "suppress", None, None, "no_consent: no channel the customer agreed to (email: no consent)"
    )


def test_the_customers_preference_comes_before_the_defaults() -> None:
    decision = run(who=recipient(preferred_channels=("email",)))
    assert sent(decision, "email")
    assert decision.reason == "ok: by email (the customer's preference)"


def test_consent_withdrawn_on_the_preferred_channel_falls_back_to_the_next() -> None:
    who = recipient(preferred_channels=("wechat", "sms"), **without("wechat"))
    assert sent(run(who=who), "sms")


def test_after_the_preference_come_the_defaults_for_tier_and_segment() -> None:
    who = recipient(preferred_channels=("email",), tier="base", **without("email"))
    decision = run(who=who)
    assert sent(decision, "sms")  # base: sms, email, wechat
    assert decision.reason == "ok: by sms (the default for base tier, consumer)"


@pytest.mark.parametrize("address", [None, "", "   "])
def test_a_channel_without_an_address_is_unusable(address: str | None) -> None:
    who = recipient(
        preferred_channels=("email", "app"), **without("email", consent=True, address=address)
    )
    assert sent(run(who=who), "app")
    assert who.unusable("email") == "no address"


def test_a_channel_missing_from_consents_or_addresses_is_unusable() -> None:
    who = recipient(consents={"sms": True}, addresses={"email": "a@example.com"})
    assert who.unusable("sms") == "no address"
    assert who.unusable("email") == "no consent"
    assert who.unusable("phone") == "not a message channel"


def test_no_usable_channel_suppresses_and_says_why_without_personal_data() -> None:
    who = recipient(
        consents={"email": True, "sms": False, "wechat": True, "app": False},
        addresses={"email": None, "sms": "+86 138 0000 0000", "wechat": "", "app": None},
    )
    decision = run(who=who)
    assert decision.outcome == "suppress"
    assert decision.channel is None and decision.send_at is None
    assert decision.reason == (
        "no_consent: no channel the customer agreed to "
        "(wechat: no address; app: no consent; sms: no consent; email: no address)"
    )
    assert "138" not in decision.reason and "@" not in decision.reason


def test_no_consent_suppresses_service_messages_too() -> None:
    nobody = recipient(consents=dict.fromkeys(("email", "sms", "wechat", "app"), False))
    assert run(message(purpose="service"), nobody).code == "no_consent"


@pytest.mark.parametrize(
    ("tier", "segment", "audience"),
    [
        ("high", "consumer", "high"),
        ("high", "enterprise", "high"),
        ("mid", "enterprise", "enterprise"),
        ("base", "enterprise", "enterprise"),
        ("base", "consumer", "base"),
        ("mid", "consumer", "consumer"),
    ],
)
def test_defaults_are_looked_up_high_then_enterprise_then_base_then_consumer(
    tier: str, segment: str, audience: str
) -> None:
    who = recipient(tier=tier, segment=segment)
    assert candidate_channels(message(), who, POLICY) == DEFAULT_CHANNELS[audience]


def test_the_default_channel_lists_follow_the_spec() -> None:
    assert dict(POLICY.channel_defaults) == {
        "high": ("wechat", "email"),
        "enterprise": ("email", "sms"),
        "base": ("sms", "email", "wechat"),
        "consumer": ("wechat", "app", "sms", "email"),
    }


def test_candidates_drop_duplicates_and_non_message_preferences() -> None:
    who = recipient(preferred_channels=("phone", "email", "visit", "email"), tier="high")
    assert candidate_channels(message(), who, POLICY) == ("email", "wechat")
    assert candidate_channels(message(channels=("sms", "sms")), who, POLICY) == ("sms",)


def test_a_high_tier_customer_with_only_sms_consent_gets_no_default_message() -> None:
    """The defaults are the whole list: operations add sms to `high` to allow it."""
    who = recipient(tier="high", consents={"email": False, "sms": True, "wechat": False})
    assert run(who=who).code == "no_consent"
    more = Policy(channel_defaults={**DEFAULT_CHANNELS, "high": ("wechat", "email", "sms")})
    assert sent(run(who=who, policy=more), "sms")


# ------------------------------------------------------------------ quiet hours: Shanghai


def at_shanghai(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, second, micro, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("now", "outcome", "send_at"),
    [
        (at_shanghai(20, 59, 59), "send", at_shanghai(20, 59, 59)),
        (at_shanghai(20, 59, 59, 999999), "send", at_shanghai(20, 59, 59, 999999)),
        (at_shanghai(21), "defer", datetime(2026, 3, 11, 8, 0, tzinfo=SHANGHAI)),
        (at_shanghai(23, 59, 59, 999999), "defer", datetime(2026, 3, 11, 8, 0, tzinfo=SHANGHAI)),
        (at_shanghai(0), "defer", at_shanghai(8)),
        (at_shanghai(7, 59), "defer", at_shanghai(8)),
        (at_shanghai(7, 59, 59, 999999), "defer", at_shanghai(8)),
        (at_shanghai(8), "send", at_shanghai(8)),
        (at_shanghai(12), "send", at_shanghai(12)),
    ],
)
def test_quiet_hours_boundaries_in_shanghai(now: datetime, outcome: str, send_at: datetime) -> None:
    decision = run(now=now)
    assert (decision.outcome, decision.channel, decision.send_at) == (outcome, "wechat", send_at)


def test_a_deferred_message_says_until_when_in_the_customers_zone() -> None:
    decision = run(now=at_shanghai(22, 30).astimezone(UTC))
    assert decision.outcome == "defer"
    assert decision.send_at is not None
    assert decision.send_at.tzinfo is UTC  # always UTC; the reason shows local time
    assert decision.send_at == datetime(2026, 3, 11, 0, 0, tzinfo=UTC)
    assert decision.reason == (
        "quiet_hours: deferred to 2026-03-11 08:00 Asia/Shanghai (quiet 21:00–08:00)"
    )


def test_quiet_hours_apply_to_service_messages_too() -> None:
    decision = run(message(purpose="service"), now=at_shanghai(23))
    assert decision.outcome == "defer"
    assert decision.send_at == datetime(2026, 3, 11, 8, 0, tzinfo=SHANGHAI)


def test_quiet_hours_are_the_customers_not_the_servers() -> None:
    now = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, 22:00 in New York
    assert run(now=now).outcome == "send"
    new_yorker = recipient(timezone="America/New_York")
    decision = run(who=new_yorker, now=now)
    assert decision.outcome == "defer"
    assert decision.send_at == datetime(2026, 7, 1, 8, 0, tzinfo=NEW_YORK)
    assert decision.send_at == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert decision.reason == (
        "quiet_hours: deferred to 2026-07-01 08:00 America/New_York (quiet 21:00–08:00)"
    )


def test_a_window_inside_one_day() -> None:
    lunch = Policy(quiet_start=time(12, 0), quiet_end=time(13, 30))
    assert run(policy=lunch, now=at_shanghai(11, 59)).outcome == "send"
    assert run(policy=lunch, now=at_shanghai(12)).send_at == at_shanghai(13, 30)
    assert run(policy=lunch, now=at_shanghai(13, 30)).outcome == "send"
    assert run(policy=lunch, now=at_shanghai(23)).outcome == "send"


def test_equal_start_and_end_mean_no_quiet_hours() -> None:
    never = Policy(quiet_start=time(0, 0), quiet_end=time(0, 0))
    assert not never.has_quiet_hours
    assert sent(run(policy=never, now=at_shanghai(3)), "wechat")


def test_the_quiet_window_comes_from_the_policy() -> None:
    late = Policy(quiet_start=time(22, 30), quiet_end=time(9, 15))
    assert run(policy=late, now=at_shanghai(22, 29)).outcome == "send"
    decision = run(policy=late, now=at_shanghai(22, 30))
    assert decision.send_at == datetime(2026, 3, 11, 9, 15, tzinfo=SHANGHAI)
    assert decision.reason.endswith("(quiet 22:30–09:15)")


# ------------------------------------------------------------------ quiet hours and DST


def test_london_spring_forward_shortens_the_night() -> None:
    """2026-03-29: clocks go from 01:00 GMT to 02:00 BST; 08:00 BST is 07:00 UTC."""
    now = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 22:00 GMT
    decision = run(who=recipient(timezone="Europe/London"), now=now)
    assert decision.outcome == "defer"
    assert decision.send_at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert decision.send_at is not None
    assert decision.send_at.astimezone(LONDON).utcoffset() == timedelta(hours=1)  # BST
    assert decision.send_at - now == timedelta(hours=9)
    assert decision.reason == (
        "quiet_hours: deferred to 2026-03-29 08:00 Europe/London (quiet 21:00–08:00)"
    )


def test_london_on_the_morning_after_the_change() -> None:
    londoner = recipient(timezone="Europe/London")
    # 07:30 UTC on 2026-03-29 is already 08:30 BST: no longer quiet.
    assert run(who=londoner, now=datetime(2026, 3, 29, 7, 30, tzinfo=UTC)).outcome == "send"
    # 06:59:59 UTC is 07:59:59 BST: quiet until 07:00 UTC.
    decision = run(who=londoner, now=datetime(2026, 3, 29, 6, 59, 59, tzinfo=UTC))
    assert decision.send_at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_london_fall_back_lengthens_the_night() -> None:
    """2026-10-25: clocks go from 02:00 BST back to 01:00 GMT; 08:00 GMT is 08:00 UTC."""
    now = datetime(2026, 10, 24, 21, 0, tzinfo=LONDON)  # 20:00 UTC
    decision = run(who=recipient(timezone="Europe/London"), now=now)
    assert decision.send_at == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    assert decision.send_at - now.astimezone(UTC) == timedelta(hours=12)


def test_a_quiet_end_skipped_by_spring_forward_ends_when_the_clock_jumps() -> None:
    """New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 never happens."""
    policy = Policy(quiet_start=time(21, 0), quiet_end=time(2, 30))
    now = datetime(2026, 3, 8, 1, 0, tzinfo=NEW_YORK)
    until = first_allowed_time(now, NEW_YORK, policy)
    assert until == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the jump itself
    assert until.astimezone(NEW_YORK).hour == 3


def test_fall_back_can_end_the_quiet_hours_early() -> None:
    """New York, 2026-11-01: at 01:59:59 EDT the clock goes back to 01:00 EST, which is
    outside quiet hours of 01:30–01:00 (a window crossing midnight)."""
    policy = Policy(quiet_start=time(1, 30), quiet_end=time(1, 0))
    now = datetime(2026, 11, 1, 1, 45, tzinfo=NEW_YORK)  # EDT, quiet
    assert first_allowed_time(now, NEW_YORK, policy) == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    # Given in the customer's own zone, `now` (01:45) and the deferral (01:00 EST) must
    # still compare as instants, not as wall clocks.
    decision = run(who=recipient(timezone="America/New_York"), policy=policy, now=now)
    assert decision.outcome == "defer"
    assert decision.send_at == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert decision.reason.startswith("quiet_hours: deferred to 2026-11-01 01:00 America/New_York")


@pytest.mark.parametrize(
    ("fold", "expected_utc"),
    [(0, datetime(2026, 11, 1, 5, 30, tzinfo=UTC)), (1, datetime(2026, 11, 1, 6, 30, tzinfo=UTC))],
)
def test_a_quiet_end_in_the_repeated_hour_is_the_next_one_after_now(
    fold: int, expected_utc: datetime
) -> None:
    """01:30 happens twice on 2026-11-01 in New York; the deferral is never in the past."""
    policy = Policy(quiet_start=time(21, 0), quiet_end=time(1, 30))
    now = datetime(2026, 11, 1, 1, 15, fold=fold, tzinfo=NEW_YORK)
    until = first_allowed_time(now, NEW_YORK, policy)
    assert until == expected_utc
    assert until > now


def test_the_time_to_send_is_now_itself_outside_quiet_hours() -> None:
    now = datetime(2026, 3, 10, 20, 0, tzinfo=SHANGHAI)
    allowed = first_allowed_time(now, NEW_YORK, POLICY)  # 07:00 in New York
    assert allowed == now and allowed.tzinfo is UTC
    decision = run(now=now)
    assert decision.send_at == now and decision.send_at.tzinfo is UTC


def test_in_quiet_hours_starts_inclusive_and_ends_exclusive() -> None:
    assert in_quiet_hours(time(21, 0), POLICY)
    assert in_quiet_hours(time(0, 0), POLICY)
    assert in_quiet_hours(time(7, 59, 59, 999999), POLICY)
    assert not in_quiet_hours(time(8, 0), POLICY)
    assert not in_quiet_hours(time(20, 59, 59, 999999), POLICY)


# ------------------------------------------------------------------ property: quiet hours

ZONES = [
    "Asia/Shanghai",
    "Europe/London",
    "America/New_York",
    "America/Santiago",  # changes at midnight
    "Australia/Lord_Howe",  # changes by 30 minutes
    "Asia/Kolkata",  # +05:30, no DST
    "Pacific/Chatham",  # +12:45 / +13:45
]
CHANGE_DAYS = [  # 2026 daylight-saving changes in the zones above
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
    datetime(2026, 9, 6, tzinfo=UTC),
    datetime(2026, 9, 27, tzinfo=UTC),
    datetime(2026, 10, 4, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
]
clock = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
near_a_change = st.builds(
    lambda day, seconds: day + timedelta(seconds=seconds),
    st.sampled_from(CHANGE_DAYS),
    st.floats(-2 * 86400, 2 * 86400, allow_nan=False),
)
anytime = st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))


def quiet_at(instant: datetime, zone: ZoneInfo, policy: Policy) -> bool:
    """Reference check, independent of the code under test."""
    wall = instant.astimezone(zone).time()
    start, end = policy.quiet_start, policy.quiet_end
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone_name=st.sampled_from(ZONES),
    start=clock,
    end=clock,
    now=st.one_of(near_a_change, anytime),
    given_in=st.sampled_from(["UTC", *ZONES]),
    purpose=st.sampled_from(["marketing", "service"]),
)
def test_a_deferral_is_the_earliest_moment_outside_quiet_hours(
    zone_name: str, start: time, end: time, now: datetime, given_in: str, purpose: str
) -> None:
    if start == end:
        start = time((start.hour + 1) % 24, start.minute)
    zone = ZoneInfo(zone_name)
    policy = Policy(quiet_start=start, quiet_end=end)
    local_now = now.astimezone(ZoneInfo(given_in))  # `now` may come in any zone
    decision = run(message(purpose=purpose), recipient(timezone=zone_name), policy, local_now)
    assert decision.send_at is not None and decision.send_at.tzinfo is UTC
    if not quiet_at(now, zone, policy):
        assert decision.outcome == "send" and decision.send_at == now
        return
    assert decision.outcome == "defer"
    until = decision.send_at
    assert until > now
    assert not quiet_at(until, zone, policy)  # never inside quiet hours
    assert quiet_at(until - timedelta(microseconds=1), zone, policy)
    step = now  # every minute before it is quiet: nothing earlier was allowed
    while step < until:
        assert quiet_at(step, zone, policy), step
        step += timedelta(minutes=1)


# ------------------------------------------------------------------ other inputs


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(now=datetime(2026, 3, 10, 12, 0))


def test_a_recipient_needs_a_real_timezone() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        recipient(timezone="Mars/Olympus")


def test_every_reason_starts_with_a_documented_code() -> None:
    decisions = [
        run(),
        run(who=recipient(open_complaints=1)),
        run(sent=2),
        run(who=recipient(consents={})),
        run(now=at_shanghai(23)),
    ]
    assert sorted(d.code for d in decisions) == sorted(REASON_CODES)


def test_policy_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="cap_marketing"):
        Policy(cap_marketing=-1)
    with pytest.raises(ValueError, match="cap_window"):
        Policy(cap_window=timedelta(0))
    with pytest.raises(ValueError, match="cap_counts"):
        Policy(cap_counts=("service",))
    with pytest.raises(ValueError, match="complaint_hold_limit"):
        Policy(complaint_hold_limit=timedelta(hours=-1))
    with pytest.raises(ValueError, match="channel_defaults needs"):
        Policy(channel_defaults={"high": ("email",)})
    with pytest.raises(ValueError, match="message channels"):
        Policy(channel_defaults={**DEFAULT_CHANNELS, "high": ("phone",)})


def test_policy_is_immutable_and_comparable() -> None:
    assert Policy() == Policy() and hash(Policy()) == hash(Policy())
    with pytest.raises(TypeError):
        POLICY.channel_defaults["high"] = ("sms",)  # type: ignore[index]
    changed = Policy(channel_defaults={**DEFAULT_CHANNELS, "base": ("email",)})
    assert changed != Policy()
    reordered = Policy(channel_defaults=dict(reversed(DEFAULT_CHANNELS.items())))
    assert reordered == Policy() and hash(reordered) == hash(Policy())


def test_parse_clock() -> None:
    assert parse_clock("08:00") == time(8, 0)
    assert parse_clock(" 23:59 ") == time(23, 59)
    for bad in ("24:00", "8:00", "08:60", "8pm", 800, None):
        with pytest.raises(ValueError, match="time of day"):
            parse_clock(bad)


# ------------------------------------------------------------------ parse_policy


def load(text: str) -> tuple[Policy, list[tuple[int, int, str]], list[str]]:
    """Parses a file whose `policy:` section is `text`; the policy and its problems."""
    source = Source("rules/policy.yaml")
    document = parse(source, text.encode())
    assert document is not None, source.problems
    policy = parse_policy(source, document["policy"], Source.key(document, "policy"))
    return (
        policy,
        [(p.line, p.column, p.code) for p in source.problems],
        [p.message for p in source.problems],
    )


def test_an_empty_policy_is_the_default() -> None:
    assert load("policy: {}\n")[:2] == (Policy(), [])


def test_a_full_policy_is_read() -> None:
    policy, problems, _ = load(
        "policy:\n"
        "  quiet_hours: {start: '22:30', end: 07:00}\n"
        "  frequency_cap: {marketing: 3, window: 2w, counts: [marketing, care]}\n"
        "  suppress_marketing_on_open_complaint: false\n"
        "  complaint_hold: {limit: 3d}\n"
        "  channel_defaults:\n"
        "    high: [email]\n"
        "    consumer: [app, wechat]\n"
    )
    assert problems == []
    assert policy == Policy(
        quiet_start=time(22, 30),
        quiet_end=time(7, 0),
        cap_marketing=3,
        cap_window=timedelta(weeks=2),
        cap_counts=("marketing", "care"),
        suppress_marketing_on_open_complaint=False,
        complaint_hold_limit=timedelta(days=3),
        channel_defaults={**DEFAULT_CHANNELS, "high": ("email",), "consumer": ("app", "wechat")},
    )


def test_parts_left_out_keep_their_defaults() -> None:
    policy, problems, _ = load("policy:\n  quiet_hours:\n    end: '07:30'\n")
    assert problems == []
    assert policy == Policy(quiet_end=time(7, 30))


BROKEN = """\
policy:
  quiet_hours:
    start: 9pm
    end: "24:00"
    middle: "01:00"
  frequency_cap:
    marketing: -1
    window: 7 days
  suppress_marketing_on_open_complaint: "yes"
  channel_defaults:
    high: [wechat, phone]
    consumer: [wechat, emial]
    vip: [email]
    base: []
    enterprise: [email, email]
  frequncy: 3
"""


def test_every_problem_is_reported_with_its_position_and_bad_parts_keep_defaults() -> None:
    policy, problems, messages = load(BROKEN)
    assert sorted(problems) == [
        (3, 12, "wrong-type"),
        (4, 10, "wrong-type"),
        (5, 5, "unknown-key"),
        (7, 16, "wrong-type"),
        (8, 13, "bad-duration"),
        (9, 41, "wrong-type"),
        (11, 20, "bad-choice"),
        (12, 24, "bad-choice"),
        (13, 5, "unknown-key"),
        (14, 11, "wrong-type"),
        (15, 25, "bad-choice"),
        (16, 3, "unknown-key"),
    ]
    assert all(code in CODES for _, _, code in problems)
    text = "\n".join(messages)
    assert "'9pm' is not a time of day" in text
    assert "'phone' is a staff task (open_task), not a message channel" in text
    assert "(did you mean 'email'?)" in text
    assert "unknown policy key 'frequncy' (did you mean 'frequency_cap'?)" in text
    assert "'email' is listed twice" in text
    assert policy == Policy()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("policy: [quiet]\n", (1, 1, "wrong-type")),
        ("policy:\n  quiet_hours: 21:00-08:00\n", (2, 16, "wrong-type")),
        ("policy:\n  frequency_cap: 2\n", (2, 18, "wrong-type")),
        ("policy:\n  frequency_cap: {marketing: true}\n", (2, 30, "wrong-type")),
        ("policy:\n  frequency_cap: {marketing: 2.5}\n", (2, 30, "wrong-type")),
        ("policy:\n  frequency_cap: {window: 0d}\n", (2, 27, "bad-duration")),
        ("policy:\n  frequency_cap: {window: 7}\n", (2, 27, "bad-duration")),
        ("policy:\n  frequency_cap: {per: 7d}\n", (2, 19, "unknown-key")),
        ("policy:\n  channel_defaults: [email]\n", (2, 21, "wrong-type")),
        ("policy:\n  channel_defaults: {high: email}\n", (2, 28, "wrong-type")),
        ("policy:\n  quiet_hours: {start: 21}\n", (2, 24, "wrong-type")),
        ("policy:\n  frequency_cap: {counts: marketing}\n", (2, 27, "wrong-type")),
        ("policy:\n  frequency_cap: {counts: [marketing, service]}\n", (2, 39, "bad-choice")),
        ("policy:\n  complaint_hold: 14d\n", (2, 19, "wrong-type")),
        ("policy:\n  complaint_hold: {limit: 2 weeks}\n", (2, 27, "bad-duration")),
        ("policy:\n  complaint_hold: {until: 14d}\n", (2, 20, "unknown-key")),
    ],
)
def test_one_problem_at_its_position(text: str, expected: tuple[int, int, str]) -> None:
    policy, problems, _ = load(text)
    assert problems == [expected]
    assert policy == Policy()


def test_the_audiences_are_the_lookup_order() -> None:
    assert AUDIENCES == ("high", "enterprise", "base", "consumer")
    assert tuple(DEFAULT_CHANNELS) == AUDIENCES


def test_the_shipped_policy_file_restates_the_defaults() -> None:
    source = Source(str(POLICY_FILE))
    document = parse(source, POLICY_FILE.read_bytes())
    assert document is not None
    policy = parse_policy(source, document["policy"], Source.key(document, "policy"))
    assert [str(p) for p in source.problems] == []
    assert policy == Policy()
