"""Personal data is masked in provider replies and logs."""

from __future__ import annotations

import logging

import pytest

from actions.privacy import MaskingFilter, mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("550 <wang.fang@example.cn>: no such user", "550 <w***@e***.cn>: no such user"),
        ("call +86 138 1234 5678 now", "call +*********5678 now"),
        ("SMS to 13812345678 failed", "SMS to *******5678 failed"),
        ("retry: attempt 3 failed at 2026-07-01", "retry: attempt 3 failed at 2026-07-01"),
        ("250 2.0.0 Ok: queued as 4F2A1", "250 2.0.0 Ok: queued as 4F2A1"),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_the_log_filter_masks_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("rapport.test.privacy")
    handler_filter = MaskingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("bounced %s", "emma.clark@example.com")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert caplog.records[0].getMessage() == "bounced e***@e***.com"
