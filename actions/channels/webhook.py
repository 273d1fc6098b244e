"""SMS, WeChat and app push through a signed JSON webhook.

Each envelope is POSTed as a JSON object (UTF-8, exactly the bytes that are signed):

    {"key", "channel", "recipient", "subject", "text", "customer_id", "locale"}

with these headers:

- `Idempotency-Key`: the message's key, so the receiver can drop a retried delivery
  (non-ASCII keys are percent-encoded as UTF-8; the body's "key" is the original);
- `X-Rapport-Timestamp`: Unix seconds when the request was signed;
- `X-Rapport-Signature`: `sha256=` + hex HMAC-SHA256 over `f"{timestamp}.{body}"`.

A receiver checks the last two with `verify_signature` on the raw request body.

2xx is accepted; 429, 5xx, redirects, connection errors and timeouts are raised as
`TemporaryFailure`; any other 4xx is a permanent refusal of this message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

import httpx

from actions.channels.base import Delivery, Envelope, TemporaryFailure, Ticket

# Visible ASCII that may stay as-is in a percent-encoded header value.
_HEADER_SAFE = "!#$&'()*+,-./:;<=>?@[]^_`{|}~"


def payload(envelope: Envelope) -> dict[str, Any]:
    """The JSON object sent for `envelope` (also what `FileSender` writes for the demo)."""
    return {
        "key": envelope.key,
        "channel": envelope.channel,
        "recipient": envelope.recipient,
        "subject": envelope.subject,
        "text": envelope.text,
        "customer_id": envelope.customer_id,
        "locale": envelope.locale,
    }


def encode_payload(envelope: Envelope) -> bytes:
    """The request body: compact UTF-8 JSON, with non-ASCII text kept readable."""
    return json.dumps(payload(envelope), ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: bytes, timestamp: str | int, body: bytes) -> str:
    """The `X-Rapport-Signature` value: `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str | int,
    body: bytes,
    header: str,
    *,
    tolerance: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether `header` is the signature of `timestamp` and the raw `body` under `secret`.

    The comparison takes the same time wherever the first difference is. With
    `tolerance` (seconds), a timestamp further than that from `now` (default: the
    current time) is also rejected, which stops old requests from being replayed.
    """
    try:
        expected = sign(secret, timestamp, body)
    except UnicodeEncodeError:
        return False
    valid = hmac.compare_digest(expected.encode("ascii"), header.encode("utf-8", "replace"))
    if not valid or tolerance is None:
        return valid
    try:
        sent_at = int(str(timestamp))
    except ValueError:
        return False
    current = time.time() if now is None else now
    return abs(current - sent_at) <= tolerance


def header_key(key: str) -> str:
    """`key` as an `Idempotency-Key` header value: as-is when it is visible ASCII."""
    if key.isascii() and key.isprintable():
        return key
    return quote(key, safe=_HEADER_SAFE)


class WebhookSender:
    """POSTs envelopes to one webhook URL, signed with `secret`, over one pooled client."""

    def __init__(
        self,
        url: str,
        *,
        secret: bytes,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """Without `client`, the sender makes one and closes it in `close()`; a client
        passed in belongs to the caller. `timeout` applies to each request either way."""
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        """POST one envelope; see the module docstring for how statuses are classified."""
        body = encode_payload(envelope)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": header_key(envelope.key),
            "X-Rapport-Timestamp": timestamp,
            "X-Rapport-Signature": sign(self._secret, timestamp, body),
        }
        if ticket is not None:
            await ticket.enter()  # HTTP has no step before the hand-over to overlap
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.RequestError as exc:
            # Refused or reset connections, timeouts, broken responses.
            raise TemporaryFailure(f"POST {self._url} failed: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        reply = f"{status} {response.text[:200]}".rstrip()
        if 200 <= status < 300:
            return Delivery(reply=reply)
        if 400 <= status < 500 and status != 429:
            return Delivery(reply=reply, permanent_error=f"webhook refused the message: {reply}")
        raise TemporaryFailure(reply)

    async def close(self) -> None:
        """Close the HTTP client if this sender created it."""
        if self._owns_client:
            await self._client.aclose()
