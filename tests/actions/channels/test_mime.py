"""The MIME writer, checked by parsing its output back with the standard library."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from actions.channels.base import Envelope
from actions.channels.mime import build_message, message_id

DATE = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def envelope(**changes: object) -> Envelope:
    values: dict[str, object] = {
        "key": "care.0:c-001:2026-W48",
        "channel": "email",
        "recipient": "fang@example.cn",
        "subject": "王芳，您的季度服务回访 — 一个很长的主题，足以让编码后的标题折行显示",
        "text": "您好，王芳！\n.以句点开头的一行\n\nBest regards",
        "html": "<p>您好，<b>王芳</b>！</p>",
        "customer_id": "c-001",
        "locale": "zh-CN",
    }
    values.update(changes)
    return Envelope(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("eight_bit", [True, False])
def test_headers_and_parts_read_back_as_written(eight_bit: bool) -> None:
    data = build_message(
        envelope(), "荣和客户服务 <care@example.cn>", date=DATE, eight_bit=eight_bit
    )
    assert data.isascii() is not eight_bit  # 8-bit bodies only when the server takes them
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    message = parse(data)
    assert message["Subject"] == envelope().subject
    assert message["From"].addresses[0].display_name == "荣和客户服务"
    assert message["From"].addresses[0].addr_spec == "care@example.cn"
    assert message["To"] == "fang@example.cn"
    assert message["Message-ID"] == message_id("care.0:c-001:2026-W48")
    assert message["Date"].datetime == DATE
    assert message["Content-Language"] == "zh-CN"
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == envelope().text + "\n"
    assert html.get_content().strip() == envelope().html


def test_text_only_message_is_a_single_part() -> None:
    message = parse(build_message(envelope(html=None, text="Hello\r\nthere\r"), "a@example.com"))
    assert message.get_content_type() == "text/plain"
    assert message["Content-Transfer-Encoding"] == "7bit"
    assert message.get_content().replace("\r\n", "\n") == "Hello\nthere\n"


def test_a_line_too_long_for_smtp_goes_as_base64() -> None:
    text = "长" * 400  # 1,200 octets of UTF-8 on one line
    message = parse(build_message(envelope(html=None, text=text), "a@example.com"))
    assert message["Content-Transfer-Encoding"] == "base64"
    assert message.get_content().rstrip("\n") == text


@pytest.mark.parametrize("field", ["subject", "recipient", "key", "locale"])
def test_a_line_break_in_a_header_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        build_message(envelope(**{field: "x\r\nBcc: someone@example.com"}), "a@example.com")


def test_the_same_key_gives_the_same_bytes() -> None:
    first = build_message(envelope(), "a@example.com", date=DATE)
    assert build_message(envelope(), "a@example.com", date=DATE) == first
    assert build_message(envelope(key="other"), "a@example.com", date=DATE) != first


LINK = "https://rapport.example.com/unsubscribe?customer=c-001&channel=email&token=" + "a" * 32
MAILTO = "mailto:unsubscribe@example.com?subject=unsubscribe&body=https%3A%2F%2Fr.example"


@pytest.mark.parametrize(
    ("uris", "one_click"),
    [((LINK,), True), ((LINK, MAILTO), True), ((MAILTO,), False), (("http://x/u?t=1",), False)],
)
def test_list_unsubscribe_names_each_uri_and_one_click_needs_https(
    uris: tuple[str, ...], one_click: bool
) -> None:
    """RFC 8058 §3.1: the POST header only beside an https URI."""
    message = parse(build_message(envelope(list_unsubscribe=uris), "care@example.cn"))
    assert message["List-Unsubscribe"] == ", ".join(f"<{uri}>" for uri in uris)
    post = message["List-Unsubscribe-Post"]
    assert post == ("List-Unsubscribe=One-Click" if one_click else None)


@pytest.mark.parametrize(
    "uri", [LINK + ">\r\nBcc: x@example.com", LINK + ",x", "https://例子.中国/u"]
)
def test_an_unsubscribe_uri_that_would_break_the_header_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        build_message(envelope(list_unsubscribe=(uri,)), "care@example.cn")
