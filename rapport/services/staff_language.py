"""The language of what staff read: the report, its artifacts, the command messages
and the rules guide (RAPPORT_STAFF_LOCALE: zh-CN by default, or en).

Strings are marked with `_()` / `ngettext()` from here and translated by the gettext
catalogue `rapport/locale/<locale>/LC_MESSAGES/rapport.po` (English is the source
language: en needs no catalogue). The .po is compiled in memory when first needed
(Babel's `read_po` + `write_mo`): no binary .mo in the repository that could fall
behind its source, at the cost of parsing one small file once per process. Fuzzy
entries are never used. Dates and numbers go through Babel's CLDR data, so they read
as each locale writes them. `make catalogue` re-extracts the marked strings (babel.cfg).
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from rapport.services.settings import STAFF_LOCALES, get_settings

DOMAIN = "rapport"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
SOURCE_LOCALE = "en"  # the language of the msgids: no catalogue

# Set by `use_locale` (e.g. `rules reference --locale zh-CN`); otherwise the setting.
_chosen: ContextVar[str | None] = ContextVar("staff_locale", default=None)


def babel_name(locale: str) -> str:
    """`zh-CN` (as configured, BCP 47) as Babel and gettext spell it: `zh_CN`."""
    return locale.replace("-", "_")


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / babel_name(locale) / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of `locale` (English: the msgids themselves)."""
    if locale == SOURCE_LOCALE:
        return gettext.NullTranslations()
    with catalogue_path(locale).open("rb") as source:
        catalogue = read_po(source, locale=babel_name(locale), domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def current_locale() -> str:
    """The staff language in force: `use_locale`'s, else RAPPORT_STAFF_LOCALE. When the
    settings are invalid (a failure being reported), RAPPORT_STAFF_LOCALE as it is set, if
    it names a staff locale, else the default."""
    chosen = _chosen.get()
    if chosen:
        return chosen
    try:
        return get_settings().staff_locale
    except ValueError:  # pydantic's ValidationError: the configuration error is reported
        named = os.environ.get("RAPPORT_STAFF_LOCALE", "").strip()
        return named if named in STAFF_LOCALES else STAFF_LOCALES[0]


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Staff output in `locale` within the block, whatever the setting says."""
    if locale not in STAFF_LOCALES:
        raise ValueError(f"unknown staff locale {locale!r} (one of {', '.join(STAFF_LOCALES)})")
    token = _chosen.set(locale)
    try:
        yield
    finally:
        _chosen.reset(token)


def _(message: str) -> str:
    """`message` (an English msgid) in the staff language."""
    return translations(current_locale()).gettext(message)


def N_(message: str) -> str:
    """Marks a constant for the catalogue; it is translated where it is shown (`_(text)`)."""
    return message


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for `count`, in the staff language."""
    return translations(current_locale()).ngettext(singular, plural, count)


def format_number(value: float, decimals: int = 0, sign: bool = False) -> str:
    """`12,345.6`, with `+` in front of positives when `sign` (CLDR digits and grouping)."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    if sign:
        pattern = f"+{pattern};-{pattern}"
    return format_decimal(value, pattern, locale=babel_name(current_locale()))


def format_share(value: float, decimals: int = 1) -> str:
    """A share of 1 as a percentage: `12.3%`."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
    return format_percent(value, pattern, locale=babel_name(current_locale()))


def format_day(day: date) -> str:
    """`Jul 1, 2026` / `2026年7月1日`."""
    return format_date(day, "medium", locale=babel_name(current_locale()))


def format_short_day(day: date) -> str:
    """`Jul 1` / `7月1日`: a day within a period already dated, e.g. on a chart's axis."""
    return format_skeleton("MMMd", day, locale=babel_name(current_locale()))


def format_moment(moment: datetime, zone: str) -> str:
    """A moment as staff read it in `zone`: `Dec 4, 2026 8:00 AM` / `2026年12月4日 08:00`."""
    local = moment.astimezone(ZoneInfo(zone))
    locale = babel_name(current_locale())
    return f"{format_day(local.date())} {format_time(local, 'short', locale=locale)}"


def extract_vocabulary(
    fileobj: Any, keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extractor (babel.cfg) yielding the rule vocabulary's descriptions, which
    are data rather than `_()` calls: the rules guide translates them as msgids."""
    from engine.reference import vocabulary_texts

    for text in vocabulary_texts():
        yield 0, "_", text, []
