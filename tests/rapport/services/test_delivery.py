"""Which configurations put links that cannot work into real mail."""

from __future__ import annotations

import pytest

from rapport.services.delivery import public_url_warning
from rapport.services.settings import Settings


@pytest.mark.parametrize(
    ("smtp", "user", "public_url", "warning"),
    [
        (None, None, "http://127.0.0.1:8000", None),  # the outbox folder
        ("127.0.0.1", None, "http://127.0.0.1:8000", None),  # the demo's sink
        ("smtp.example.com", None, "http://127.0.0.1:8000", "on this machine"),
        ("127.0.0.1", "relay", "http://localhost:8000", "on this machine"),  # a local relay
        ("smtp.example.com", None, "http://[::1]:8000/", "on this machine"),
        ("smtp.example.com", None, "http://rapport.example.com", "not https"),
        ("smtp.example.com", None, "https://rapport.example.com", None),
    ],
)
def test_a_link_real_mail_cannot_use_is_a_warning(
    smtp: str | None, user: str | None, public_url: str, warning: str | None
) -> None:
    settings = Settings(smtp_host=smtp, smtp_user=user, public_url=public_url)
    said = public_url_warning(settings)
    assert (said is None) if warning is None else (said is not None and warning in said)


@pytest.mark.parametrize("mailbox", ["a b@example.com", "x@example.com?cc=y@example.com", "x@"])
def test_the_unsubscribe_mailbox_is_a_plain_address(mailbox: str) -> None:
    with pytest.raises(ValueError, match="not a plain address"):
        Settings(unsubscribe_mailto=mailbox)
