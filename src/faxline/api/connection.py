"""uvicorn's HTTP/1.1 protocol (httptools) with limits on what comes before the app.

uvicorn waits forever for a request's headers and accepts a request line and headers of
any size. Here the request line and headers must arrive within a time limit (else 408),
the request line be at most so long (else 414) and the headers at most so many and so
large (else 431). The body's limits are the app's (`faxline.api.bodies`).
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# After a refusal the connection is half-closed and what the client still sends is read
# and dropped for a while, so that a client that writes before it reads sees the answer
# instead of a reset.
LINGER_S = 2.0
LINGER_BYTES = 4 * 1024 * 1024


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Set the limits with :func:`configure` before uvicorn makes connections."""

    header_timeout_s: float = 10.0
    max_request_line: int = 8192
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._in_headers = False
        self._lingering = False
        self._lingered = 0

    @classmethod
    def configure(
        cls,
        *,
        header_timeout_s: float,
        max_request_line: int,
        max_header_bytes: int,
        max_headers: int,
    ) -> type[LimitedHttpToolsProtocol]:
        """A subclass with these limits (uvicorn makes the protocol from a class)."""
        attrs = {
            "header_timeout_s": header_timeout_s,
            "max_request_line": max_request_line,
            "max_header_bytes": max_header_bytes,
            "max_headers": max_headers,
        }
        return type("ConfiguredHttpToolsProtocol", (cls,), attrs)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._refuse(
                408, f"the request headers did not arrive within {self.header_timeout_s:g} s"
            )

    def _refuse(self, status: int, message: str) -> None:
        code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s"
            % (status, HTTPStatus(status).phrase.encode(), len(body), body)
        )
        self._disarm_header_timer()
        if not self.transport.can_write_eof():  # TLS: no half-close
            self.transport.close()
            return
        self.transport.write_eof()
        self._lingering = True
        self.loop.call_later(LINGER_S, self.transport.close)

    # Protocol interface

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers = True
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        # httptools buffers a header in full before it calls back (and grows it by
        # concatenation), so the bytes of the request line and headers are bounded here,
        # before the parser sees them: at most the room left is fed while in the headers.
        while data and self._in_headers:
            room = self.max_request_line + self.max_header_bytes - self._header_bytes
            if room <= 0:
                self._refuse(
                    431, f"the request headers are larger than {self.max_header_bytes} bytes"
                )
                return
            piece, data = data[:room], data[room:]
            self._header_bytes += len(piece)
            if not self._feed(piece):
                return
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> bool:
        """Parse; False when the connection is done for."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            if isinstance(e.__context__, _Refused):
                self._refuse(e.__context__.status, e.__context__.message)
            else:
                self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return not self.transport.is_closing() and not self._lingering

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.max_request_line:
            raise _Refused(414, f"the request target is longer than {self.max_request_line} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.max_headers:
            raise _Refused(431, f"the request has more than {self.max_headers} headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        self._in_headers = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._in_headers = True
        self._header_bytes = 0
        # uvicorn's keep-alive timer closes an idle connection; this one covers a next
        # request whose headers trickle in.
        if not self.transport.is_closing():
            self._arm_header_timer()
