"""UDPTL framing of T.38 IFP packets (ITU-T T.38 clause 9.1) with redundancy.

A UDPTL packet is the ASN.1 PER (aligned) encoding of::

    UDPTLPacket ::= SEQUENCE {
        seq-number          INTEGER (0..65535),
        primary-ifp-packet  OPEN TYPE (an IFP, already PER-encoded),
        error-recovery      CHOICE {
            secondary-ifp-packets  SEQUENCE OF OPEN TYPE,  -- newest first
            fec-info               SEQUENCE { fec-npackets INTEGER,
                                              fec-data SEQUENCE OF OCTET STRING } } }

Lengths and counts are PER length determinants (one octet below 128, two below 16384;
the fragmented form is not used by UDPTL's datagram sizes and is rejected). The
:class:`UdptlSender` repeats the last N IFPs behind each new one; the
:class:`UdptlReceiver` delivers every IFP exactly once, in order, recovering lost ones from
the redundant copies of later packets and reporting what cannot be recovered. FEC packets
are parsed and their primaries delivered, but FEC recovery itself is not implemented (we
always answer ``t38UDPRedundancy``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .errors import UdptlParseError
from .sequence import SequenceUnwrapper


@dataclass(frozen=True)
class FecInfo:
    """The FEC alternative of the error-recovery field."""

    npackets: int
    data: tuple[bytes, ...]


@dataclass
class UdptlPacket:
    """One UDPTL datagram. ``secondary`` lists earlier IFPs, newest (sequence - 1) first."""

    sequence: int
    primary: bytes
    secondary: list[bytes] = field(default_factory=list)
    fec: FecInfo | None = None

    @classmethod
    def parse(cls, data: bytes) -> UdptlPacket:
        """Parse a datagram; raise :class:`UdptlParseError` (only) if it is malformed."""
        fast = _parse_short(data)
        return fast if fast is not None else _parse_general(data)

    def __bytes__(self) -> bytes:
        if not 0 <= self.sequence <= 0xFFFF:
            raise ValueError(f"sequence number {self.sequence} out of range")
        out = bytearray(self.sequence.to_bytes(2, "big"))
        out += _octets(self.primary)
        if self.fec is None:
            out.append(0x00)
            out += _length(len(self.secondary))
            for ifp in self.secondary:
                out += _octets(ifp)
        else:
            out.append(0x80)
            npackets = _integer(self.fec.npackets)
            out += _length(len(npackets)) + npackets
            out += _length(len(self.fec.data))
            for chunk in self.fec.data:
                out += _octets(chunk)
        return bytes(out)


def _parse_general(data: bytes) -> UdptlPacket:
    """Any UDPTL datagram (FEC, two-octet lengths), or :class:`UdptlParseError`."""
    reader = _Reader(data)
    sequence = reader.take(2)
    primary = reader.octets()
    if not primary:
        raise UdptlParseError("empty primary IFP")
    choice = reader.take(1)[0]
    if choice == 0x00:
        secondary = [reader.octets() for _ in range(reader.length())]
        if any(not ifp for ifp in secondary):
            raise UdptlParseError("empty secondary IFP")
        fec = None
    elif choice == 0x80:
        secondary = []
        npackets_len = reader.length()
        if not 1 <= npackets_len <= 4:
            raise UdptlParseError(f"bad fec-npackets length {npackets_len}")
        npackets = int.from_bytes(reader.take(npackets_len), "big", signed=True)
        fec = FecInfo(npackets, tuple(reader.octets() for _ in range(reader.length())))
    else:
        raise UdptlParseError(f"bad error-recovery choice octet {choice:#04x}")
    if reader.remaining:
        raise UdptlParseError(f"{reader.remaining} junk bytes after the UDPTL packet")
    return UdptlPacket(int.from_bytes(sequence, "big"), primary, secondary, fec)


def _parse_short(data: bytes) -> UdptlPacket | None:
    """The usual datagram (redundancy, every length below 128 octets) parsed without a
    reader, or None for any other form (the general parser then decides, errors included).
    """
    end = len(data)
    if end < 5:
        return None
    size = data[2]
    pos = 3 + size
    if not 0 < size < 0x80 or pos + 2 > end or data[pos] != 0x00:
        return None
    count = data[pos + 1]
    if count >= 0x80:
        return None
    pos += 2
    secondary = []
    for _ in range(count):
        if pos >= end:
            return None
        size = data[pos]
        if not 0 < size < 0x80 or pos + 1 + size > end:
            return None
        secondary.append(data[pos + 1 : pos + 1 + size])
        pos += 1 + size
    if pos != end:
        return None
    return UdptlPacket(data[0] << 8 | data[1], data[3 : 3 + data[2]], secondary)


def _length(value: int) -> bytes:
    if value < 0x80:
        return bytes([value])
    if value < 0x4000:
        return bytes([0x80 | value >> 8, value & 0xFF])
    raise ValueError(f"length {value} needs PER fragmentation, which UDPTL does not use")


def _octets(data: bytes) -> bytes:
    return _length(len(data)) + data


def _integer(value: int) -> bytes:
    size = (~value if value < 0 else value).bit_length() // 8 + 1  # minimal two's complement
    return value.to_bytes(size, "big", signed=True)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, count: int) -> bytes:
        if count > self.remaining:
            raise UdptlParseError(f"UDPTL packet truncated at byte {self._pos}")
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def length(self) -> int:
        first = self.take(1)[0]
        if first < 0x80:
            return first
        if first < 0xC0:
            return (first & 0x3F) << 8 | self.take(1)[0]
        raise UdptlParseError("fragmented PER length is not supported in UDPTL")

    def octets(self) -> bytes:
        return self.take(self.length())


class UdptlSender:
    """Numbers outgoing IFPs and adds up to ``redundancy`` earlier IFPs to each datagram.

    When ``max_datagram`` (the peer's ``T38FaxMaxDatagram``) is set, the oldest redundant
    copies are left out until the datagram fits; a primary that cannot fit alone is sent
    anyway, since dropping it would lose data for sure.
    """

    def __init__(
        self, redundancy: int = 3, max_datagram: int | None = None, sequence: int = 0
    ) -> None:
        if redundancy < 0:
            raise ValueError("redundancy must not be negative")
        self.redundancy = redundancy
        self.max_datagram = max_datagram
        self._sequence = sequence & 0xFFFF
        self._framed: deque[bytes] = deque(maxlen=redundancy or None)
        """The last IFPs sent, each with its PER length in front, oldest first."""

    def send(self, ifp: bytes) -> bytes:
        """Return the datagram carrying ``ifp`` (and the redundant copies)."""
        if not ifp:
            raise ValueError("an IFP packet is at least one octet")
        # The bytes of UdptlPacket(sequence, ifp, history newest first), joined from the
        # IFPs' framed forms (each IFP is framed once, not once per datagram carrying it).
        framed = _octets(ifp)
        history = self._framed
        count = len(history)
        head = self._sequence.to_bytes(2, "big") + framed + b"\x00"
        data = head + _length(count) + b"".join(reversed(history))
        while self.max_datagram is not None and len(data) > self.max_datagram and count:
            count -= 1  # too big for the peer: leave the oldest copy out
            data = head + _length(count) + b"".join([history[-1 - i] for i in range(count)])
        if self.redundancy:
            history.append(framed)
        self._sequence = (self._sequence + 1) & 0xFFFF
        return data


@dataclass(frozen=True)
class Ifp:
    """An IFP delivered in order; ``recovered`` when it came from a redundant copy."""

    sequence: int
    data: bytes
    recovered: bool = False


@dataclass(frozen=True)
class IfpLost:
    """``count`` IFPs from extended ``sequence`` on are lost and cannot be recovered."""

    sequence: int
    count: int


class UdptlReceiver:
    """Delivers received IFPs exactly once, in sequence order.

    A missing IFP is waited for until ``hold`` later sequence numbers have been seen (a
    later packet's redundancy, or the late packet itself, may still bring it), then
    reported as :class:`IfpLost`. Sequence numbers in events are extended (unwrapped);
    ``sequence & 0xFFFF`` is the wire value.
    """

    def __init__(self, hold: int = 4) -> None:
        if hold < 1:
            raise ValueError("hold must be at least 1")
        self.hold = hold
        self.recovered = 0
        self.lost = 0
        self.duplicates = 0
        self._unwrapper = SequenceUnwrapper()
        self._next: int | None = None
        self._highest = -1
        self._pending: dict[int, Ifp] = {}

    def push(self, packet: UdptlPacket) -> list[Ifp | IfpLost]:
        """Take one received packet; return the IFPs (and losses) now ready, in order."""
        extended = self._unwrapper.unwrap(packet.sequence)
        if self._next is None:
            self._next = extended - len(packet.secondary)
        self._highest = max(self._highest, extended)
        known = self._pending.get(extended)
        if extended < self._next or (known is not None and not known.recovered):
            self.duplicates += 1
            if extended < self._next:
                return []  # its redundant copies are older still
        if known is None or known.recovered:
            self._pending[extended] = Ifp(extended, packet.primary)
        for offset, ifp in enumerate(packet.secondary, start=1):
            earlier = extended - offset
            if earlier >= self._next and earlier not in self._pending:
                self._pending[earlier] = Ifp(earlier, ifp, recovered=True)
        return self._release(final=False)

    def flush(self) -> list[Ifp | IfpLost]:
        """Deliver everything held, declaring the remaining gaps lost."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> list[Ifp | IfpLost]:
        out: list[Ifp | IfpLost] = []
        while self._pending:
            assert self._next is not None
            ifp = self._pending.pop(self._next, None)
            if ifp is not None:
                out.append(ifp)
                self.recovered += ifp.recovered
                self._next += 1
                continue
            # Declare lost only what no packet still to come can carry, one number at a
            # time, so that a later IFP in the same gap keeps its chance of recovery.
            start = self._next
            while self._next not in self._pending and (
                final or self._highest - self._next >= self.hold
            ):
                self._next += 1
            if self._next == start:
                break
            out.append(IfpLost(start, self._next - start))
            self.lost += self._next - start
        return out
