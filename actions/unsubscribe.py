"""Signed unsubscribe links: one per customer and channel, verifiable without a lookup."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode


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


def unsubscribe_mailto(mailbox: str, link: str) -> str:
    """The mailto: way to the same unsubscribe (RFC 2369): a mail to `mailbox` whose
    body is the signed `link`, so whoever reads that mailbox can act on it at once."""
    return f"mailto:{mailbox}?subject=unsubscribe&body={quote(link, safe='')}"


def verify_unsubscribe(secret: str, customer_id: str, channel: str, token: str) -> bool:
    return hmac.compare_digest(unsubscribe_token(secret, customer_id, channel), token)
