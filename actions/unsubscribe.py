"""Signed unsubscribe links: one per customer and channel, verifiable without a lookup."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def unsubscribe_token(secret: str, customer_id: str, channel: str) -> str:
    message = f"unsubscribe\0{customer_id}\0{channel}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def unsubscribe_url(base_url: str, secret: str, customer_id: str, channel: str) -> str:
    """`<base>/unsubscribe?customer=…&channel=…&token=…`."""
    query = urlencode(
        {
            "customer": customer_id,
            "channel": channel,
            "token": unsubscribe_token(secret, customer_id, channel),
        }
    )
    return f"{base_url.rstrip('/')}/unsubscribe?{query}"


def verify_unsubscribe(secret: str, customer_id: str, channel: str, token: str) -> bool:
    return hmac.compare_digest(unsubscribe_token(secret, customer_id, channel), token)
