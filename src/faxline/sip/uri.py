"""SIP URIs (RFC 3261 19.1) and name-addr / addr-spec header values (RFC 3261 20.10).

Parsing is strict about structure (scheme, host, port, parameter syntax) and lenient about
character sets inside user parts and values, which are kept escaped exactly as received so
that ``str(SipUri.parse(s)) == s`` for canonical input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError

Params = dict[str, str | None]

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9.])?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_PARAM_VALUE = re.compile(r'[^;?&=<>"\s,]+|"(?:[^"\\]|\\.)*"|\[[0-9A-Fa-f:.]+\]')


def is_token(text: str) -> bool:
    """Return whether ``text`` is a non-empty RFC 3261 ``token``."""
    return _TOKEN.fullmatch(text) is not None


def split_outside(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` where it is not inside quotes or ``<...>``.

    Raises :class:`SipParseError` on an unterminated quoted string or angle bracket.
    """
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_quotes:
            if char == "\\":
                i += 1
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            if in_angle:
                raise SipParseError(f"nested '<' in {text!r}")
            in_angle = True
        elif char == ">":
            if not in_angle:
                raise SipParseError(f"unbalanced '>' in {text!r}")
            in_angle = False
        elif char == separator and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quotes:
        raise SipParseError(f"unterminated quoted string in {text!r}")
    if in_angle:
        raise SipParseError(f"unterminated '<' in {text!r}")
    parts.append(text[start:])
    return parts


def parse_params(text: str, context: str) -> Params:
    """Parse ``;name=value;flag`` (without the leading ``;``) into an ordered dict.

    Names are lowercased (they are case-insensitive); values are kept as written.
    """
    params: Params = {}
    if not text.strip():
        return params
    for item in split_outside(text, ";"):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not is_token(name):
            raise SipParseError(f"bad parameter name {name!r} in {context}")
        if eq:
            value = value.strip()
            if _PARAM_VALUE.fullmatch(value) is None:
                raise SipParseError(f"bad value for parameter {name!r} in {context}")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: Params) -> str:
    """Render parameters as ``;name=value;flag`` (empty string when there are none)."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def parse_host_port(text: str, context: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (host may be a bracketed IPv6 reference)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {context}")
        host, rest = text[: end + 1], text[end + 1 :]
        if _IPV6.fullmatch(host) is None:
            raise SipParseError(f"bad IPv6 reference {host!r} in {context}")
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        if _HOSTNAME.fullmatch(host) is None:
            raise SipParseError(f"bad host {host!r} in {context}")
    if not rest:
        return host, None
    if not rest.startswith(":"):
        raise SipParseError(f"junk after host in {context}")
    port_text = rest[1:]
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise SipParseError(f"bad port {port_text!r} in {context}")
    port = int(port_text)
    if port > 65535:
        raise SipParseError(f"port {port} out of range in {context}")
    return host, port


@dataclass
class SipUri:
    """A ``sip:`` or ``sips:`` URI.

    ``user`` holds the userinfo before ``@`` (password included, still %-escaped);
    ``params`` holds URI parameters such as ``transport`` and ``lr``; ``headers`` the raw
    text after ``?`` (rarely used, kept for round-trips).
    """

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: Params = field(default_factory=dict)
    headers: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP URI; raise :class:`SipParseError` if it is malformed."""
        scheme, colon, rest = text.partition(":")
        scheme_l = scheme.lower()
        if not colon or scheme_l not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI: {text!r}")
        rest, qmark, headers = rest.partition("?")
        user: str | None = None
        if "@" in rest:
            user, _, rest = rest.rpartition("@")
            if not user or any(c in user for c in ' \t<>"') or not user.isprintable():
                raise SipParseError(f"bad user part in {text!r}")
        hostport, semi, param_text = rest.partition(";")
        host, port = parse_host_port(hostport, repr(text))
        params = parse_params(param_text, repr(text)) if semi else {}
        if semi and not params:
            raise SipParseError(f"empty parameter in {text!r}")
        if qmark and not headers:
            raise SipParseError(f"empty headers part in {text!r}")
        if qmark and any(c in headers for c in ' \t<>"'):
            raise SipParseError(f"bad headers part in {text!r}")
        return cls(
            host=host,
            user=user,
            port=port,
            scheme=scheme_l,
            params=params,
            headers=headers if qmark else None,
        )

    def __str__(self) -> str:
        text = f"{self.scheme}:"
        if self.user is not None:
            text += f"{self.user}@"
        text += self.host
        if self.port is not None:
            text += f":{self.port}"
        text += format_params(self.params)
        if self.headers is not None:
            text += f"?{self.headers}"
        return text

    @property
    def lr(self) -> bool:
        """Whether the URI carries the ``lr`` (loose routing) parameter."""
        return "lr" in self.params

    @property
    def transport(self) -> str:
        """The ``transport`` parameter, lowercased; ``udp`` when absent."""
        value = self.params.get("transport")
        return value.lower() if value else "udp"

    def host_port(self, default_port: int = 5060) -> tuple[str, int]:
        """Return ``(host, port)`` for sending, with the IPv6 brackets removed."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return host, self.port if self.port is not None else default_port


_DISPLAY_TOKENS = re.compile(r"[A-Za-z0-9.!%*_+`'~\- \t]*")


@dataclass
class Address:
    """A From/To/Contact/Route value: optional display name, URI and header parameters.

    ``params`` are header parameters (``tag``, ``expires``, ...), not URI parameters.
    """

    uri: SipUri
    display_name: str | None = None
    params: Params = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse a name-addr (``"Bob" <sip:b@h>;tag=1``) or addr-spec (``sip:b@h;tag=1``).

        In the addr-spec form every ``;`` parameter is a header parameter (RFC 3261 20.10).
        """
        text = text.strip()
        if not text:
            raise SipParseError("empty address")
        display: str | None = None
        if "<" in text or text.startswith('"'):
            rest = text
            if rest.startswith('"'):
                end = _closing_quote(rest)
                display = re.sub(r"\\(.)", r"\1", rest[1:end])
                rest = rest[end + 1 :].lstrip()
                if not rest.startswith("<"):
                    raise SipParseError(f"expected '<' after display name in {text!r}")
            else:
                before, _, _ = rest.partition("<")
                if _DISPLAY_TOKENS.fullmatch(before) is None:
                    raise SipParseError(f"bad display name in {text!r}")
                display = before.strip() or None
                rest = rest[len(before) :]
            end = rest.find(">")
            if end < 0:
                raise SipParseError(f"unterminated '<' in {text!r}")
            uri = SipUri.parse(rest[1:end])
            tail = rest[end + 1 :].strip()
        else:
            uri_text, semi, param_text = text.partition(";")
            uri = SipUri.parse(uri_text.strip())
            tail = semi + param_text
        if tail and not tail.startswith(";"):
            raise SipParseError(f"junk after address in {text!r}")
        params = parse_params(tail[1:], repr(text)) if tail else {}
        return cls(uri=uri, display_name=display, params=params)

    def __str__(self) -> str:
        text = f"<{self.uri}>"
        if self.display_name is not None:
            if is_token(self.display_name.replace(" ", "")):
                text = f"{self.display_name} {text}"
            else:
                escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
                text = f'"{escaped}" {text}'
        return text + format_params(self.params)

    @property
    def tag(self) -> str | None:
        """The ``tag`` header parameter, if any."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> Address:
        """Return a copy with ``tag`` set."""
        return Address(
            uri=self.uri, display_name=self.display_name, params={**self.params, "tag": tag}
        )


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    raise SipParseError(f"unterminated quoted string in {text!r}")
