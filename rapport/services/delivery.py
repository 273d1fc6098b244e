"""Wiring delivery from configuration: one sender per message channel."""

from __future__ import annotations

import os
import socket
import uuid

from actions.channels.base import Sender
from actions.channels.email import SmtpSender
from actions.channels.file import FileSender
from actions.channels.webhook import WebhookSender
from actions.dispatch import DispatchSettings
from engine.facts import MESSAGE_CHANNELS
from rapport.services.settings import Settings


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
    return DispatchSettings(
        worker=worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        company=settings.company(),
        public_url=settings.public_url,
        secret_key=settings.secret_key,
    )
