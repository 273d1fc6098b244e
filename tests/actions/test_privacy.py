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
        ("call +86 (138) 8183-6553 now", "call +*********6553 now"),
        ("SMS to 132.0466.5439 failed", "SMS to *******5439 failed"),
        ("0086-138-8183-6553", "***********6553"),
        ("office (010) 6552-1234", "office *******1234"),
        ("retry at 2026-07-01 12:00 from 10.0.12.7", "retry at 2026-07-01 12:00 from 10.0.12.7"),
        ("550 <用户@例子.中国>: no such user", "550 <用***@例***.中国>: no such user"),
        ("to fang@xn--fiqs8s.xn--fiqz9s", "to f***@x***.xn--fiqz9s"),
        ("unknown wxid_k2mf93ab01 (WeChat ID: wang_fang88)", "unknown wxid_*** (WeChat ID: w***)"),
        ("openid oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "openid o***"),
        (
            "wechat sender failed for crash_note.0:c1:once",
            "wechat sender failed for crash_note.0:c1:once",
        ),
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


def test_a_customers_own_values_are_masked_where_no_pattern_finds_them() -> None:
    reply = "400 no follower fang_w88 (王芳)"
    assert mask(reply, ["王芳", "fang_w88", ""]) == "400 no follower f*** (王***)"


def test_the_log_filter_masks_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("rapport.test.privacy")
    handler_filter = MaskingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            try:
                raise LookupError("no route for +86 (138) 8183-6553")
            except LookupError:
                logger.exception("send failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "8183" not in caplog.text and "+*********6553" in caplog.text
