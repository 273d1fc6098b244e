"""Email over SMTP: one MIME message per envelope, sent over a small pool of connections.

`actions.channels.mime.build_message` writes the bytes that are sent (and that
`FileSender` writes to disk for the demo), with a `Message-ID` derived from the
idempotency key.

`SmtpSender` keeps at most `max_connections` SMTP connections and at most that many
transactions in flight: a LIFO queue holds one slot per connection, either an open
connection to reuse or `None` (open one when needed). A connection that fails in any
way is closed and its slot goes back empty, so a broken session is never reused.
Connecting, MAIL FROM and RCPT TO run concurrently on all connections; DATA, where
the server accepts the message, waits for the caller's `Ticket` (see `base`).

Classification follows `actions.channels.base`:

- 5xx to MAIL FROM, RCPT TO or DATA: the server refused *this message* for good, so
  a `Delivery` with `permanent_error` is returned;
- 4xx anywhere, disconnects, refused or reset connections and timeouts: raised as
  `TemporaryFailure`;
- any reply while connecting (greeting, EHLO, STARTTLS, AUTH), even 5xx, is raised as
  `TemporaryFailure` too: it is a problem with the server or our configuration, not
  with the message, and retrying after it is fixed will succeed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Literal

import aiosmtplib
from aiosmtplib.email import parse_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

from actions.channels.base import Delivery, Envelope, TemporaryFailure, Ticket
from actions.channels.mime import build_message, check_headers

TlsMode = Literal["none", "starttls", "tls"]

# A server that answers 421 to MAIL FROM is closing the session (idle or
# per-connection message limits), which says nothing about this message.
_CLOSING = 421


class _Unsendable(Exception):
    """This message can never be sent to this server (found before MAIL FROM)."""


class SmtpSender:
    """Sends email envelopes over SMTP, reusing up to `max_connections` connections.

    A sender belongs to the event loop it is first used on. `close()` quits the idle
    connections; sends that are still waiting for a connection then fail temporarily.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender_address: str,
        username: str | None = None,
        password: str | None = None,
        tls: TlsMode = "none",
        timeout: float = 10.0,
        max_connections: int = 4,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        """`tls`: "none" (plain, never upgraded), "starttls" (required upgrade) or "tls"
        (TLS from the first byte, usually port 465). `timeout` applies to connecting and
        to each SMTP command. `tls_context` replaces the default certificate checks, and
        `local_hostname` the EHLO name (default: this machine's FQDN, looked up once).
        """
        if tls not in ("none", "starttls", "tls"):
            raise ValueError(f"tls must be 'none', 'starttls' or 'tls', not {tls!r}")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if "\r" in sender_address or "\n" in sender_address:
            raise ValueError(f"sender_address contains a line break: {sender_address!r}")
        # The From header keeps any display name; MAIL FROM gets the bare address.
        self._mail_from = parse_address(sender_address)
        self._host = host
        self._port = port
        self._sender_address = sender_address
        self._username = username
        self._password = password
        self._tls = tls
        self._timeout = timeout
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._closed = False
        self._slots: asyncio.LifoQueue[aiosmtplib.SMTP | None] = asyncio.LifoQueue()
        for _ in range(max_connections):
            self._slots.put_nowait(None)

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        """Send one message; see the module docstring for how failures are reported."""
        try:
            recipient = parse_address(envelope.recipient)
            check_headers(envelope, self._sender_address)
        except ValueError as exc:
            return _refused(f"invalid message: {exc}")
        slot = await self._slots.get()
        kept: aiosmtplib.SMTP | None = None
        try:
            if self._closed:
                raise TemporaryFailure("the SMTP sender is closed")
            kept, delivery = await self._deliver(slot, envelope, recipient, ticket)
            return delivery
        finally:
            if kept is not None and self._closed:
                _discard(kept)
                kept = None
            self._slots.put_nowait(kept)

    async def close(self) -> None:
        """Quit the idle connections; connections in use are closed when returned."""
        self._closed = True
        idle: list[aiosmtplib.SMTP] = []
        while not self._slots.empty():
            client = self._slots.get_nowait()
            if client is not None:
                idle.append(client)
        for _ in idle:
            self._slots.put_nowait(None)
        await asyncio.gather(*(_quit(client) for client in idle))

    async def _deliver(
        self,
        client: aiosmtplib.SMTP | None,
        envelope: Envelope,
        recipient: str,
        ticket: Ticket | None,
    ) -> tuple[aiosmtplib.SMTP | None, Delivery]:
        """Run one transaction; returns the connection to keep (None: discarded)."""
        stage = "connect"
        try:
            payload: bytes | None = None
            encoding = "ascii"
            if client is not None and client.is_connected:
                # A pooled connection may have been closed by the server just now;
                # nothing has been sent for this message yet, so one fresh try is safe.
                stage = "sender"
                try:
                    payload, encoding = await self._mail(client, envelope, recipient)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPSenderRefused) as exc:
                    if isinstance(exc, aiosmtplib.SMTPSenderRefused) and exc.code != _CLOSING:
                        raise
                    _discard(client)
                    client = None
            elif client is not None:
                _discard(client)
                client = None
            if client is None:
                stage = "connect"
                client = await self._open()
                stage = "sender"
                payload, encoding = await self._mail(client, envelope, recipient)
            assert payload is not None
            stage = "recipient"
            await client.rcpt(recipient, encoding=encoding)
            stage = "data"
            response = await _data(client, payload, ticket)
            return client, Delivery(reply=str(response))
        except _Unsendable as exc:
            return client, _refused(str(exc))  # nothing was sent: the session is still clean
        except aiosmtplib.SMTPResponseException as exc:
            _discard(client)
            reply = f"{exc.code} {exc.message}"
            if stage != "connect" and 500 <= exc.code < 600:
                return None, _refused(reply, f"{stage} refused: {reply}")
            raise TemporaryFailure(reply) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Disconnects, refused and reset connections, timeouts: all are OSErrors.
            _discard(client)
            raise TemporaryFailure(
                f"{stage} failed on {self._host}:{self._port}: {exc or type(exc).__name__}"
            ) from exc
        except BaseException:
            # Cancelled (or a bug) mid-transaction: the session state is unknown.
            _discard(client)
            raise

    async def _open(self) -> aiosmtplib.SMTP:
        """A new connection, greeted (EHLO, or HELO for old servers), upgraded, logged in."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            local_hostname=self._local_hostname,
            timeout=self._timeout,
            use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls",
            tls_context=self._tls_context,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            if self._username is not None:
                # Not via connect(): when it fails there, aiosmtplib starts a graceful
                # TLS close and drops the transport, so it cannot be aborted here.
                await client.login(self._username, self._password or "")
        except BaseException:
            _discard(client)
            raise
        return client

    async def _mail(
        self, client: aiosmtplib.SMTP, envelope: Envelope, recipient: str
    ) -> tuple[bytes, str]:
        """Start the transaction (MAIL FROM); returns the payload and the address encoding.

        Like `aiosmtplib.SMTP.send_message`, but the message is written for this
        server: 8-bit bodies only if it offers 8BITMIME, UTF-8 addresses only with SMTPUTF8.
        """
        utf8 = not (self._mail_from + recipient).isascii()
        options: list[str] = []
        if utf8:
            if not client.supports_extension("smtputf8"):
                raise _Unsendable("non-ASCII address, but the server does not offer SMTPUTF8")
            options.append("SMTPUTF8")
        eight_bit = client.supports_extension("8bitmime")
        if eight_bit:
            options.append("BODY=8BITMIME")
        try:
            payload = build_message(envelope, self._sender_address, eight_bit=eight_bit)
        except ValueError as exc:  # nothing sent yet: the session stays clean
            raise _Unsendable(f"invalid message: {exc}") from exc
        if client.supports_extension("size"):
            options.insert(0, f"SIZE={len(payload)}")
        encoding = "utf-8" if utf8 else "ascii"
        await client.mail(self._mail_from, options=options, encoding=encoding)
        return payload, encoding


async def _data(client: aiosmtplib.SMTP, payload: bytes, ticket: Ticket | None) -> SMTPResponse:
    """DATA in two steps, so that only the hand-over waits for `ticket`: the DATA
    command and its 354 run concurrently with other connections; the message itself,
    the server's acceptance and the caller's recording then pass one at a time.

    `SMTP.data` does both steps under one call; this is the same exchange on the
    connection's protocol (the connection belongs to this transaction alone).
    """
    if ticket is None:
        return await client.data(payload)
    start = await client.execute_command(b"DATA")
    if start.code != SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    await ticket.enter()
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(PERIOD_REGEX.sub(b"..", normalize_message_line_endings(payload)) + b".\r\n")
    response = await protocol.read_response(timeout=client.timeout)
    if response.code != SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


def _refused(reply: str, error: str | None = None) -> Delivery:
    """A permanent refusal: the message is marked failed and never retried."""
    return Delivery(reply=reply, permanent_error=error or reply)


def _discard(client: aiosmtplib.SMTP | None) -> None:
    """Drop a connection at once: no QUIT, and no TLS close_notify exchange to wait for."""
    if client is None:
        return
    transport = client.transport
    if isinstance(transport, asyncio.WriteTransport):  # the only kind asyncio hands out here
        transport.abort()
    client.close()


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say goodbye politely if the server still listens; close the connection regardless."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        _discard(client)  # after QUIT, the TLS goodbye has nothing left to protect
