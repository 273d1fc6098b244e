"""Wiring delivery from configuration: one sender per message channel."""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from urllib.parse import urlsplit

from actions.channels.base import Sender
from actions.channels.email import SmtpSender
from actions.channels.file import FileSender
from actions.channels.webhook import WebhookSender
from actions.dispatch import DispatchSettings
from engine.facts import MESSAGE_CHANNELS
from rapport.services.settings import Settings
from rapport.services.staff_language import _


def build_senders(settings: Settings) -> dict[str, Sender]:
    """SMTP and webhooks where configured; the outbox folder for everything else."""
    folder = FileSender(settings.outbox_dir, sender_address=settings.smtp_from)
    senders: dict[str, Sender] = {channel: folder for channel in MESSAGE_CHANNELS}
    if settings.smtp_host:
        senders["email"] = SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            sender_address=settings.smtp_from,
            username=settings.smtp_user,
            password=settings.smtp_password,
            tls=settings.smtp_tls,
        )
    for channel, url in (
        ("sms", settings.webhook_sms_url),
        ("wechat", settings.webhook_wechat_url),
        ("app", settings.webhook_app_url),
    ):
        if url:
            senders[channel] = WebhookSender(url, secret=settings.webhook_secret.encode())
    return senders


def dispatch_settings(settings: Settings, worker: str | None = None) -> DispatchSettings:
    """What the dispatcher needs from the configuration; raises `InsecureSecret` when
    the unsubscribe links would be signed with a secret anyone knows."""
    return DispatchSettings(
        worker=worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        company=settings.company(),
        public_url=settings.public_url,
        secret_key=settings.signing_key(),
        unsubscribe_mailto=settings.unsubscribe_mailto,
    )


def public_url_warning(settings: Settings) -> str | None:
    """Why the links in real mail would not work, or None: RAPPORT_PUBLIC_URL on this
    machine, or not https (mailbox providers offer one-click unsubscribe, RFC 8058, only
    for https links).

    Real mail is email handed to an SMTP server elsewhere, or to one that wants a login:
    not the outbox folder, and not the demo's sink (loopback, no login).
    """
    smtp = settings.smtp_host
    if not smtp or (_on_this_machine(smtp) and settings.smtp_user is None):
        return None
    url = settings.public_url
    if _on_this_machine(urlsplit(url).hostname):
        return _(
            "RAPPORT_PUBLIC_URL is {url}, on this machine: the unsubscribe links in the "
            "mail sent cannot reach Rapport; set the public https address of `rapport api`"
        ).format(url=url)
    if urlsplit(url).scheme != "https":
        return _(
            "RAPPORT_PUBLIC_URL is {url}, not https: mailbox providers offer one-click "
            "unsubscribe only for https links"
        ).format(url=url)
    return None


def _on_this_machine(host: str | None) -> bool:
    """`localhost` (RFC 6761) or a loopback address such as 127.0.0.1 or ::1."""
    name = (host or "").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
