"""A real SMTP server (aiosmtpd) on 127.0.0.1 that faxline sends its mails to."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    # aiosmtpd checks that its server is up by connecting to the port it was given, so it
    # needs a real one rather than 0.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class MailServer:
    """Keeps every mail it accepts; `answer(n)` may refuse the n-th DATA (from 0) with a
    reply such as "451 try later". With `login`, it wants SMTP AUTH with that pair."""

    def __init__(
        self,
        answer: Callable[[int], str] = lambda n: "250 OK",
        login: tuple[str, str] | None = None,
    ) -> None:
        self.answer = answer
        self.mails: list[EmailMessage] = []
        self.tries = 0
        self._changed = threading.Condition()
        server = self

        class Handler:
            async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
                with server._changed:
                    reply = server.answer(server.tries)
                    if login is not None and not session.authenticated:
                        # aiosmtpd warns against requiring AUTH without TLS; refuse here.
                        reply = "530 5.7.0 Authentication required"
                    server.tries += 1
                    if reply.startswith("250"):
                        assert isinstance(envelope.content, bytes)
                        mail = message_from_bytes(envelope.content, policy=policy.default)
                        assert isinstance(mail, EmailMessage)
                        server.mails.append(mail)
                    server._changed.notify_all()
                return reply

        def authenticate(
            smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == login
            )
            return AuthResult(success=ok, handled=False)

        kwargs: dict[str, Any] = {}
        if login is not None:
            kwargs.update(authenticator=authenticate, auth_require_tls=False)
        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()

    def wait_for(self, count: int, timeout: float) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.mails) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {count} mails")
                self._changed.wait(left)
            return list(self.mails)

    def close(self) -> None:
        self._controller.stop()
