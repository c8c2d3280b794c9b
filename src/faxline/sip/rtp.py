"""RTP packets (RFC 3550 5.1) and a small jitter buffer for G.711 fax audio.

There is no packet loss concealment on purpose: a fax modem must be told about a lost
block (SpanDSP ``fax_rx_fillin``), not fed invented audio, so the jitter buffer reports
gaps as :class:`Lost` entries with the number of samples they cover.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import RtpParseError
from .sequence import SequenceUnwrapper

_HEADER = struct.Struct("!BBHII")


@dataclass
class RtpPacket:
    """One RTP packet. Padding is rewritten as zeros followed by its length."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse an RTP packet; raise :class:`RtpParseError` (only) if it is malformed."""
        if len(data) < _HEADER.size:
            raise RtpParseError(f"RTP packet too short ({len(data)} bytes)")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        if first == 0x80 and not 192 <= second <= 223:
            # What a media stream carries 50 times a second (no CSRC, extension or
            # padding): parsed without the general path's lists and slices.
            return cls(second & 0x7F, sequence, timestamp, ssrc, data[12:], second > 0x7F, [])
        if first >> 6 != 2:
            raise RtpParseError(f"RTP version {first >> 6} is not 2")
        if 192 <= second <= 223:
            raise RtpParseError(f"RTCP packet type {second} on the RTP port")
        csrc_count = first & 0x0F
        pos = _HEADER.size + 4 * csrc_count
        if len(data) < pos:
            raise RtpParseError("RTP packet truncated in the CSRC list")
        csrc = list(struct.unpack_from(f"!{csrc_count}I", data, _HEADER.size))
        extension_profile: int | None = None
        extension = b""
        if first & 0x10:
            if len(data) < pos + 4:
                raise RtpParseError("RTP packet truncated in the extension header")
            extension_profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise RtpParseError("RTP packet truncated in the extension")
            extension = data[pos : pos + 4 * words]
            pos += 4 * words
        end = len(data)
        padding_size = 0
        if first & 0x20:
            padding_size = data[-1]
            if padding_size == 0 or padding_size > end - pos:
                raise RtpParseError(f"bad RTP padding length {padding_size}")
            end -= padding_size
        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=data[pos:end],
            marker=bool(second & 0x80),
            csrc=csrc,
            extension_profile=extension_profile,
            extension=extension,
            padding_size=padding_size,
        )

    def __bytes__(self) -> bytes:
        if len(self.extension) % 4:
            raise ValueError("RTP header extension must be a multiple of 4 bytes")
        first = 0x80 | len(self.csrc)
        if self.padding_size:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | self.payload_type
        data = _HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
        data += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        if self.extension_profile is not None:
            data += struct.pack("!HH", self.extension_profile, len(self.extension) // 4)
            data += self.extension
        data += self.payload
        if self.padding_size:
            data += bytes(self.padding_size - 1) + bytes([self.padding_size])
        return data


class RtpSender:
    """Stamps outgoing payloads with consecutive sequence numbers and timestamps.

    The initial sequence number and timestamp should be random (RFC 3550 5.1); the shell
    chooses them so that this class stays deterministic.
    """

    def __init__(self, payload_type: int, ssrc: int, sequence: int, timestamp: int) -> None:
        self.payload_type = payload_type
        self.ssrc = ssrc
        self._sequence = sequence & 0xFFFF
        self._timestamp = timestamp & 0xFFFFFFFF
        self._first = True

    def datagram(self, payload: bytes, samples: int | None = None) -> bytes:
        """The next packet's bytes: ``bytes(self.packet(payload, samples))``, built with
        one ``struct`` call and no packet object (the media clock sends 50 a second a call).
        """
        first = self._first
        data = _HEADER.pack(
            0x80,
            (0x80 if first else 0) | self.payload_type,
            self._sequence,
            self._timestamp,
            self.ssrc,
        )
        if first:
            self._first = False
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + (len(payload) if samples is None else samples)) & (
            0xFFFFFFFF
        )
        return data + payload

    def packet(self, payload: bytes, samples: int | None = None) -> RtpPacket:
        """Return the next packet; ``samples`` defaults to ``len(payload)`` (G.711)."""
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence_number=self._sequence,
            timestamp=self._timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=self._first,
        )
        self._first = False
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + (len(payload) if samples is None else samples)) & (
            0xFFFFFFFF
        )
        return packet


@dataclass(frozen=True)
class Frame:
    """An audio frame delivered in order. ``sequence`` is the extended sequence number."""

    sequence: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True)
class Lost:
    """``count`` consecutive packets from ``sequence`` on never arrived (``samples`` long)."""

    sequence: int
    count: int
    samples: int


class JitterBuffer:
    """Reorders RTP packets of one stream and reports gaps.

    ``push`` returns what can be delivered now: packets in sequence order, and a
    :class:`Lost` entry once a gap has been outwaited by ``depth`` later packets (at 20 ms
    per packet the default adds at most 60 ms of delay, and only while a packet is
    missing). Late and duplicate packets are dropped and counted.
    """

    def __init__(self, depth: int = 3, samples_per_packet: int = 160) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.depth = depth
        self.samples_per_packet = samples_per_packet
        self.late = 0
        self.duplicates = 0
        self.lost = 0
        self._reset(None)

    def _reset(self, ssrc: int | None) -> None:
        self.ssrc = ssrc
        self._unwrapper = SequenceUnwrapper()
        self._next: int | None = None
        self._pending: dict[int, RtpPacket] = {}
        self._last: tuple[int, int] | None = None  # timestamp and samples of the last frame

    def push(self, packet: RtpPacket) -> list[Frame | Lost]:
        """Add a packet; return the frames (and gaps) that are ready, in order."""
        if self.ssrc is None:
            self.ssrc = packet.ssrc
        elif packet.ssrc != self.ssrc:
            # A new source (re-INVITE, PBX switching media): start over with it.
            out = self.flush()
            self._reset(packet.ssrc)
            return out + self.push(packet)
        extended = self._unwrapper.unwrap(packet.sequence_number)
        if self._next is None:
            self._next = extended
        if extended < self._next:
            self.late += 1
            return []
        if extended in self._pending:
            self.duplicates += 1
            return []
        self._pending[extended] = packet
        return self._release(final=False)

    def flush(self) -> list[Frame | Lost]:
        """Deliver everything held, declaring remaining gaps lost (end of stream)."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> list[Frame | Lost]:
        out: list[Frame | Lost] = []
        while self._pending:
            assert self._next is not None
            if self._next in self._pending:
                packet = self._pending.pop(self._next)
                out.append(Frame(self._next, packet.timestamp, packet.payload))
                self._last = (packet.timestamp, len(packet.payload))
                self._next += 1
                continue
            if not final and len(self._pending) < self.depth:
                break
            resume = min(self._pending)
            count = resume - self._next
            out.append(Lost(self._next, count, self._lost_samples(count, resume)))
            self.lost += count
            self._next = resume
        return out

    def _lost_samples(self, count: int, resume: int) -> int:
        fallback = count * self.samples_per_packet
        if self._last is None:
            return fallback
        last_timestamp, last_samples = self._last
        samples = (self._pending[resume].timestamp - last_timestamp - last_samples) & 0xFFFFFFFF
        # A timestamp jump (new talkspurt, clock reset) is not a measure of the loss.
        return samples if 0 < samples <= 4 * fallback else fallback
