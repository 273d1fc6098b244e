"""Channel adapters against real servers on 127.0.0.1: SMTP (aiosmtpd), HTTP, files.

Each test drives its sender with `asyncio.run`; the servers run on their own threads.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import json
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import aiosmtplib
import httpx
import pytest

from actions.channels.base import Delivery, Envelope, Sender, TemporaryFailure, Ticket, Turnstile
from actions.channels.email import SmtpSender
from actions.channels.file import FileSender, safe_key
from actions.channels.mime import build_message, message_id
from actions.channels.webhook import WebhookSender, header_key, verify_signature
from tests.loopback import (
    LOOPBACK,
    HttpScript,
    SmtpScript,
    SmtpServer,
    http_server,
    port_of,
    reserve_port,
    silent_server,
)

T = TypeVar("T")

KEY = "weekly_insight.0:C1:every:604800s:2931"
SUBJECT = "王芳，您本周的专属洞察 — Rapport"
TEXT = "您好，王芳！\n本周您的账户有三项新的洞察。\n"
HTML = "<p>您好，<b>王芳</b>！</p><p>本周您的账户有三项新的洞察。</p>"
SECRET = b"webhook-secret"


def envelope(key: str = KEY, **changes: Any) -> Envelope:
    base = Envelope(
        key=key,
        channel="email",
        recipient="fang@example.cn",
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        customer_id="C1",
        locale="zh-CN",
    )
    return replace(base, **changes)


def run(sender: Sender, work: Callable[[Sender], Awaitable[T]]) -> T:
    """Run `work(sender)` on a fresh event loop, closing the sender afterwards."""

    async def main() -> T:
        try:
            return await work(sender)
        finally:
            await sender.close()

    return asyncio.run(main())


# --- SMTP ---------------------------------------------------------------------------


class Ticketed:
    """Sends as the dispatcher does: each message with a ticket through one turnstile,
    released once the send is over (DATA then runs in two steps)."""

    def __init__(self, inner: SmtpSender) -> None:
        self.inner = inner
        self.turnstile = Turnstile()

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        ticket = self.turnstile.ticket()
        try:
            return await self.inner.send(envelope, ticket)
        finally:
            ticket.release()

    async def close(self) -> None:
        await self.inner.close()


class Untracked:
    """Drops the ticket: sends without waiting for the turnstile."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    async def send(self, envelope: Envelope, ticket: Ticket | None = None) -> Delivery:
        return await self.inner.send(envelope)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture(params=[False, True], ids=["one-step-data", "ticketed-data"])
def ticketed(request: pytest.FixtureRequest) -> bool:
    """Run a test with plain sends and with sends through a turnstile."""
    return bool(request.param)


def smtp_sender(port: int, *, ticketed: bool = False, **options: Any) -> Sender:
    options.setdefault("timeout", 2.0)
    sender = SmtpSender(
        LOOPBACK,
        port,
        sender_address="rapport@example.com",
        local_hostname="client.loopback",
        **options,
    )
    return Ticketed(sender) if ticketed else sender


def test_message_id_is_derived_from_the_key() -> None:
    expected = f"<{hashlib.sha256(KEY.encode()).hexdigest()[:32]}@rapport>"
    assert message_id(KEY) == message_id(KEY) == expected
    assert message_id(KEY + "x") != expected
    built = email.message_from_bytes(build_message(envelope(), "a@example.com"))
    assert built["Message-ID"] == expected


@pytest.mark.parametrize("eight_bit", [True, False], ids=["8bitmime", "7bit-only"])
def test_smtp_delivers_a_mime_message(eight_bit: bool) -> None:
    script = SmtpScript()
    # decode_data=True makes aiosmtpd stop offering 8BITMIME, so the body is re-encoded.
    server = SmtpServer(script, reserve_port(), decode_data=not eight_bit)
    server.start()
    try:
        delivery = run(smtp_sender(server.port), lambda s: s.send(envelope()))
    finally:
        server.stop()

    assert delivery.accepted and delivery.reply == "250 Message accepted for delivery"
    [received] = script.received
    assert received.mail_from == "rapport@example.com"
    assert received.rcpt_tos == ["fang@example.cn"]
    assert ("BODY=8BITMIME" in received.mail_options) is eight_bit
    assert received.raw.isascii() is not eight_bit

    message = received.message
    assert message["Subject"] == SUBJECT
    assert message["From"] == "rapport@example.com" and message["To"] == "fang@example.cn"
    assert message["Message-ID"] == message_id(KEY)
    assert message["X-Rapport-Key"] == KEY
    assert message["Content-Language"] == "zh-CN"
    date = email.utils.parsedate_to_datetime(message["Date"])
    assert abs(datetime.now(UTC) - date) < timedelta(minutes=5)
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert plain.get_content() == TEXT
    assert html.get_content().strip() == HTML


def test_smtp_text_only_message_has_no_html_part(smtp: tuple[SmtpScript, SmtpServer]) -> None:
    script, server = smtp
    run(smtp_sender(server.port), lambda s: s.send(envelope(html=None)))
    message = script.received[0].message
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == TEXT


def test_smtp_4xx_is_temporary_and_a_retry_succeeds(
    smtp: tuple[SmtpScript, SmtpServer], ticketed: bool
) -> None:
    script, server = smtp
    script.defer_data = 1

    async def work(sender: Sender) -> tuple[str, Delivery]:
        with pytest.raises(TemporaryFailure) as failure:
            await sender.send(envelope())
        return str(failure.value), await sender.send(envelope())

    error, retried = run(smtp_sender(server.port, ticketed=ticketed), work)
    assert error == "451 try later"
    assert retried.accepted
    assert [r.message["Message-ID"] for r in script.received] == [message_id(KEY)]


@pytest.mark.parametrize(
    ("setup", "reply", "stage"),
    [
        (lambda s: s.unknown_users.add("fang@example.cn"), "550 no such user", "recipient"),
        (lambda s: setattr(s, "reject_data", 1), "554 message refused", "data"),
    ],
    ids=["recipient", "data"],
)
def test_smtp_5xx_is_a_permanent_failure(
    smtp: tuple[SmtpScript, SmtpServer],
    setup: Callable[[SmtpScript], None],
    reply: str,
    stage: str,
    ticketed: bool,
) -> None:
    script, server = smtp
    setup(script)
    delivery = run(smtp_sender(server.port, ticketed=ticketed), lambda s: s.send(envelope()))
    assert not delivery.accepted
    assert delivery.reply == reply
    assert delivery.permanent_error == f"{stage} refused: {reply}"
    assert script.received == []


def test_smtp_connection_dropped_mid_message_is_temporary(
    smtp: tuple[SmtpScript, SmtpServer], ticketed: bool
) -> None:
    script, server = smtp
    script.drop_data = 1

    async def work(sender: Sender) -> tuple[str, Delivery]:
        with pytest.raises(TemporaryFailure) as failure:
            await sender.send(envelope())
        return str(failure.value), await sender.send(envelope())

    error, retried = run(smtp_sender(server.port, ticketed=ticketed), work)
    assert error.startswith("data failed") and "Unexpected EOF" in error
    assert retried.accepted and len(script.received) == 1
    assert script.sessions == 2  # the broken connection was not reused


@pytest.mark.parametrize("through_turnstile", [True, False])
def test_a_turnstile_lets_one_message_at_a_time_past_acceptance(
    smtp: tuple[SmtpScript, SmtpServer], through_turnstile: bool
) -> None:
    """The crash guarantee: the server never accepts a message while another accepted
    one is still unrecorded, although all four connections work at once."""
    script, server = smtp
    turnstile = Turnstile()

    async def deliver(sender: Sender, n: int) -> None:
        ticket = turnstile.ticket()
        try:
            delivery = await sender.send(envelope(key=f"{KEY}.{n}"), ticket)
            assert delivery.accepted
            await asyncio.sleep(0.005)  # recording the outcome takes a while
            with script.lock:
                script.recorded += 1
        finally:
            ticket.release()

    async def work(sender: Sender) -> None:
        if not through_turnstile:
            sender = Untracked(sender)
        await asyncio.gather(*(deliver(sender, n) for n in range(12)))

    run(smtp_sender(server.port, max_connections=4), work)
    assert len(script.received) == 12 and script.sessions == 4
    if through_turnstile:
        assert script.unrecorded == [0] * 12
    else:  # the test can tell: without it, acceptances overtake recordings
        assert max(script.unrecorded) > 0


def test_smtp_server_down_is_temporary_until_it_starts() -> None:
    sock = reserve_port()  # bound, not listening: connections are refused
    script = SmtpScript()
    server = SmtpServer(script, sock)

    async def work(sender: Sender) -> tuple[TemporaryFailure, Delivery]:
        with pytest.raises(TemporaryFailure) as failure:
            await sender.send(envelope())
        await asyncio.to_thread(server.start)  # on the same port
        return failure.value, await sender.send(envelope())

    try:
        failure, delivery = run(smtp_sender(port_of(sock)), work)
    finally:
        server.stop(no_assert=True)
        sock.close()
    error, cause = str(failure), failure.__cause__
    assert error.startswith("connect failed on 127.0.0.1")
    assert isinstance(cause, aiosmtplib.SMTPConnectError)
    assert isinstance(cause.__cause__, ConnectionRefusedError)
    assert delivery.accepted and len(script.received) == 1


def test_smtp_server_that_never_greets_times_out() -> None:
    with silent_server() as port, pytest.raises(TemporaryFailure, match="Timed out"):
        run(smtp_sender(port, timeout=0.2), lambda s: s.send(envelope()))


def test_smtp_reuses_at_most_max_connections(smtp: tuple[SmtpScript, SmtpServer]) -> None:
    script, server = smtp

    async def work(sender: Sender) -> list[Delivery]:
        return await asyncio.gather(*(sender.send(envelope(f"k{i}")) for i in range(20)))

    deliveries = run(smtp_sender(server.port, max_connections=4), work)
    assert all(d.accepted for d in deliveries)
    assert sorted(r.message["X-Rapport-Key"] for r in script.received) == sorted(
        f"k{i}" for i in range(20)
    )
    assert 1 <= script.sessions <= 4


def test_smtp_sequential_sends_share_one_connection(smtp: tuple[SmtpScript, SmtpServer]) -> None:
    script, server = smtp

    async def work(sender: Sender) -> None:
        for i in range(5):
            await sender.send(envelope(f"k{i}"))

    run(smtp_sender(server.port, max_connections=4), work)
    assert len(script.received) == 5 and script.sessions == 1


def test_smtp_reconnects_when_the_server_closes_a_pooled_connection(
    smtp: tuple[SmtpScript, SmtpServer],
) -> None:
    script, server = smtp

    async def work(sender: Sender) -> list[Delivery]:
        first = await sender.send(envelope("k1"))
        script.hang_up_all(server)  # an idle timeout on the server side
        second = await sender.send(envelope("k2"))
        script.closing_mail = 1  # "421" to MAIL FROM: a per-connection message limit
        third = await sender.send(envelope("k3"))
        return [first, second, third]

    deliveries = run(smtp_sender(server.port), work)
    assert all(d.accepted for d in deliveries)
    assert [r.message["X-Rapport-Key"] for r in script.received] == ["k1", "k2", "k3"]
    assert script.sessions == 3


def test_smtp_421_on_a_fresh_connection_is_temporary(smtp: tuple[SmtpScript, SmtpServer]) -> None:
    script, server = smtp
    script.closing_mail = 1
    with pytest.raises(TemporaryFailure, match="^421 too many messages"):
        run(smtp_sender(server.port), lambda s: s.send(envelope()))


def test_smtp_unsendable_addresses_are_permanent(smtp: tuple[SmtpScript, SmtpServer]) -> None:
    script, server = smtp

    async def work(sender: Sender) -> list[Delivery]:
        return [
            await sender.send(envelope(recipient="fang@example.cn>\r\nRCPT TO:<x@y>")),
            await sender.send(envelope(subject="two\r\nBcc: everyone@example.com")),
        ]

    for delivery in run(smtp_sender(server.port), work):
        assert not delivery.accepted and delivery.reply.startswith("invalid message")
    assert script.received == [] and script.sessions == 0


def test_smtp_sender_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="tls"):
        SmtpSender(LOOPBACK, 25, sender_address="a@b.c", tls="ssl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_connections"):
        SmtpSender(LOOPBACK, 25, sender_address="a@b.c", max_connections=0)
    with pytest.raises(ValueError):
        SmtpSender(LOOPBACK, 25, sender_address="a@b.c\r\nDATA")


# --- SMTP over TLS ------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file)."""
    pytest.importorskip("cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rapport test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def accept_rapport(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(data, LoginPassword) and data == (b"rapport", b"s3cret")
    # handled=False makes aiosmtpd answer 535 itself; the default (True) answers nothing.
    return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_smtp_over_tls_with_login(certificate: tuple[Path, Path], mode: str) -> None:
    cert_file, key_file = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    client_context = ssl.create_default_context(cafile=str(cert_file))
    script = SmtpScript()
    tls_options: dict[str, Any] = (
        {"tls_context": server_context, "require_starttls": True}
        if mode == "starttls"
        # Over implicit TLS aiosmtpd only offers AUTH with auth_require_tls=False: it
        # counts a connection as secure only after STARTTLS.
        else {"ssl_context": server_context, "auth_require_tls": False}
    )
    server = SmtpServer(
        script, reserve_port(), authenticator=accept_rapport, auth_required=True, **tls_options
    )
    server.start()

    def sender(password: str) -> SmtpSender:
        return smtp_sender(
            server.port,
            tls=mode,
            tls_context=client_context,
            username="rapport",
            password=password,
        )

    try:
        delivery = run(sender("s3cret"), lambda s: s.send(envelope()))
        with pytest.raises(TemporaryFailure, match="^535"):  # configuration, not message
            run(sender("wrong"), lambda s: s.send(envelope()))
    finally:
        server.stop()
    assert delivery.accepted and script.received[0].message["Subject"] == SUBJECT


# --- Webhook ------------------------------------------------------------------------


def sms(key: str = KEY) -> Envelope:
    return envelope(key, channel="sms", recipient="+8613800000000", html=None)


def test_webhook_posts_signed_json() -> None:
    script = HttpScript()
    with http_server(script) as url:
        sender = WebhookSender(url + "/hook", secret=SECRET)
        delivery = run(sender, lambda s: s.send(sms()))

    assert delivery.accepted and delivery.reply == '200 {"ok":true}'
    [request] = script.requests
    assert request.path == "/hook"
    assert request.headers["idempotency-key"] == KEY
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.json() == {
        "key": KEY,
        "channel": "sms",
        "recipient": "+8613800000000",
        "subject": SUBJECT,
        "text": TEXT,
        "customer_id": "C1",
        "locale": "zh-CN",
    }
    timestamp = request.headers["x-rapport-timestamp"]
    signature = request.headers["x-rapport-signature"]
    assert signature.startswith("sha256=") and timestamp.isdigit()
    assert verify_signature(SECRET, timestamp, request.body, signature)
    tampered = request.body.replace(b"+8613800000000", b"+8613900000000")
    assert tampered != request.body
    assert not verify_signature(SECRET, timestamp, tampered, signature)
    assert not verify_signature(SECRET, str(int(timestamp) + 1), request.body, signature)
    assert not verify_signature(b"other secret", timestamp, request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body, "sha256=王")
    sent_at = int(timestamp)
    assert verify_signature(
        SECRET, timestamp, request.body, signature, tolerance=300, now=sent_at + 299
    )
    assert not verify_signature(
        SECRET, timestamp, request.body, signature, tolerance=300, now=sent_at + 301
    )


@pytest.mark.parametrize("status", [429, 500, 503])
def test_webhook_429_and_5xx_are_temporary(status: int) -> None:
    script = HttpScript(statuses=[(status, "busy")])
    with http_server(script) as url, pytest.raises(TemporaryFailure, match=f"^{status} busy$"):
        run(WebhookSender(url, secret=SECRET), lambda s: s.send(sms()))
    assert len(script.requests) == 1


def test_webhook_other_4xx_is_permanent_with_the_body() -> None:
    body = "unknown recipient +8613800000000 " + "x" * 300
    script = HttpScript(statuses=[(400, body)])
    with http_server(script) as url:
        delivery = run(WebhookSender(url, secret=SECRET), lambda s: s.send(sms()))
    assert not delivery.accepted
    assert delivery.reply == f"400 {body[:200]}"
    assert delivery.permanent_error is not None and "400 unknown recipient" in (
        delivery.permanent_error
    )


def test_webhook_connection_refused_is_temporary() -> None:
    sock = reserve_port()
    try:
        with pytest.raises(TemporaryFailure, match="ConnectError"):
            url = f"http://{LOOPBACK}:{port_of(sock)}/hook"
            run(WebhookSender(url, secret=SECRET), lambda s: s.send(sms()))
    finally:
        sock.close()


def test_webhook_timeout_is_temporary() -> None:
    with silent_server() as port, pytest.raises(TemporaryFailure, match="ReadTimeout"):
        url = f"http://{LOOPBACK}:{port}/hook"
        run(WebhookSender(url, secret=SECRET, timeout=0.2), lambda s: s.send(sms()))


def test_webhook_reuses_one_connection_and_closes_only_its_own_client() -> None:
    script = HttpScript()
    with http_server(script) as url:
        own = WebhookSender(url, secret=SECRET)

        async def five(sender: Sender) -> None:
            for i in range(5):
                await sender.send(sms(f"k{i}"))

        run(own, five)
        assert own._client.is_closed

        async def borrowed() -> httpx.AsyncClient:
            async with httpx.AsyncClient() as client:
                sender = WebhookSender(url, secret=SECRET, client=client)
                await sender.send(sms("k5"))
                await sender.close()
                assert not client.is_closed
                await client.post(url, content=b"{}")
                return client

        asyncio.run(borrowed())
    assert [r.headers["idempotency-key"] for r in script.requests[:6]] == [
        f"k{i}" for i in range(6)
    ]
    assert len({r.peer for r in script.requests[:5]}) == 1


def test_webhook_non_ascii_key_is_percent_encoded_in_the_header() -> None:
    key = "welcome.0:王芳:once"
    script = HttpScript()
    with http_server(script) as url:
        run(WebhookSender(url, secret=SECRET), lambda s: s.send(sms(key)))
    [request] = script.requests
    assert (
        request.headers["idempotency-key"] == header_key(key) == "welcome.0:%E7%8E%8B%E8%8A%B3:once"
    )
    assert request.json()["key"] == key


# --- Files --------------------------------------------------------------------------


def test_file_sender_writes_eml_and_json(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"

    async def work(sender: Sender) -> list[Delivery]:
        return [await sender.send(envelope()), await sender.send(sms())]

    eml, sms_file = run(FileSender(directory), work)
    stem = "weekly_insight.0_C1_every_604800s_2931"
    assert eml.accepted and eml.reply == f"written {stem}.eml"
    assert sms_file.reply == f"written {stem}.json"
    assert sorted(p.name for p in directory.iterdir()) == [f"{stem}.eml", f"{stem}.json"]

    message = email.message_from_bytes(
        (directory / f"{stem}.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == message_id(KEY)
    assert message["Subject"] == SUBJECT and message["X-Rapport-Key"] == KEY
    plain = message.get_body(("plain",))
    assert isinstance(plain, EmailMessage) and plain.get_content() == TEXT

    written = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
    assert written["key"] == KEY and written["text"] == TEXT and written["channel"] == "sms"


def test_file_sender_same_key_twice_leaves_one_file(tmp_path: Path) -> None:
    async def work(sender: Sender) -> None:
        await sender.send(envelope(subject="first"))
        await sender.send(envelope(subject="second"))

    run(FileSender(tmp_path), work)
    [path] = list(tmp_path.iterdir())  # no temporary files left behind either
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "second"


def test_file_sender_keys_cannot_escape_the_directory(tmp_path: Path) -> None:
    assert safe_key("../../etc/passwd") == ".._.._etc_passwd"
    assert safe_key("a b/王.c-d_e") == "a_b__.c-d_e"
    run(FileSender(tmp_path / "out"), lambda s: s.send(sms("../../escape")))
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".._.._escape.json"]


def test_file_sender_unwritable_directory_is_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(TemporaryFailure, match="could not write"):
        run(FileSender(blocker), lambda s: s.send(sms()))


def test_loopback_ports_refuse_until_served() -> None:
    sock = reserve_port()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, port_of(sock)), timeout=1).close()
    finally:
        sock.close()
