"""Session descriptions (RFC 4566/8866): ``SessionDescription.parse`` and ``bytes(sdp)``.

The model is generic (every line is kept, in order within its section, so a description
in canonical line order serialises to the bytes it was parsed from), with typed views on
top: :meth:`MediaDescription.rtpmaps`, :attr:`MediaDescription.direction` and
:class:`T38Options` for ``m=image PORT udptl t38`` streams (ITU-T T.38 Annex D).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SdpParseError

# The order RFC 4566 5 prescribes; lines are written back in this order.
_SESSION_ORDER = "vosiuepcbtrzka"
_MEDIA_ORDER = "micbka"
_LINE = re.compile(r"([a-z])=(.*)")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+")
_INT = re.compile(r"[0-9]{1,10}")

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass
class Origin:
    """The ``o=`` line."""

    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    address: str = "0.0.0.0"
    nettype: str = "IN"
    addrtype: str = "IP4"

    @classmethod
    def parse(cls, text: str) -> Origin:
        """Parse the value of an ``o=`` line."""
        parts = text.split(" ")
        if len(parts) != 6 or not all(parts):
            raise SdpParseError(f"bad origin line {text!r}")
        username, session_id, version, nettype, addrtype, address = parts
        if not (session_id.isascii() and session_id.isdigit()):
            raise SdpParseError(f"bad session id {session_id!r}")
        if not (version.isascii() and version.isdigit()):
            raise SdpParseError(f"bad session version {version!r}")
        return cls(username, session_id, version, address, nettype, addrtype)

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class Connection:
    """A ``c=`` line; ``address`` may carry ``/ttl`` for multicast, kept as written."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @classmethod
    def parse(cls, text: str) -> Connection:
        """Parse the value of a ``c=`` line."""
        parts = text.split(" ")
        if len(parts) != 3 or not all(parts):
            raise SdpParseError(f"bad connection line {text!r}")
        nettype, addrtype, address = parts
        if addrtype not in ("IP4", "IP6"):
            raise SdpParseError(f"unknown address type {addrtype!r}")
        return cls(address, nettype, addrtype)

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass
class Attribute:
    """An ``a=`` line: ``name`` alone (a flag) or ``name:value``."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        """Parse the value of an ``a=`` line."""
        name, colon, value = text.partition(":")
        if _TOKEN.fullmatch(name) is None:
            raise SdpParseError(f"bad attribute name {name!r}")
        return cls(name, value if colon else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True)
class RtpMap:
    """An ``a=rtpmap`` entry: encoding name, clock rate and optional channels."""

    encoding: str
    clock_rate: int
    channels: int | None = None


@dataclass
class MediaDescription:
    """One ``m=`` section."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """Value of the first attribute called ``name`` (case-insensitive); '' for a flag."""
        for attribute in self.attributes:
            if attribute.name.lower() == name.lower():
                return attribute.value if attribute.value is not None else ""
        return None

    def rtpmaps(self) -> dict[str, RtpMap]:
        """The ``a=rtpmap`` entries by payload format."""
        maps: dict[str, RtpMap] = {}
        for attribute in self.attributes:
            if attribute.name.lower() != "rtpmap" or attribute.value is None:
                continue
            fmt, _, spec = attribute.value.partition(" ")
            parts = spec.strip().split("/")
            if len(parts) not in (2, 3) or not all(_INT.fullmatch(p) for p in parts[1:]):
                raise SdpParseError(f"bad rtpmap {attribute.value!r}")
            channels = int(parts[2]) if len(parts) == 3 else None
            maps[fmt] = RtpMap(parts[0], int(parts[1]), channels)
        return maps

    def fmtp(self, fmt: str) -> str | None:
        """The ``a=fmtp`` parameters of payload format ``fmt``."""
        for attribute in self.attributes:
            if attribute.name.lower() == "fmtp" and attribute.value is not None:
                name, _, params = attribute.value.partition(" ")
                if name == fmt:
                    return params.strip()
        return None

    @property
    def direction(self) -> str:
        """``sendrecv`` (the default), ``sendonly``, ``recvonly`` or ``inactive``."""
        for attribute in self.attributes:
            if attribute.value is None and attribute.name.lower() in DIRECTIONS:
                return attribute.name.lower()
        return "sendrecv"

    @property
    def is_t38(self) -> bool:
        """Whether this is an ``image`` stream carrying T.38 over UDPTL."""
        return (
            self.media.lower() == "image"
            and self.proto.lower() == "udptl"
            and [f.lower() for f in self.formats] == ["t38"]
        )

    @property
    def t38(self) -> T38Options:
        """The T.38 attributes of this stream as typed options."""
        return T38Options.from_attributes(self.attributes)

    def lines(self) -> list[str]:
        """The section's lines in canonical order, without line ends."""
        count = f"/{self.port_count}" if self.port_count is not None else ""
        out = [f"m={self.media} {self.port}{count} {self.proto} {' '.join(self.formats)}"]
        for letter in _MEDIA_ORDER[1:]:
            if letter == "c" and self.connection is not None:
                out.append(f"c={self.connection}")
            elif letter == "a":
                out.extend(f"a={a}" for a in self.attributes)
            else:
                out.extend(f"{k}={v}" for k, v in self.other if k == letter)
        return out

    @classmethod
    def _parse_m_line(cls, text: str) -> MediaDescription:
        parts = text.split(" ")
        if len(parts) < 4 or not all(parts):
            raise SdpParseError(f"bad media line {text!r}")
        media, port_text, proto, *formats = parts
        port_part, slash, count_text = port_text.partition("/")
        if _INT.fullmatch(port_part) is None or int(port_part) > 65535:
            raise SdpParseError(f"bad media port {port_text!r}")
        if slash and (_INT.fullmatch(count_text) is None or int(count_text) == 0):
            raise SdpParseError(f"bad port count {port_text!r}")
        if _TOKEN.fullmatch(media) is None:
            raise SdpParseError(f"bad media type {media!r}")
        return cls(
            media=media,
            port=int(port_part),
            proto=proto,
            formats=formats,
            port_count=int(count_text) if slash else None,
        )


@dataclass
class SessionDescription:
    """A whole SDP body."""

    origin: Origin = field(default_factory=Origin)
    name: str = "-"
    connection: Connection | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        """Parse an SDP body; raise :class:`SdpParseError` (only) if it is malformed."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpParseError(f"SDP is not UTF-8: {exc}") from exc
        lines = re.split(r"\r?\n", text)
        if lines and lines[-1] == "":
            lines.pop()
        if not lines or lines[0] != "v=0":
            raise SdpParseError("SDP must start with v=0")
        session = cls(times=[])
        seen_origin = seen_name = False
        current: MediaDescription | None = None
        for line in lines[1:]:
            match = _LINE.fullmatch(line)
            if match is None:
                raise SdpParseError(f"bad SDP line {line[:40]!r}")
            letter, value = match.group(1), match.group(2)
            if not value.isprintable():
                raise SdpParseError(f"control character in {letter}= line")
            if letter == "m":
                current = MediaDescription._parse_m_line(value)
                session.media.append(current)
            elif current is not None:
                _add_media_line(current, letter, value)
            elif letter == "o":
                if seen_origin:
                    raise SdpParseError("more than one o= line")
                session.origin, seen_origin = Origin.parse(value), True
            elif letter == "s":
                if seen_name:
                    raise SdpParseError("more than one s= line")
                session.name, seen_name = value, True
            elif letter == "c":
                if session.connection is not None:
                    raise SdpParseError("more than one session c= line")
                session.connection = Connection.parse(value)
            elif letter == "t":
                session.times.append(value)
            elif letter == "a":
                session.attributes.append(Attribute.parse(value))
            elif letter in _SESSION_ORDER:
                session.other.append((letter, value))
            else:
                raise SdpParseError(f"unknown SDP line type {letter!r} at session level")
        if not seen_origin or not seen_name:
            raise SdpParseError("SDP lacks o= or s=")
        if not session.times:
            raise SdpParseError("SDP lacks t=")
        for media in session.media:
            if media.connection is None and session.connection is None and media.port != 0:
                raise SdpParseError(f"no connection address for m={media.media}")
            media.rtpmaps()
            if media.is_t38:
                media.t38  # noqa: B018 - validates the T.38 attributes
        return session

    def __bytes__(self) -> bytes:
        out = ["v=0", f"o={self.origin}", f"s={self.name}"]
        for letter in _SESSION_ORDER[3:]:
            if letter == "c" and self.connection is not None:
                out.append(f"c={self.connection}")
            elif letter == "t":
                out.extend(f"t={t}" for t in self.times)
            elif letter == "a":
                out.extend(f"a={a}" for a in self.attributes)
            else:
                out.extend(f"{k}={v}" for k, v in self.other if k == letter)
        for media in self.media:
            out.extend(media.lines())
        return ("\r\n".join(out) + "\r\n").encode()

    def connection_address(self, media: MediaDescription) -> str | None:
        """The address a stream's media goes to: its own c= line, else the session's."""
        connection = media.connection or self.connection
        return connection.address.split("/")[0] if connection is not None else None


def _add_media_line(media: MediaDescription, letter: str, value: str) -> None:
    if letter == "c":
        if media.connection is not None:
            raise SdpParseError(f"more than one c= line in m={media.media}")
        media.connection = Connection.parse(value)
    elif letter == "a":
        media.attributes.append(Attribute.parse(value))
    elif letter in _MEDIA_ORDER:
        media.other.append((letter, value))
    else:
        raise SdpParseError(f"unexpected {letter}= line in m={media.media}")


RATE_MANAGEMENT = ("transferredTCF", "localTCF")
UDP_EC = ("t38UDPRedundancy", "t38UDPFEC", "t38UDPNoEC")


@dataclass(frozen=True)
class T38Options:
    """The T.38 session attributes of an image stream (ITU-T T.38 Annex D, RFC 3362).

    ``None`` means the attribute is absent. Booleans are absent when false; they are read
    both as flags (``a=T38FaxFillBitRemoval``) and with a value (``...:1`` / ``...:0``).
    """

    version: int = 0
    max_bit_rate: int | None = 14400
    fill_bit_removal: bool = False
    transcoding_mmr: bool = False
    transcoding_jbig: bool = False
    rate_management: str = "transferredTCF"
    max_buffer: int | None = None
    max_datagram: int | None = None
    udp_ec: str | None = "t38UDPRedundancy"

    @classmethod
    def from_attributes(cls, attributes: list[Attribute]) -> T38Options:
        """Read the T38* attributes (names compared case-insensitively)."""
        values: dict[str, str | None] = {a.name.lower(): a.value for a in attributes}

        def integer(name: str) -> int | None:
            if name.lower() not in values:
                return None
            text = (values[name.lower()] or "").strip()
            if _INT.fullmatch(text) is None:
                raise SdpParseError(f"bad {name} value {text!r}")
            return int(text)

        def flag(name: str) -> bool:
            if name.lower() not in values:
                return False
            text = values[name.lower()]
            if text is None:
                return True
            if text.strip() not in ("0", "1"):
                raise SdpParseError(f"bad {name} value {text!r}")
            return text.strip() == "1"

        rate = values.get("t38faxratemanagement")
        if rate is not None and rate not in RATE_MANAGEMENT:
            raise SdpParseError(f"bad T38FaxRateManagement {rate!r}")
        ec = values.get("t38faxudpec")
        if ec is not None and ec not in UDP_EC:
            raise SdpParseError(f"bad T38FaxUdpEC {ec!r}")
        return cls(
            version=integer("T38FaxVersion") or 0,
            max_bit_rate=integer("T38MaxBitRate"),
            fill_bit_removal=flag("T38FaxFillBitRemoval"),
            transcoding_mmr=flag("T38FaxTranscodingMMR"),
            transcoding_jbig=flag("T38FaxTranscodingJBIG"),
            rate_management=rate or "transferredTCF",
            max_buffer=integer("T38FaxMaxBuffer"),
            max_datagram=integer("T38FaxMaxDatagram"),
            udp_ec=ec,
        )

    def to_attributes(self) -> list[Attribute]:
        """The attributes to put on an ``m=image`` line, in the customary order."""
        attrs = [Attribute("T38FaxVersion", str(self.version))]
        if self.max_bit_rate is not None:
            attrs.append(Attribute("T38MaxBitRate", str(self.max_bit_rate)))
        for name, on in (
            ("T38FaxFillBitRemoval", self.fill_bit_removal),
            ("T38FaxTranscodingMMR", self.transcoding_mmr),
            ("T38FaxTranscodingJBIG", self.transcoding_jbig),
        ):
            if on:
                attrs.append(Attribute(name))
        attrs.append(Attribute("T38FaxRateManagement", self.rate_management))
        if self.max_buffer is not None:
            attrs.append(Attribute("T38FaxMaxBuffer", str(self.max_buffer)))
        if self.max_datagram is not None:
            attrs.append(Attribute("T38FaxMaxDatagram", str(self.max_datagram)))
        if self.udp_ec is not None:
            attrs.append(Attribute("T38FaxUdpEC", self.udp_ec))
        return attrs
