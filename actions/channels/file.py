"""The demo's channel: every message becomes a file instead of leaving the machine.

Email is written as `<safe-key>.eml`, the same MIME message `SmtpSender` would send;
other channels as `<safe-key>.json`, the same object `WebhookSender` would post. The
safe key is the idempotency key with every character outside `[A-Za-z0-9._-]`
replaced by `_`, so delivering a key again overwrites its file instead of adding one.
Files are written to a temporary file first and renamed into place, so a reader never
sees half a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from actions.channels.base import Delivery, Envelope, TemporaryFailure, Ticket
from actions.channels.mime import build_message
from actions.channels.webhook import payload

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_key(key: str) -> str:
    """`key` usable as a file name: characters outside `[A-Za-z0-9._-]` become `_`."""
    return _UNSAFE.sub("_", key)


class FileSender:
    """Writes each envelope to a file in `directory` (created when first needed)."""

    def __init__(self, directory: Path, *, sender_address: str = "rapport@localhost") -> None:
        """`sender_address` is the From of the .eml files."""
        self._directory = Path(directory)
        self._sender_address = sender_address

    def path_for(self, envelope: Envelope) -> Path:
        """Where `envelope` is written."""
        suffix = ".eml" if envelope.channel == "email" else ".json"
        return self._directory / (safe_key(envelope.key) + suffix)

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        """Write the message; a full disk or a missing permission fails temporarily."""
        path = self.path_for(envelope)
        try:
            if envelope.channel == "email":
                # Local files use this system's line ending, as mail tools expect.
                data = build_message(envelope, self._sender_address).replace(b"\r\n", b"\n")
            else:
                text = json.dumps(payload(envelope), ensure_ascii=False, indent=2) + "\n"
                data = text.encode("utf-8")
        except ValueError as exc:
            error = f"invalid message: {exc}"
            return Delivery(reply=error, permanent_error=error)
        if ticket is not None:
            await ticket.enter()
        try:
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as exc:
            raise TemporaryFailure(f"could not write {path}: {exc}") from exc
        return Delivery(reply=f"written {path.name}")

    async def close(self) -> None:
        """Nothing to release."""


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
