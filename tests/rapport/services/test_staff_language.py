"""The staff catalogue: complete, in step with the code, and the formats of each locale."""

from __future__ import annotations

import ast
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from engine.reference import vocabulary_texts
from rapport.services.settings import STAFF_LOCALES, Settings
from rapport.services.staff_language import (
    _,
    catalogue_path,
    current_locale,
    format_day,
    format_moment,
    format_number,
    format_share,
    format_short_day,
    ngettext,
    use_locale,
)

ROOT = Path(__file__).resolve().parents[3]
TRANSLATED = [locale for locale in STAFF_LOCALES if locale != "en"]
FIELD = re.compile(r"\{(\w*)[^{}]*\}")


def catalogue(locale: str):  # noqa: ANN201 - babel's Catalog has no stubs
    with catalogue_path(locale).open("rb") as source:
        return read_po(source, locale=locale.replace("-", "_"))


def extracted_ids() -> set[str]:
    """What `make catalogue` would extract now (babel.cfg, the N_ keyword included)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {"_": None, "N_": None, "ngettext": (1, 2)}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_message_is_translated_and_none_is_fuzzy(locale: str) -> None:
    entries = [m for m in catalogue(locale) if m.id]
    untranslated = [m.id for m in entries if not all(m.string if m.pluralizable else [m.string])]
    fuzzy = [m.id for m in entries if m.fuzzy]
    assert not untranslated, f"untranslated in {catalogue_path(locale)}: {untranslated}"
    assert not fuzzy, f"fuzzy (never used) in {catalogue_path(locale)}: {fuzzy}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_every_placeholder(locale: str) -> None:
    """`{count}` in the msgid must be in the msgstr, and nothing else: `.format` would
    raise on a stray field and silently drop a missing one."""
    wrong = []
    for m in catalogue(locale):
        if not m.id:
            continue
        source = m.id[0] if m.pluralizable else m.id
        strings = m.string if m.pluralizable else (m.string,)
        if any(set(FIELD.findall(s)) != set(FIELD.findall(source)) for s in strings):
            wrong.append(source)
    assert not wrong


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_catalogue_is_in_step_with_the_code(locale: str) -> None:
    """Extraction finds no message the catalogue lacks, and the catalogue keeps none
    the code no longer has: run `make catalogue` after changing a marked string."""
    in_code = extracted_ids()
    in_catalogue = {m.id[0] if m.pluralizable else m.id for m in catalogue(locale) if m.id}
    assert not in_code - in_catalogue, f"new, run `make catalogue`: {in_code - in_catalogue}"
    assert not in_catalogue - in_code, f"obsolete: {in_catalogue - in_code}"


def test_no_marked_string_hides_inside_an_f_string() -> None:
    """Babel's extractor does not look inside f-strings: `f"{_('x')}"` would never reach
    the catalogue (and the sync test above could not tell)."""
    hidden = []
    for folder in ("rapport", "flows", "engine"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.JoinedStr):
                    continue
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Call)
                        and isinstance(inner.func, ast.Name)
                        and inner.func.id in {"_", "N_", "ngettext"}
                        and inner.args
                        and isinstance(inner.args[0], ast.Constant)
                    ):
                        hidden.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert hidden == []


def test_every_vocabulary_description_is_a_translated_message() -> None:
    """The rules guide's descriptions, listed one by one when a translation is missing."""
    with use_locale("zh-CN"):
        missing = [text for text in vocabulary_texts() if _(text) == text]
    assert missing == []


def test_the_chinese_catalogue_answers_in_chinese() -> None:
    with use_locale("zh-CN"):
        assert _("Retention") == "留存率"
        assert _("Win-back rate") == "挽回率"
        assert _("NPS") == "净推荐值"
        assert ngettext("{count} open task, due times in {zone}", "", 3) == (
            "{count} 项未关闭任务，截止时间为 {zone}"
        )
    assert _("Retention") == "Retention"  # the session runs in en (tests/conftest.py)


def test_the_locale_comes_from_the_setting_unless_a_block_chooses() -> None:
    assert Settings().staff_locale == "en"  # RAPPORT_STAFF_LOCALE=en in tests/conftest.py
    assert Settings.model_fields["staff_locale"].default == "zh-CN"
    assert current_locale() == "en"
    with use_locale("zh-CN"):
        assert current_locale() == "zh-CN"
    assert current_locale() == "en"
    with pytest.raises(ValueError, match="unknown staff locale 'fr'"), use_locale("fr"):
        pass


def test_numbers_and_dates_as_each_locale_writes_them() -> None:
    moment = datetime(2026, 6, 30, 10, 0, tzinfo=UTC)
    with use_locale("en"):
        assert format_number(12345.678, 1) == "12,345.7"
        assert format_number(3, sign=True) == "+3"
        assert format_number(-2.5, 2, sign=True) == "-2.50"
        assert format_share(0.1234) == "12.3%"
        assert format_day(date(2026, 7, 1)) == "Jul 1, 2026"
        assert format_short_day(date(2026, 7, 1)) == "Jul 1"
        assert format_moment(moment, "Asia/Shanghai") == "Jun 30, 2026 6:00\u202fPM"
    with use_locale("zh-CN"):
        assert format_number(12345.678, 1) == "12,345.7"
        assert format_share(0.1234) == "12.3%"
        assert format_day(date(2026, 7, 1)) == "2026年7月1日"
        assert format_short_day(date(2026, 7, 1)) == "7月1日"
        assert format_moment(moment, "Asia/Shanghai") == "2026年6月30日 18:00"
        assert format_moment(moment, "UTC") == "2026年6月30日 10:00"
