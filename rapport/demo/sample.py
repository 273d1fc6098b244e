"""Deterministic synthetic customers and event history, for the demo and for benchmarks.

`write_sample` streams `customers.csv` and `events.jsonl`: each customer's history is built,
sorted and written before the next customer is drawn, so 2,000,000 events never sit in
memory. Everything comes from one `random.Random(seed)`, so the same arguments give
byte-identical files (given the same tz database). Amounts are in CNY. For speed, event
lines are assembled from pre-escaped JSON fragments and timestamps are formatted from lookup
tables: `json.dumps` and `datetime.isoformat` per event roughly halved the throughput.

Customers buy and leave by a known buy-till-you-die process, Pareto/NBD (see `lifetimes`):
each draws a purchase rate λ ~ Gamma(r, α) and a dropout rate μ ~ Gamma(s, β), with r, α
and β set by spending tier (enterprise customers leave more slowly), buys at rate λ from
a first purchase until an exponential lifetime of rate μ ends, and fades before leaving:
logins fall off over the weeks before the dropout (and almost stop after it), some orders
shrink, complaints and low scores come. So a backtest of the churn signals has a ground
truth: `write_sample(..., truth=True)` also writes each customer's draw to truth.csv.
Every rate scales with `events_per_customer` (less the first purchase every customer
makes); lifetimes do not. Customers are prospects (no events at all, about 0.3%), new
(arrived in the last 90 days, 10%), joined earlier in the window (20%) or customers
already when the window opens; the quiet (dormant), the dropping frequencies and logins
the rules look for come from the process.

Feedback gets a staff first response (a `contact` whose `ref` is the feedback's id), most
within its level's SLA, and often a `feedback_resolved` after that. About half the surveys
also rate the five satisfaction dimensions: one `survey` event each, at the same moment,
with `category` naming the dimension (the NPS answer itself has no category).
"""

import csv
import math
import random
from bisect import bisect_right
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

from rapport.demo.lifetimes import Life, arrivals, draw_life, login_times
from rapport.demo.sample_words import (
    CATEGORIES,
    CHANNELS,
    CONTACT_TEXT,
    EN_FIRMS,
    EN_FIRST,
    EN_LAST,
    EN_ZONES,
    FEEDBACK_TEXT,
    ISSUES,
    MANAGERS,
    PRODUCTS,
    RESOLVED_TEXT,
    RESPONSE_TEXT,
    ZH_CITIES,
    ZH_FAMILY,
    ZH_FIRMS,
    ZH_GIVEN,
    words,
)

WINDOW_DAYS = 400
_SPAN = WINDOW_DAYS - 1  # the process runs over days 0.._SPAN, mapped to whole days before `end`
_DAY = 86_400
_DEFAULT_EVENTS = 20.0  # the events per customer the rates in `lifetimes` give
_ZONE_NAMES = ("Asia/Shanghai", *(zone for zone, _, _ in EN_ZONES))
_PRICES = [price for _, price in PRODUCTS]

TRUTH_COLUMNS = ("id", "purchase_rate", "dropout_rate", "observed_from", "dropout_at")
COLUMNS = words(
    "id name email phone wechat segment birthday locale timezone account_manager consent_email "
    "consent_sms consent_wechat consent_app created_at city"
)
# First response per level: (SLA in seconds, share answered within it); the rest come
# later, up to _LATE_RESPONSE times the SLA.
_RESPONSE = {"general": (3_600, 0.80), "complex": (24 * 3_600, 0.85), "major": (48 * 3_600, 0.75)}
_LATE_RESPONSE = 4
_RESOLVE_HOURS = {"general": 48, "complex": 7 * 24, "major": 14 * 24}  # after the first response
_SCORE_WEIGHTS = (2, 1, 1, 2, 2, 4, 6, 14, 22, 22, 24)  # survey scores 0..10
_SCORE_CUM = [sum(_SCORE_WEIGHTS[: i + 1]) for i in range(11)]
# Satisfaction dimensions a survey may also ask about, with their shift from the NPS score
# (price is rated a little lower); each answer adds a noise from _SCORE_NOISE, clipped 0-10.
# Fragments are made up front: dimension i's answer is _DIMENSION_FRAGMENTS[i][nps + noise + 2].
_DIMENSIONS = (("product_fit", 0), ("response_speed", 0), ("resolution_quality", 0),
               ("price", -1), ("brand", 0))  # fmt: skip
_DIMENSION_SHARE = 0.5  # share of the surveys that also rate every dimension
_SCORE_NOISE = (-2, -1, -1, 0, 0, 0, 1, 1, 2)
_DIMENSION_FRAGMENTS = tuple(
    tuple(
        f',"score":{min(10, max(0, score))},"category":"{name}"'
        for score in range(shift - 2, 10 + shift + 3)  # nps + shift + noise
    )
    for name, shift in _DIMENSIONS
)
# Profiles as (cumulative probability, name): prospects (no events at all), new (arrived in
# the last 90 days), joined (arrived earlier in the window); the rest were customers already,
# and their history before the window is not written: they enter the process with a purchase
# in its first _ENTRY_DAYS (else a customer who left early would look like a prospect).
_PROFILES = ((0.003, "prospect"), (0.103, "new"), (0.303, "joined"))
_ENTRY_DAYS = 30
# Other events per purchase the customer would make while alive (see `lifetimes`): logins
# (a lognormal multiple, so some customers live in the app and others never open it),
# feedback and NPS surveys while alive, the company's contacts for the whole window.
_LOGINS_PER_PURCHASE = (-0.4, 1.3)  # mu and sigma of the lognormal
_FEEDBACK_PER_PURCHASE = 0.12
_SURVEYS_PER_PURCHASE = 0.08
_CONTACTS_A_DAY = {True: 1 / 100, False: 1 / 300}  # enterprise or not
_LEAVER_COMPLAINS = 0.3  # a leaver raises an issue while fading
_FADING_SCORE_CUM = [sum((6, 6, 6, 8, 10, 12, 14, 14, 10, 8, 6)[: i + 1]) for i in range(11)]
# Local time of day per kind: earliest and half the range in seconds (peak in the middle).
_HOURS = {"purchase": (32_400, 25_200), "login": (25_200, 30_600), "other": (30_600, 21_600)}
# Share of big (>100k CNY a year) and mid (10k-100k) spenders, by enterprise or not.
_TIER_CUTS = {True: (0.22, 0.80), False: (0.012, 0.27)}
_SPEND = ((120_000, 500_000), (12_000, 80_000), (300, 8_500))  # big, mid, small yearly CNY
_DISCOUNT = (0.85, 1.0)
# An order's value around the customer's usual one: lognormal(-0.125, 0.5) (mean 1), drawn by
# table lookup (`lognormvariate` per order cost a tenth of the generator's time).
_NOISE_STEPS = 512
_BASKET_NOISE = [
    math.exp(-0.125 + 0.5 * NormalDist().inv_cdf((step + 0.5) / _NOISE_STEPS))
    for step in range(_NOISE_STEPS)
]
_MINUTES = [f"T{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60)]
_SECONDS = [f"{second:02d}" for second in range(60)]

# [epoch seconds, type, JSON fragment of the extra fields]; the id is appended when written.
# An event that refers to a feedback item (its feedback_resolved, or the contact that is its
# first response) holds (the feedback event, the fragment after the ref) until then.
Event = list[Any]


@dataclass(frozen=True)
class SampleFiles:
    """The files `write_sample` wrote and how many rows each holds (headers excluded)."""

    customers: Path  # CSV
    events: Path  # JSON Lines
    customer_count: int
    event_count: int
    truth: Path | None = None  # CSV of each customer's draw of the process, when asked for


class _Clock:
    """Formats epoch seconds as ISO 8601 local time with offset, by table lookup (fast)."""

    def __init__(self, zone: ZoneInfo, start_ts: int, end_ts: int) -> None:
        self._hour0 = start_ts - start_ts % 3600  # DST changes happen on whole UTC hours
        self._offsets = []
        for hour in range(self._hour0, end_ts + 1, 3600):
            offset = datetime.fromtimestamp(hour, zone).utcoffset() or timedelta()
            seconds = int(offset.total_seconds())
            sign, minutes = "+" if seconds >= 0 else "-", abs(seconds) // 60
            self._offsets.append((seconds, f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"))
        self._day0 = (start_ts // _DAY - 2) * _DAY
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        days = range(self._day0 // _DAY, end_ts // _DAY + 3)
        self._dates = [(epoch + timedelta(days=day)).date().isoformat() for day in days]
        # Local midnight starting the day `end` falls on, as epoch seconds.
        local_end = datetime.fromtimestamp(end_ts, zone)
        self.midnight = int(local_end.replace(hour=0, minute=0, second=0).timestamp())

    def format(self, ts: int) -> str:
        """`ts` (between the window start and `end`) as e.g. `2025-10-03T09:15:00+08:00`."""
        seconds, text = self._offsets[(ts - self._hour0) // 3600]
        day, clock = divmod(ts + seconds - self._day0, _DAY)
        minute, second = divmod(clock, 60)
        return self._dates[day] + _MINUTES[minute] + _SECONDS[second] + text


class _Generator:
    """Draws customers and their histories from one seeded random stream."""

    def __init__(self, seed: int, end_ts: int, events_per_customer: float) -> None:
        self.rng = random.Random(seed)
        self.end_ts = end_ts
        self.start_ts = end_ts - WINDOW_DAYS * _DAY
        self.clocks = {name: _Clock(ZoneInfo(name), self.start_ts, end_ts) for name in _ZONE_NAMES}
        # Every rate scales, so that the first purchase plus the rest make the mean asked for.
        self.scale = max(0.0, events_per_customer - 1) / (_DEFAULT_EVENTS - 1)
        self.active = events_per_customer > 0  # else every customer is a prospect

    def customer(self, cid: str, number: int) -> tuple[list[str], list[Event], Life | None]:
        """One CSV row, the customer's events sorted by time, and the process drawn for them
        (None for a prospect)."""
        rng = self.rng
        enterprise = rng.random() < 0.15
        if rng.random() < 0.6:
            locale, zone, city = "zh-CN", "Asia/Shanghai", rng.choice(ZH_CITIES)
            phone = _digits(rng, f"+86 1{rng.choice('3578')}#########")
            wechat = "wxid_" + "".join(rng.choices("abcdefghijkmnpqrstuvwxyz23456789", k=10))
            wechat = wechat if rng.random() < 0.85 else ""
            name = rng.choice(ZH_FAMILY) + rng.choice(ZH_GIVEN)
            email = f"user{number}@example.cn"
            if enterprise:
                name, email = " ".join(map(rng.choice, ZH_FIRMS)), f"purchasing{number}@example.cn"
        else:
            locale, (zone, cities, phone_template) = "en", rng.choice(EN_ZONES)
            city, phone = rng.choice(cities), _digits(rng, phone_template)
            wechat = f"wx_{number}" if rng.random() < 0.05 else ""
            first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            name, email = f"{first} {last}", f"{first}.{last}{number}@example.com".lower()
            if enterprise:
                brand, kind = map(rng.choice, EN_FIRMS)
                name, email = f"{brand} {kind}", f"orders{number}@{brand.lower()}.example.com"
        birthday = "" if enterprise or rng.random() < 0.1 else _birthday(rng)
        draw, (big_cut, mid_cut) = rng.random(), _TIER_CUTS[enterprise]
        tier = 0 if draw < big_cut else 1 if draw < mid_cut else 2
        manager = rng.choice(MANAGERS[locale]) if enterprise or tier == 0 else ""
        consents = [rng.random() < 0.9, rng.random() < 0.6, bool(wechat) and rng.random() < 0.8]
        consents.append(rng.random() < 0.45)
        draw = rng.random()
        profile = next((label for cut, label in _PROFILES if draw < cut), "existing")
        life = self.life(profile, enterprise, tier)
        events = [] if life is None else self.history(life, zone, locale, enterprise, tier)
        if life is None:
            created = self.end_ts - rng.randint(600, 60 * _DAY)
        elif profile == "existing":
            created = self.start_ts - rng.randint(600, 3 * 365 * _DAY)
        else:  # shortly before the first event, the arrival's purchase or a login that day
            created = events[0][0] - rng.randint(600, 3 * _DAY)
        created_at = datetime.fromtimestamp(created, ZoneInfo(zone)).isoformat()
        flags = ["true" if consent else "false" for consent in consents]
        segment = "enterprise" if enterprise else "consumer"
        row = [cid, name, "" if rng.random() < 0.08 else email, phone, wechat, segment, birthday]
        return [*row, locale, zone, manager, *flags, created_at, city], events, life

    def truth(self, cid: str, zone: str, life: Life | None) -> list[str]:
        """The row of truth.csv for `life` (see `write_sample`)."""
        if life is None:
            return [cid, "", "", "", ""]
        dropout = self.epoch(zone, life.dropout)
        return [
            cid,
            f"{life.purchase_rate:.6g}",
            f"{life.dropout_rate:.6g}",
            datetime.fromtimestamp(self.epoch(zone, life.start), UTC).isoformat(),
            "" if dropout > self.end_ts else datetime.fromtimestamp(dropout, UTC).isoformat(),
        ]

    def epoch(self, zone: str, moment: float) -> int:
        """`moment` (days since the window starts) in epoch seconds: day `moment` falls on
        the whole day its events are stamped on, `_SPAN` on the end of the day `end` is in."""
        return self.clocks[zone].midnight + _DAY - round((_SPAN - moment) * _DAY)

    def life(self, profile: str, enterprise: bool, tier: int) -> Life | None:
        """The customer's draw of the buy-till-you-die process (None: a prospect)."""
        if profile == "prospect" or not self.active:
            return None
        first, last = {"new": (_SPAN - 89, _SPAN - 3), "joined": (_ENTRY_DAYS, _SPAN - 90)}.get(
            profile, (0, _ENTRY_DAYS)
        )
        start = self.rng.uniform(first, last)
        return draw_life(self.rng, tier, enterprise, start, self.scale)

    def history(
        self, life: Life, zone: str, locale: str, enterprise: bool, tier: int
    ) -> list[Event]:
        """Events of one customer following `life`, sorted by time."""
        rng, end_ts, random_ = self.rng, self.end_ts, self.rng.random
        midnight = self.clocks[zone].midnight
        rate, until = life.purchase_rate, min(life.dropout, _SPAN)

        def stamps(moments: list[float], hours: tuple[int, int]) -> list[int]:
            """Epoch seconds of `moments` (days since the window starts), each on its day at
            a time of day drawn from `hours`; today's future times are mirrored back."""
            day0, half, late = midnight + hours[0], hours[1], 2 * end_ts
            return [
                ts
                if (ts := day0 - int(_SPAN - at) * _DAY + int((random_() + random_()) * half))
                <= end_ts
                else late - ts
                for at in moments
            ]

        events: list[Event] = []
        bought = [life.start, *arrivals(rng, rate, life.start, until)]
        spend_each = rng.uniform(*_SPEND[tier]) / max(1.0, rate * 365) / (sum(_DISCOUNT) / 2)
        basket_from, low, high = life.basket_from, _DISCOUNT[0], _DISCOUNT[1] - _DISCOUNT[0]
        for moment, ts in zip(bought, stamps(bought, _HOURS["purchase"]), strict=True):
            target = spend_each * _BASKET_NOISE[int(random_() * _NOISE_STEPS)]
            if moment > basket_from:
                target *= life.basket(moment)
            affordable = bisect_right(_PRICES, target)
            cheapest = max(0, affordable - 4)
            product, price = PRODUCTS[cheapest + int(random_() * ((affordable or 1) - cheapest))]
            quantity = max(1, round(target / price))
            amount = round(price * quantity * (low + high * random_()), 2)
            fragment = f',"amount":{amount!r},"quantity":{quantity},"product":"{product}"'
            events.append([ts, "purchase", fragment])
            if random_() < 0.02 and (refund_ts := ts + rng.randint(_DAY, 20 * _DAY)) <= end_ts:
                refund = round(amount * rng.randint(1, quantity) / quantity, 2)
                fragment = f',"amount":{refund!r},"product":"{product}"'
                events.append([refund_ts, "refund", fragment])
        fading_from, other = life.dropout - life.fade, _HOURS["other"]
        raised = arrivals(rng, rate * _FEEDBACK_PER_PURCHASE, life.start, until)
        categories = [rng.choice(CATEGORIES) for _ in raised]
        if life.dropout < _SPAN and random_() < _LEAVER_COMPLAINS:
            raised.append(rng.uniform(max(life.start, fading_from), life.dropout))
            categories.append(rng.choice(ISSUES))
        for category, ts in zip(categories, stamps(raised, other), strict=True):
            level, draw = "general", random_()
            if category in ISSUES and draw > 0.7:
                level = "complex" if draw < 0.93 else "major"
            text = rng.choice(FEEDBACK_TEXT[locale][category])
            channel = f',"channel":"{rng.choice(CHANNELS[locale])}"'
            fragment = f',"level":"{level}","category":"{category}"{channel},"text":{text}'
            feedback = [ts, "feedback", fragment]
            events.append(feedback)
            sla, on_time = _RESPONSE[level]
            if random_() < on_time:
                response_ts = ts + rng.randint(sla // 20, sla)
            else:
                response_ts = ts + rng.randint(sla + 1, _LATE_RESPONSE * sla)
            if response_ts > end_ts:
                continue  # not answered yet, so not resolved either
            text = rng.choice(RESPONSE_TEXT[locale])  # answered on the channel it came on
            events.append([response_ts, "contact", (feedback, f'{channel},"text":{text}')])
            resolved_ts = response_ts + rng.randint(3600, _RESOLVE_HOURS[level] * 3600)
            if random_() < 0.88 and resolved_ts <= end_ts:
                text = rng.choice(RESOLVED_TEXT[locale])
                events.append([resolved_ts, "feedback_resolved", (feedback, f',"text":{text}')])
        surveyed = arrivals(rng, rate * _SURVEYS_PER_PURCHASE, life.start, until)
        for moment, ts in zip(surveyed, stamps(surveyed, other), strict=True):
            weights = _FADING_SCORE_CUM if moment >= fading_from else _SCORE_CUM
            score = rng.choices(range(11), cum_weights=weights)[0]
            events.append([ts, "survey", f',"score":{score}'])
            if random_() < _DIMENSION_SHARE:  # same moment: sorted after it, in this order
                events.extend(
                    [ts, "survey", fragments[score + 2 + rng.choice(_SCORE_NOISE)]]
                    for fragments in _DIMENSION_FRAGMENTS
                )
        contacted = arrivals(rng, self.scale * _CONTACTS_A_DAY[enterprise], life.start, _SPAN)
        for ts in stamps(contacted, other):
            channel, text = rng.choice(CHANNELS[locale]), rng.choice(CONTACT_TEXT[locale])
            events.append([ts, "contact", f',"channel":"{channel}","text":{text}'])
        logins = login_times(rng, life, rate * rng.lognormvariate(*_LOGINS_PER_PURCHASE), _SPAN)
        events.extend([ts, "login", ""] for ts in stamps(logins, _HOURS["login"]))
        events.sort(key=itemgetter(0))
        return events


def _digits(rng: random.Random, template: str) -> str:
    """`template` with every `#` replaced by a random digit."""
    count = template.count("#")
    return template.replace("#", "{}").format(*f"{rng.randrange(10**count):0{count}d}")


def _birthday(rng: random.Random) -> str:
    """An ISO birth date between 1950 and 2005; about 1 in 200 is a 29 February."""
    if rng.random() < 0.005:
        return f"{rng.randrange(1952, 2005, 4)}-02-29"
    first = datetime(1950, 1, 1).toordinal()
    return datetime.fromordinal(rng.randrange(first, first + 56 * 365)).date().isoformat()


def write_sample(
    directory: Path,
    *,
    customers: int,
    events_per_customer: float = 20.0,
    seed: int = 7,
    end: datetime,
    truth: bool = False,
) -> SampleFiles:
    """Writes customers.csv and events.jsonl under directory.

    The history covers the 400 days before `end` (tz-aware): event timestamps carry the
    customer's UTC offset and lie in `[end - 400 days, end]`. About `events_per_customer`
    events are written per customer on average. With `truth`, truth.csv says what the
    process drew for each customer (`TRUTH_COLUMNS`: rates a day, UTC times; empty for a
    prospect, and `dropout_at` empty for a customer still alive at `end`), to judge what
    was made of the events against. Existing files of those names are replaced.
    """
    if end.utcoffset() is None:
        raise ValueError("end must be timezone-aware")
    if customers < 0 or events_per_customer < 0:
        raise ValueError("customers and events_per_customer must not be negative")
    directory.mkdir(parents=True, exist_ok=True)
    customers_path, events_path = directory / "customers.csv", directory / "events.jsonl"
    truth_path = directory / "truth.csv" if truth else None
    generator = _Generator(seed, math.floor(end.timestamp()), events_per_customer)
    width, written = max(6, len(str(customers))), 0
    with (
        customers_path.open("w", encoding="utf-8", newline="") as customer_file,
        events_path.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as event_file,
        ExitStack() as optional,
    ):
        rows = csv.writer(customer_file, lineterminator="\n")
        rows.writerow(COLUMNS)
        truths = None
        if truth_path is not None:
            truth_file = optional.enter_context(truth_path.open("w", encoding="utf-8", newline=""))
            truths = csv.writer(truth_file, lineterminator="\n")
            truths.writerow(TRUTH_COLUMNS)
        for number in range(1, customers + 1):
            cid = f"C{number:0{width}d}"
            row, events, life = generator.customer(cid, number)
            rows.writerow(row)
            if truths is not None:
                truths.writerow(generator.truth(cid, row[8], life))
            clock, lines = generator.clocks[row[8]].format, []
            for event in events:
                written += 1
                ts, kind, extra = event
                if extra.__class__ is tuple:
                    feedback, rest = extra  # written earlier, so it has its id by now
                    extra = f',"ref":"{feedback[3]}"{rest}'
                event.append(eid := f"E{written:09d}")
                head = f'{{"id":"{eid}","customer_id":"{cid}","type":"{kind}"'
                lines.append(f'{head},"occurred_at":"{clock(ts)}"{extra}}}\n')
            event_file.write("".join(lines))
    return SampleFiles(customers_path, events_path, customers, written, truth_path)
