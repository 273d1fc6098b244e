"""A provider for tests that drive dispatch without a network: it accepts every message
and keeps what it was given."""

from __future__ import annotations

from actions.channels.base import Delivery, Envelope, Ticket


class AcceptingSender:
    """Accepts every message (250), in the order given; `sent` holds the envelopes."""

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        if ticket is not None:
            await ticket.enter()
        self.sent.append(envelope)
        return Delivery("250 accepted")

    async def close(self) -> None:
        return None
