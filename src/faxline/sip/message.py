"""SIP requests and responses (RFC 3261 7): ``parse(bytes)`` and ``bytes(message)``.

Why an own parser rather than a library: of the Python SIP stacks checked (DESIGN.md 3),
aiosipua parses well but would have to be wrapped around its dialog/transaction model that
lacks Record-Route copying and retransmission timers, sippy brings its own event loop, and
pjsua2 is a C stack that refuses T.38. A strict parser that fits the sans-I/O design and
raises one error type (:class:`SipParseError`) on every malformed input is a few hundred
lines, so faxline owns it.

The parser checks what a UA relies on before looking at a message: start line, header
syntax, the mandatory headers (Via, From, To, Call-ID, CSeq) and their structure, CSeq
method against the request method, and Content-Length against the datagram (a body shorter
than Content-Length is an error; bytes beyond it are dropped, RFC 3261 18.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError
from .headers import CSeq, Headers, Via
from .uri import Address, SipUri, is_token

SIP_VERSION = "SIP/2.0"

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) (.*)")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,9}")


class _Message:
    """What requests and responses share: headers, body and typed header accessors."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        """The Call-ID value."""
        return _require(self.headers, "Call-ID").strip()

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        return CSeq.parse(_require(self.headers, "CSeq"))

    @property
    def vias(self) -> list[Via]:
        """Every Via, topmost first."""
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        """The topmost Via."""
        values = self.headers.get_all("Via")
        if not values:
            raise SipParseError("missing Via header")
        return Via.parse(values[0])

    @property
    def from_(self) -> Address:
        """The From address."""
        return Address.parse(_require(self.headers, "From"))

    @property
    def to(self) -> Address:
        """The To address."""
        return Address.parse(_require(self.headers, "To"))

    @property
    def contacts(self) -> list[Address]:
        """Every Contact address (``*`` is not an address and is rejected)."""
        return [Address.parse(v) for v in self.headers.get_all("Contact")]

    @property
    def record_route(self) -> list[Address]:
        """Record-Route entries, topmost first."""
        return [Address.parse(v) for v in self.headers.get_all("Record-Route")]

    @property
    def route(self) -> list[Address]:
        """Route entries, topmost first."""
        return [Address.parse(v) for v in self.headers.get_all("Route")]

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lowercased, without parameters."""
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value is not None else None

    def _header_bytes(self, start_line: str) -> bytes:
        lines = [start_line]
        has_length = False
        for name, value in self.headers:
            if name.lower() in ("content-length", "l"):
                value = str(len(self.body))
                has_length = True
            lines.append(f"{name}: {value}")
        if not has_length:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class SipRequest(_Message):
    """A SIP request. ``bytes(request)`` always writes a correct Content-Length."""

    method: str
    uri: SipUri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return self._header_bytes(f"{self.method} {self.uri} {SIP_VERSION}") + self.body


@dataclass
class SipResponse(_Message):
    """A SIP response."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return self._header_bytes(f"{SIP_VERSION} {self.status} {self.reason}") + self.body


SipMessage = SipRequest | SipResponse


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message from a datagram.

    Raises :class:`SipParseError` (and nothing else) if the bytes are not a valid message.
    Leading CRLFs (keep-alives, RFC 5626) are skipped; a datagram holding only them is an
    error too, which the shell can ignore silently.
    """
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty datagram")
    match = _HEADER_END.search(data)
    if match is None:
        raise SipParseError("no blank line after the headers")
    try:
        head = data[: match.start()].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"headers are not UTF-8: {exc}") from exc
    rest = data[match.end() :]
    lines = re.split(r"\r?\n", head)
    start_line = lines[0]
    headers = _parse_header_lines(lines[1:])
    for name in MANDATORY_HEADERS:
        if headers.get(name) is None:
            raise SipParseError(f"missing {name} header")
    body = _take_body(headers, rest)
    message: SipMessage
    if start_line.startswith("SIP/"):
        status_match = _STATUS_LINE.fullmatch(start_line)
        if status_match is None:
            raise SipParseError(f"bad status line {start_line!r}")
        message = SipResponse(
            status=int(status_match.group(1)),
            reason=status_match.group(2),
            headers=headers,
            body=body,
        )
    else:
        parts = start_line.split(" ")
        if len(parts) != 3 or parts[2] != SIP_VERSION:
            raise SipParseError(f"bad request line {start_line!r}")
        method, uri_text, _ = parts
        if not is_token(method):
            raise SipParseError(f"bad method {method!r}")
        message = SipRequest(method=method, uri=SipUri.parse(uri_text), headers=headers, body=body)
    _check_mandatory(message)
    return message


def _parse_header_lines(lines: list[str]) -> Headers:
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SipParseError("continuation line before the first header")
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    headers = Headers()
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header line without ':': {line[:40]!r}")
        name = name.rstrip(" \t")
        if not is_token(name):
            raise SipParseError(f"bad header name {name[:40]!r}")
        if not value.strip(" \t").isprintable():
            raise SipParseError(f"control character in {name} header")
        headers.add(name, value.strip(" \t"))
    return headers


def _take_body(headers: Headers, rest: bytes) -> bytes:
    lengths = {v.strip() for v in headers.get_lines("Content-Length")}
    if not lengths:
        return rest
    if len(lengths) > 1:
        raise SipParseError("conflicting Content-Length headers")
    (text,) = lengths
    if _CONTENT_LENGTH.fullmatch(text) is None:
        raise SipParseError(f"bad Content-Length {text!r}")
    length = int(text)
    if length > len(rest):
        raise SipParseError(f"body truncated: Content-Length {length}, {len(rest)} bytes present")
    return rest[:length]


def _check_mandatory(message: SipMessage) -> None:
    if not message.call_id or not message.call_id.isprintable() or " " in message.call_id:
        raise SipParseError("bad Call-ID")
    _ = message.vias
    _ = message.from_, message.to
    # Addresses the core will route on are checked here, at the edge, so that a message
    # that parsed cannot fail later inside a transaction or dialog.
    _ = message.record_route, message.route
    if [v.strip() for v in message.headers.get_all("Contact")] != ["*"]:
        _ = message.contacts
    cseq = message.cseq
    if isinstance(message, SipRequest):
        if cseq.method != message.method:
            raise SipParseError(f"CSeq method {cseq.method} does not match {message.method}")
        max_forwards = message.headers.get("Max-Forwards")
        if max_forwards is not None and not (
            max_forwards.isascii() and max_forwards.isdigit() and int(max_forwards) <= 255
        ):
            raise SipParseError(f"bad Max-Forwards {max_forwards!r}")


def _require(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SipParseError(f"missing {name} header")
    return value


def parse_request(data: bytes) -> SipRequest:
    """Parse bytes that must hold a request."""
    message = parse_message(data)
    if not isinstance(message, SipRequest):
        raise SipParseError("expected a request, got a response")
    return message


def parse_response(data: bytes) -> SipResponse:
    """Parse bytes that must hold a response."""
    message = parse_message(data)
    if not isinstance(message, SipResponse):
        raise SipParseError("expected a response, got a request")
    return message


# Responses that create a dialog carry the request's Record-Route (RFC 3261 12.1.1).
_DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: Address | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: list[tuple[str, str]] | None = None,
) -> SipResponse:
    """Build a response to ``request`` (RFC 3261 8.2.6).

    Copies Via (all, in order), From, To, Call-ID and CSeq; adds ``to_tag`` to To unless
    the request's To already has one (or the status is 100, which never carries one);
    copies Record-Route for 1xx/2xx answers to dialog-creating requests.
    """
    headers = Headers()
    for value in request.headers.get_lines("Via"):
        headers.add("Via", value)
    headers.add("From", _require(request.headers, "From"))
    to = request.to
    if to_tag is not None and to.tag is None and status != 100:
        headers.add("To", str(to.with_tag(to_tag)))
    else:
        headers.add("To", _require(request.headers, "To"))
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", str(request.cseq))
    if 100 < status < 300 and request.method in _DIALOG_METHODS:
        for value in request.headers.get_lines("Record-Route"):
            headers.add("Record-Route", value)
    if contact is not None:
        headers.add("Contact", str(contact))
    for name, value in extra_headers or []:
        headers.add(name, value)
    if body:
        headers.add("Content-Type", content_type or "application/sdp")
    return SipResponse(
        status=status,
        reason=reason if reason is not None else REASON_PHRASES.get(status, "Unknown"),
        headers=headers,
        body=body,
    )
