"""SIP header fields: an ordered, case-insensitive container plus Via and CSeq values.

Header lines are stored as received (name spelling and value text), so a message that was
parsed serialises to the same bytes; lookups go through the canonical long name, so ``v``
and ``Via`` are the same header (RFC 3261 7.3.3 compact forms).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import SipParseError
from .uri import Params, format_params, is_token, parse_host_port, parse_params, split_outside

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
}

# Spellings that str.title() gets wrong.
_SPECIAL_CASE = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
}

# Headers whose values are comma-separated lists (RFC 3261 7.3.1). The authentication
# headers are deliberately absent: their parameters are separated by commas too.
LIST_HEADERS = frozenset(
    {
        "Via",
        "Route",
        "Record-Route",
        "Contact",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Encoding",
        "Allow-Events",
        "Path",
    }
)


def canonical_name(name: str) -> str:
    """Return the canonical long spelling of a header name (``v`` -> ``Via``)."""
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _SPECIAL_CASE.get(lower) or "-".join(p.capitalize() for p in lower.split("-"))


class Headers:
    """An ordered multi-map of header lines with case-insensitive, compact-aware lookup."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items or []:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        if not is_token(name):
            raise SipParseError(f"bad header name {name!r}")
        self._items.append((name, value))

    def get(self, name: str) -> str | None:
        """Return the first line's value for ``name``, or ``None``."""
        key = canonical_name(name)
        for item_name, value in self._items:
            if canonical_name(item_name) == key:
                return value
        return None

    def get_lines(self, name: str) -> list[str]:
        """Return the value of every line named ``name``, in order, without splitting."""
        key = canonical_name(name)
        return [v for n, v in self._items if canonical_name(n) == key]

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name``; list headers are split on top-level commas."""
        lines = self.get_lines(name)
        if canonical_name(name) not in LIST_HEADERS:
            return lines
        values: list[str] = []
        for line in lines:
            for part in split_outside(line, ","):
                part = part.strip()
                if not part:
                    raise SipParseError(f"empty element in {name} list")
                values.append(part)
        return values

    def set(self, name: str, value: str) -> None:
        """Replace all lines of ``name`` by one, at the first one's position (or append)."""
        key = canonical_name(name)
        for index, (item_name, _) in enumerate(self._items):
            if canonical_name(item_name) == key:
                self._items[index] = (item_name, value)
                self._items = [
                    item
                    for i, item in enumerate(self._items)
                    if i <= index or canonical_name(item[0]) != key
                ]
                return
        self.add(name, value)

    def set_all(self, name: str, values: list[str]) -> None:
        """Replace all lines of ``name`` by one line per value, where the first one was."""
        if not is_token(name):
            raise SipParseError(f"bad header name {name!r}")
        key = canonical_name(name)
        positions = [i for i, (n, _) in enumerate(self._items) if canonical_name(n) == key]
        index = positions[0] if positions else len(self._items)
        spelling = self._items[index][0] if positions else name
        self.remove(name)
        self._items[index:index] = [(spelling, value) for value in values]

    def remove(self, name: str) -> None:
        """Remove every line of ``name``."""
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if canonical_name(n) != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        """Return an independent copy."""
        return Headers(list(self._items))


_VIA_PROTOCOL = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)", re.IGNORECASE)

BRANCH_MAGIC = "z9hG4bK"


@dataclass
class Via:
    """One Via header value: ``SIP/2.0/UDP host:port;branch=...``."""

    host: str
    port: int | None = None
    transport: str = "UDP"
    params: Params = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse a single Via value; raise :class:`SipParseError` if it is malformed."""
        match = _VIA_PROTOCOL.match(text.strip())
        if match is None:
            raise SipParseError(f"bad Via protocol in {text!r}")
        rest = text.strip()[match.end() :]
        if not rest[:1].isspace():
            raise SipParseError(f"missing sent-by in Via {text!r}")
        sent_by, semi, param_text = rest.strip().partition(";")
        host, port = parse_host_port(sent_by.strip(), "Via")
        params = parse_params(param_text, "Via") if semi else {}
        return cls(host=host, port=port, transport=match.group(1).upper(), params=params)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter, if any."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        """``(host, port)`` of sent-by, with the default port filled in."""
        return self.host.lower(), self.port if self.port is not None else 5060


@dataclass(frozen=True)
class CSeq:
    """A CSeq value: sequence number and method."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse ``"314159 INVITE"``; the number must be below 2**31 (RFC 3261 8.1.1.5)."""
        parts = text.split()
        if len(parts) != 2:
            raise SipParseError(f"bad CSeq {text!r}")
        number, method = parts
        if not (number.isascii() and number.isdigit()) or len(number) > 10:
            raise SipParseError(f"bad CSeq number {number!r}")
        seq = int(number)
        if seq >= 2**31:
            raise SipParseError(f"CSeq number {seq} out of range")
        if not is_token(method):
            raise SipParseError(f"bad CSeq method {method!r}")
        return cls(seq, method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
