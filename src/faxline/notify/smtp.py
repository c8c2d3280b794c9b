"""Sending a mail to the configured SMTP server (`FAXLINE_SMTP_URL`), with smtplib."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # plain | starttls | tls
    user: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        """`smtp://`, `smtp+starttls://` or `smtps://`, optionally with `user:password@`."""
        parts = urlsplit(url)
        security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}.get(parts.scheme)
        if security is None or not parts.hostname:
            raise ValueError(f"not an SMTP URL: {parts.scheme}://{parts.hostname or ''}")
        default = 465 if security == "tls" else 587 if security == "starttls" else 25
        return cls(
            parts.hostname,
            parts.port or default,
            security,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )


def send(
    server: SmtpServer,
    msg: EmailMessage,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> None:
    """Hand `msg` to the server; smtplib's errors (and OSError) mean: try again later."""
    context = context or ssl.create_default_context()
    client: smtplib.SMTP
    if server.security == "tls":
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with client:
        if server.security == "starttls":
            client.starttls(context=context)
        if server.user is not None:
            client.login(server.user, server.password or "")
        client.send_message(msg)
