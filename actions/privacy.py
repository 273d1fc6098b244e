"""Masking personal data (email addresses, phone numbers, WeChat ids, names) in text
Rapport prints or keeps.

Used on provider replies and errors before they are stored as a message's reason (an
SMTP server often quotes the recipient: `550 <wang.fang@example.cn>: no such user`)
and by the log filter every `rapport` command and every flow run installs, so logs,
run reports and artifacts never carry an address in full.

Two layers. Patterns find what looks like personal data anywhere: email addresses,
internationalised ones too (`用户@例子.中国`); phone numbers in the usual ways of
writing them (`+86 (138) 8183-6553`, `132.0466.5439`, `0086 138 8183 6553`); WeChat
ids where they can be recognised (`wxid_…`, an official account's 28-character
openid, or an id after a `WeChat ID:` label). A WeChat id or a name written on its own
looks like any other word, so where the customer is known their own values are passed
in (`personal`) and masked wherever they appear.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_EMAIL = re.compile(
    r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-])[\w.-]*\.((?:xn--[\w-]+)|[^\W\d_]{2,})\b"
)
# Digits with the separators people write between them: spaces, dots, dashes, brackets.
_PHONE = re.compile(r"(?<![\w+])(\+?\(?\d[\d \t\u00a0().-]{5,}\d)(?!\w)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_WECHAT = re.compile(
    r"\b(wxid_)[\w-]+"  # WeChat's own ids
    r"|\b(o)[A-Za-z0-9_-]{27}\b"  # an official account's openid
    r"|(?i:((?:wechat|weixin|微信)(?:[ _-]?(?:id|号)\s*[:：=]?|\s*[:：=])\s*['\"<]?)"
    r"([A-Za-z])[\w-]{5,19})"  # a labelled id: 6 to 20 characters, a letter first
)


def _mask_phone(match: re.Match[str]) -> str:
    found = match.group(1)
    date = _ISO_DATE.match(found)
    if date:  # a date, then maybe a number: only what follows the date can be one
        return date.group(0) + _PHONE.sub(_mask_phone, found[date.end() :])
    digits = re.sub(r"\D", "", found)
    if len(digits) < 9 or _IPV4.fullmatch(found):  # short codes, versions, addresses
        return found
    return f"{'+' if found.startswith('+') else ''}{'*' * (len(digits) - 4)}{digits[-4:]}"


def _mask_wechat(match: re.Match[str]) -> str:
    if match.group(1):
        return "wxid_***"
    if match.group(2):
        return "o***"
    return f"{match.group(3)}{match.group(4)}***"


def _mask_patterns(text: str) -> str:
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***.{m.group(3)}", text)
    text = _WECHAT.sub(_mask_wechat, text)
    return _PHONE.sub(_mask_phone, text)


def mask(text: str, personal: Iterable[str] = ()) -> str:
    """`w***@e***.cn`, `+*******6553`, `wxid_***`: enough to tell records apart, not to
    contact anyone. Each of the `personal` values (a customer's name, addresses, ids)
    is masked wherever it appears, even where no pattern would recognise it."""
    for value in sorted({v.strip() for v in personal if len(v.strip()) > 1}, key=len, reverse=True):
        masked = _mask_patterns(value)
        text = text.replace(value, masked if masked != value else f"{value[0]}***")
    return _mask_patterns(text)


def error_text(error: BaseException, personal: Iterable[str] = ()) -> str:
    """An exception as one line to store or show: its type and message, masked."""
    message = str(error)
    return mask(f"{type(error).__name__}: {message}" if message else type(error).__name__, personal)


class MaskingFilter(logging.Filter):
    """Masks the rendered message of every log record that passes through a handler,
    and the traceback of one logged with an exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True
