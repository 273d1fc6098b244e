"""Real servers on 127.0.0.1 for the channel tests: SMTP (aiosmtpd) and HTTP.

Ports come from sockets bound here, never guessed: `reserve_port()` binds a socket
without listening, so connections to it are refused until a server is started on
that very socket. That makes "server down, then up on the same port" race-free.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import BaseThreadedController
from aiosmtpd.smtp import SMTP, Envelope, Session

LOOPBACK = "127.0.0.1"


def reserve_port() -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on a free port, not listening (connections refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that completes the TCP handshake but never says or answers anything."""
    sock = reserve_port()
    sock.listen(8)
    try:
        yield port_of(sock)
    finally:
        sock.close()


# --- SMTP ---------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        """The message as a mailbox would store it: line endings back to "\\n"."""
        local = self.raw.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(local, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpScript:
    """What the test SMTP server records, and how it misbehaves when told to.

    The handler runs on the server's thread; everything here is guarded by `lock`.
    """

    received: list[Received] = field(default_factory=list)
    sessions: int = 0  # EHLO/HELO greetings, i.e. client connections
    defer_data: int = 0  # answer the next N DATA commands with 451
    reject_data: int = 0  # answer the next N DATA commands with 554
    drop_data: int = 0  # close the connection on the next N DATA commands
    closing_mail: int = 0  # answer the next N MAIL FROM with 421 (server closing)
    unknown_users: set[str] = field(default_factory=set)  # RCPT TO answered with 550
    recorded: int = 0  # raised by a test when the client has recorded a delivery
    unrecorded: list[int] = field(default_factory=list)  # at each acceptance: received - recorded
    gate: threading.Event | None = None  # when set up, DATA waits until it is set
    transports: list[asyncio.BaseTransport] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hang_up_all(self, server: SmtpServer) -> None:
        """Close every client connection from the server side, as an idle timeout would."""
        done = threading.Event()

        def hang_up() -> None:
            with self.lock:
                for transport in self.transports:
                    transport.close()
            done.set()

        server.loop.call_soon_threadsafe(hang_up)
        assert done.wait(5)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # the 5-argument hook must set this itself
        with self.lock:
            self.sessions += 1
            assert server.transport is not None
            self.transports.append(server.transport)
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            if self.closing_mail:
                self.closing_mail -= 1
                return "421 too many messages on this connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.unknown_users:
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.gate is not None:
            self.gate.wait(60)  # holds the whole server, on purpose
        with self.lock:
            if self.drop_data:
                self.drop_data -= 1
                assert server.transport is not None
                server.transport.close()  # the client is waiting for the reply to "."
                return "250 never seen"
            if self.defer_data:
                self.defer_data -= 1
                return "451 try later"
            if self.reject_data:
                self.reject_data -= 1
                return "554 message refused"
            assert envelope.mail_from is not None and envelope.original_content is not None
            self.unrecorded.append(len(self.received) - self.recorded)
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    list(envelope.mail_options),
                    bytes(envelope.original_content),
                )
            )
        return "250 Message accepted for delivery"


class SmtpServer(BaseThreadedController):
    """aiosmtpd's threaded controller, serving on a socket we bound (127.0.0.1 only)."""

    def __init__(
        self,
        script: SmtpScript,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None = None,
        **smtp_options: Any,
    ) -> None:
        super().__init__(
            script, ssl_context=ssl_context, server_hostname="smtp.loopback", **smtp_options
        )
        self.sock = sock
        self.port = port_of(sock)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self.sock, ssl=self.ssl_context)

    def _trigger_server(self) -> None:
        # The controller opens one connection to make the server build its SMTP
        # instance; it reads the greeting only, so it never reaches `sessions`.
        with socket.create_connection((LOOPBACK, self.port), timeout=1.0) as raw:
            if self.ssl_context is None:
                raw.recv(1024)
                return
            client = ssl.create_default_context()
            client.check_hostname = False
            client.verify_mode = ssl.CERT_NONE
            with client.wrap_socket(raw) as wrapped:
                wrapped.recv(1024)


# --- HTTP ---------------------------------------------------------------------------


@dataclass
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpScript:
    """Requests received, and the statuses to answer with (200 once the list is empty)."""

    statuses: list[tuple[int, str]] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: HttpRequest) -> tuple[int, str]:
        with self.lock:
            self.requests.append(request)
            return self.statuses.pop(0) if self.statuses else (200, '{"ok":true}')


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    server: _HttpServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = HttpRequest(
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            self.rfile.read(length),
            (self.client_address[0], int(self.client_address[1])),
        )
        status, text = self.server.script.answer(request)
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: HttpScript) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.script = script


@contextmanager
def http_server(script: HttpScript) -> Iterator[str]:
    """Serve `script` on 127.0.0.1 in a thread; yields the base URL."""
    server = _HttpServer(script)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
