"""What an import row must look like, and how files are read row by row.

CSV and JSON Lines are streamed line by line (a 1,000,000-event file is never held in
memory); each row comes with the line it starts on so errors read `FILE:LINE: reason`.

A row names the fields it gives: an empty CSV cell or a JSON `null` is given as None
(clear it), a column or key the row lacks is not given at all (keep what is stored).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, from_json

from engine.facts import CONTACT_CHANNELS, FEEDBACK_LEVELS, SEGMENTS

Identifier = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")
MAX_INTEGER = 2**31 - 1  # what an INTEGER column holds on PostgreSQL
MAX_AMOUNT = 1e12  # larger is a typo, and sums of such amounts would overflow
# The most characters one field may hold: the csv module's own default limit, applied to
# JSON rows and request bodies too. Longer is a broken export (an unclosed quote swallows
# the rest of the file into one field), never a value a rule or a message could use.
MAX_FIELD_CHARS = 131_072


def _plausible(moment: datetime) -> datetime:
    """A time in UTC between the years 1900 and 2200: anything else is a typo, and
    times near year 1 or 9999 cannot even be converted to UTC."""
    if 1900 < moment.year < 2200:  # an offset (under a day) cannot change the year by two
        return moment
    try:
        year = moment.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not 1900 <= year <= 2200:
        raise ValueError("a time between the years 1900 and 2200 is expected")
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value: keys and values of dicts, items of lists."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend([*item, *item.values()])
        elif isinstance(item, list):
            pending.extend(item)


def unstorable(fields: dict[str, Any]) -> str | None:
    """Why a row's values cannot be stored, naming the field (`extra.deep.1`), or None:
    NUL (0x00) in text, which no database column holds; a field over MAX_FIELD_CHARS;
    NaN or ±Infinity, which JSON cannot spell (PostgreSQL refuses the whole batch)."""
    pending: list[tuple[str, Any]] = [(str(key), value) for key, value in fields.items()]
    while pending:
        where, item = pending.pop(0)
        if isinstance(item, str):
            if "\x00" in item or "\x00" in where:
                return f"{where}: text must not contain the NUL character (0x00)"
            if len(item) > MAX_FIELD_CHARS:
                return f"{where}: {len(item):,} characters, at most {MAX_FIELD_CHARS:,}"
        elif isinstance(item, float) and not math.isfinite(item):
            spelled = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
            return f"{where}: {spelled} is not a number that can be stored"
        elif isinstance(item, dict):
            pending.extend((f"{where}.{key}", value) for key, value in item.items())
        elif isinstance(item, list):
            pending.extend((f"{where}.{index}", value) for index, value in enumerate(item))
    return None


def _one_address(value: str | None) -> str | None:
    """One deliverable-looking address by RFC 5321/5322 syntax (email-validator, no DNS):
    no display name, no list, no quoted local part; internationalised addresses pass.
    Kept in email-validator's normalised form (the domain in lower case)."""
    if value is None:
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise PydanticCustomError("email", str(error)) from None


def _default_when_null(model: type[BaseModel], values: Any) -> Any:
    """A given None for a field that cannot be empty (segment, locale, a consent) means
    its default: clearing a consent withdraws it."""
    if isinstance(values, dict):
        for name, field in model.model_fields.items():
            if values.get(name, "") is None and not field.is_required():
                default = field.get_default()
                if default is not None:
                    values = {**values, name: default}
    return values


class CustomerRow(BaseModel):
    """A customer import row; columns not listed here are kept as attributes."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Identifier
    name: str | None = Field(default=None, max_length=200)
    email: Annotated[str | None, AfterValidator(_one_address)] = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    wechat: str | None = Field(default=None, max_length=100)
    segment: Literal[SEGMENTS] = "consumer"  # type: ignore[valid-type]
    birthday: date | None = None
    locale: str = Field(default="zh-CN", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    timezone: str | None = None
    account_manager: str | None = Field(default=None, max_length=100)
    consent_email: bool = False
    consent_sms: bool = False
    consent_wechat: bool = False
    consent_app: bool = False
    created_at: Moment | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults_for_null(cls, values: Any) -> Any:
        return _default_when_null(cls, values)

    def given(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The columns and the attributes this row gives (None: clear), without the
        defaults of what it does not mention."""
        extra = self.model_extra or {}
        columns = self.model_dump(include=self.model_fields_set - set(extra))
        return columns, dict(extra)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown timezone {value!r}") from None
        return value


# Fields an event type cannot do without; other types need only the common fields.
REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    "purchase": ("amount",),
    "refund": ("amount",),
    "contact": ("channel",),
    "feedback": ("level",),
    "feedback_resolved": ("ref",),
    "survey": ("score",),
}


class EventRow(BaseModel):
    """An event import row; `id` deduplicates, unknown fields are kept as attributes."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=100)
    customer_id: str = Identifier
    type: str = Field(pattern=r"^[a-z][a-z_]{1,39}$")
    occurred_at: Moment
    amount: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    quantity: int | None = Field(default=None, ge=0, le=MAX_INTEGER)
    product: str | None = Field(default=None, max_length=100)
    channel: Literal[CONTACT_CHANNELS] | None = None  # type: ignore[valid-type]
    level: Literal[FEEDBACK_LEVELS] | None = None  # type: ignore[valid-type]
    category: str | None = Field(default=None, max_length=40)
    score: int | None = Field(default=None, ge=0, le=10)
    ref: str | None = Field(default=None, max_length=100)
    text: str | None = Field(default=None, max_length=5_000)

    def missing_fields(self) -> list[str]:
        """Fields this event's type requires but the row left empty."""
        return [name for name in REQUIRED_BY_TYPE.get(self.type, ()) if getattr(self, name) is None]


@dataclass(frozen=True)
class RawRow:
    """One row as read: its first line number and either its fields or why it is unreadable.
    `storable` says the reader already knows `unstorable` finds nothing (it saw no NUL,
    no NaN and no over-long field in the raw line, far cheaper than walking the values)."""

    line: int
    fields: dict[str, Any] | None
    problem: str | None = None
    storable: bool = False


def blank_as_null(fields: dict[str, Any]) -> dict[str, Any]:
    """A row's fields with blank text (an empty CSV cell, `""`) given as None."""
    return {
        name: None if isinstance(value, str) and not value.strip() else value
        for name, value in fields.items()
    }


def describe(error: ValidationError) -> str:
    """Pydantic's errors as one short line: `field: message; field: message`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "row"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def read_rows(path: Path, on_bytes: Callable[[int], None] | None = None) -> Iterator[RawRow]:
    """Rows of a `.csv` or `.jsonl`/`.ndjson` file; `on_bytes` is told how far it has read."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, on_bytes)
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return _jsonl_rows(path, on_bytes)
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .csv or .jsonl)")


def _lines(path: Path, on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    """Raw lines, the byte-order mark of the first one removed."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle):
            if on_bytes is not None:
                on_bytes(len(raw))
            if number == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield raw


def _decoded(raw: bytes) -> str:
    """A line as text; bytes that are not UTF-8 survive as surrogates and are caught later."""
    return raw.decode("utf-8", "surrogateescape")


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _csv_rows(path: Path, on_bytes: Callable[[int], None] | None) -> Iterator[RawRow]:
    """Rows of a CSV file. A field over MAX_FIELD_CHARS rejects its row; reading goes on
    at the next line (an unclosed quote that swallowed the lines after it shows up as
    the rows that follow being rejected, each with its line, not as lost rows)."""
    csv.field_size_limit(MAX_FIELD_CHARS)  # the csv default, whatever else set it to
    reader = csv.reader(map(_decoded, _lines(path, on_bytes)))
    header = next(reader, None)
    if header is None:
        return
    header = [name.strip() for name in header]
    if len(set(header)) != len(header):
        raise ValueError(f"{path}:1: duplicate column names in the header")
    # The reader refuses fields over MAX_FIELD_CHARS and text holds no NaN: NUL is all
    # `unstorable` could still find.
    plain_header = "\x00" not in "".join(header)
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line, start = start, reader.line_num + 1
            if "field limit" in str(error):
                yield RawRow(line, None, f"a field is longer than {MAX_FIELD_CHARS:,} characters")
            else:
                yield RawRow(line, None, f"unreadable CSV: {error}")
            continue
        line, start = start, reader.line_num + 1
        if not record or all(not cell.strip() for cell in record):
            continue
        text = "".join(record)
        if len(record) != len(header):
            yield RawRow(line, None, f"expected {len(header)} columns, found {len(record)}")
        elif _not_utf8(text):
            yield RawRow(line, None, "not valid UTF-8")
        else:
            fields = blank_as_null(dict(zip(header, record, strict=True)))
            yield RawRow(line, fields, storable=plain_header and "\x00" not in text)


def _jsonl_rows(path: Path, on_bytes: Callable[[int], None] | None) -> Iterator[RawRow]:
    """Rows of a JSON Lines file. pydantic-core's parser reads a line several times faster
    than `json.loads` and gives the same values (big integers, NaN and all); a line it
    refuses (bad JSON, bytes that are not UTF-8, a lone surrogate) is read again by
    `json.loads`, which keeps the error messages and the few values only it accepts."""
    for line, raw in enumerate(_lines(path, on_bytes), start=1):
        try:
            value = from_json(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            fields = blank_as_null(value) if _may_hold_blanks(raw) else value
            yield RawRow(line, fields, storable=_plain(raw))
        elif (row := _json_row(line, raw)) is not None:
            yield row


# A JSON string that may be blank: two quotes with nothing between them but ASCII
# whitespace, the separators `str.isspace` counts (0x1C-0x1F) or bytes of non-ASCII
# characters (U+3000 and the other Unicode spaces are blank to `str.strip` too).
_BLANK_STRING = re.compile(rb'"[\s\x1c-\x1f\x80-\xff]*"')


def _may_hold_blanks(raw: bytes) -> bool:
    """Whether a JSON line may hold a blank string, so `blank_as_null` must walk its values:
    most lines have none, and the search over the raw bytes costs a tenth of the walk. A
    backslash may spell whitespace (`"\\t"`), so such a line is always walked."""
    return b"\\" in raw or _BLANK_STRING.search(raw) is not None


def _plain(raw: bytes) -> bool:
    """Whether `unstorable` can find nothing in this line: no NUL (JSON spells it only as
    an escape), no NaN or Infinity, and too short for an over-long field."""
    return (
        len(raw) <= MAX_FIELD_CHARS
        and b"\\u0000" not in raw
        and b"NaN" not in raw
        and b"Infinity" not in raw
    )


def _json_row(line: int, raw: bytes) -> RawRow | None:
    """One line read by `json.loads`; None for a blank line."""
    text = _decoded(raw)
    if not text.strip():
        return None
    if _not_utf8(text):
        return RawRow(line, None, "not valid UTF-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return RawRow(line, None, f"invalid JSON: {error.msg} at column {error.colno}")
    if not isinstance(value, dict):
        return RawRow(line, None, "expected a JSON object")
    return RawRow(line, blank_as_null(value))
