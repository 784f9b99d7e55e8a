"""Sending one message: a small protocol, the aiosmtplib relay implementation and a test fake."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from service.platform.settings import Settings


class Sender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class RelayNotConfigured(Exception):
    """TIPLINE_RELAY_HOST is not set."""


class SmtpRelaySender:
    """Hands mail to the configured relay (aiosmtplib). Errors propagate as exception types only."""

    def __init__(self, settings: Settings) -> None:
        if not settings.relay_host:
            raise RelayNotConfigured("no relay configured")
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.relay_host,
            port=s.relay_port,
            start_tls=s.relay_starttls,
            username=s.relay_username or None,
            password=s.relay_password.get_secret_value() if s.relay_password else None,
            timeout=s.relay_timeout_seconds,
        )


class MemorySender:
    """Collects messages (tests)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)
