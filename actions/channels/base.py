"""What every channel adapter takes and promises.

Contract: `send` returns a `Delivery` when the provider accepted the message, and a
`Delivery` with `permanent_error` set when it refused it for good (SMTP 5xx, HTTP 4xx
other than 429): that message is marked failed and never retried. A temporary problem
(SMTP 4xx, connection errors, timeouts, HTTP 429 and 5xx) is *raised* as
`TemporaryFailure`, and the dispatcher retries it with backoff. Every delivery carries
the message's idempotency key, so a retry after a crash is recognisable downstream.
"""

from __future__ import annotations

import asyncio
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
    # Email's List-Unsubscribe URIs (RFC 2369), signed link first; none for service mail.
    list_unsubscribe: tuple[str, ...] = ()


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
    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        """Deliver `envelope`; with a `ticket`, enter it right before the hand-over."""
        ...

    async def close(self) -> None: ...


class Turnstile:
    """Lets one message at a time past the point where a provider accepts it, and stays
    shut until the dispatcher has recorded that message's outcome.

    A dispatcher killed at any moment then leaves at most one message accepted but not
    recorded (the one repeat a crash may cause), while everything before that point
    (connecting, rendering, SMTP's MAIL FROM and RCPT TO) still runs concurrently.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    def ticket(self) -> Ticket:
        return Ticket(self._lock)


class Ticket:
    """One message's pass through a `Turnstile`: the sender calls `enter()` right before
    the step that hands the message over; the dispatcher calls `release()` once the
    outcome is recorded (harmless if the sender never entered)."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock
        self._held = False

    async def enter(self) -> None:
        await self._lock.acquire()
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()
