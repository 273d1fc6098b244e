"""Masking personal data (email addresses, phone numbers) in text Rapport prints or keeps.

Used on provider replies before they are stored as a message's reason (an SMTP server
often quotes the recipient: `550 <wang.fang@example.cn>: no such user`) and by the
log filter every `rapport` command installs, so logs and run reports never carry an
address in full.
"""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-])[\w.-]*\.([A-Za-z]{2,})\b")
_PHONE = re.compile(r"(?<!\w)(\+?\d[\d\s-]{5,}\d)(?!\w)")


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(1))
    if len(digits) < 9:  # dates and short codes are not phone numbers
        return match.group(0)
    return f"{'+' if match.group(1).startswith('+') else ''}{'*' * (len(digits) - 4)}{digits[-4:]}"


def mask(text: str) -> str:
    """`w***@e***.cn`, `*******5678`: enough to tell records apart, not to contact anyone."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***.{m.group(3)}", text)
    return _PHONE.sub(_mask_phone, text)


class MaskingFilter(logging.Filter):
    """Masks the rendered message of every log record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        return True
