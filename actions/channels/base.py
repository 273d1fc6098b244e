"""What every channel adapter takes and promises.

Contract: `send` returns a `Delivery` when the provider accepted the message, and a
`Delivery` with `permanent_error` set when it refused it for good (SMTP 5xx, HTTP 4xx
other than 429): that message is marked failed and never retried. A temporary problem
(SMTP 4xx, connection errors, timeouts, HTTP 429 and 5xx) is *raised* as
`TemporaryFailure`, and the dispatcher retries it with backoff. Every delivery carries
the message's idempotency key, so a retry after a crash is recognisable downstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Envelope:
    key: str  # the outbox idempotency key
    channel: str  # email, sms, wechat or app
    recipient: str  # email address, phone number, WeChat id or app user id
    subject: str
    text: str
    html: str | None
    customer_id: str
    locale: str


@dataclass(frozen=True)
class Delivery:
    reply: str  # what the provider said, for the audit trail
    permanent_error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.permanent_error is None


class TemporaryFailure(Exception):
    """The provider could not take the message now; retrying later may succeed."""


class Sender(Protocol):
    async def send(self, envelope: Envelope) -> Delivery: ...

    async def close(self) -> None: ...
