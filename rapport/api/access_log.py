"""uvicorn's logging for `rapport api`, with unsubscribe tokens hidden from the access log.

uvicorn logs each request's path with its query string, and a signed unsubscribe link
carries its token there (it must: mailbox providers POST to the link as written, RFC
8058). Anyone reading the log could unsubscribe that customer, so a filter on the
`uvicorn.access` logger replaces every `token=` value with `***` before any handler
sees the record. Everything else is uvicorn's default configuration.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

_TOKEN = re.compile(r"([?&]token=)[^&#\s]*", re.IGNORECASE)


class HideTokens(logging.Filter):
    """Rewrites the text arguments of a log record (the access log's path is one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN.sub(r"\1***", record.msg)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with `HideTokens` on its access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_tokens"] = {"()": HideTokens}
    config["loggers"]["uvicorn.access"]["filters"] = ["hide_tokens"]
    return config
