"""Sans-I/O media streams: RTP G.711 to an audio fax session, UDPTL to a T.38 one.

A stream is fed the datagrams that arrived (:meth:`receive`, which parses at the edge:
a malformed datagram is counted, reported once in the log and dropped) and is ticked every
20 ms (:meth:`tick`), when it moves the fax session on and returns the datagrams to send.
Time is a parameter (``now``, seconds on any monotonic clock), so tests step it by hand.

Audio: packets go through a :class:`~faxline.sip.rtp.JitterBuffer` (depth 3, i.e. at most
60 ms of added delay, and only while a packet is missing); frames are decoded with the
G.711 law of their payload type; a gap the buffer gives up on is reported to SpanDSP as
``receive_lost`` (``fax_rx_fillin``), never concealed. When nothing at all arrives for
:data:`IDLE_FILL_S`, silence is fed each tick so T.30's timers (driven by received
samples) keep running. One RTP packet of 160 samples is sent per tick.

T.38: datagrams go through a :class:`~faxline.sip.udptl.UdptlReceiver`, which recovers
lost IFPs from the redundant copies of later datagrams; each IFP reaches the session once,
in order. Outgoing IFPs are framed by a :class:`~faxline.sip.udptl.UdptlSender` with
redundancy 3 (SpanDSP 0.0.6's T.38 is fragile without it), and a datagram is repeated as
many times as SpanDSP asks for copies of its packet.

:class:`Watchdog` decides when a call has gone quiet for too long or lasted too long.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from faxline.fax.audio import AudioFaxSession, Samples
from faxline.fax.g711 import Codec, decode, encode
from faxline.fax.t38 import IfpPacket, T38FaxSession
from faxline.sip.errors import RtpParseError, UdptlParseError
from faxline.sip.negotiation import PCMA, PCMU
from faxline.sip.rtp import Frame, JitterBuffer, Lost, RtpPacket, RtpSender
from faxline.sip.sdp import T38Options
from faxline.sip.udptl import Ifp, IfpLost, UdptlPacket, UdptlReceiver, UdptlSender

logger = logging.getLogger(__name__)

BLOCK_SAMPLES = 160
"""One tick: 20 ms at 8 kHz, one RTP packet."""
TICK_S = 0.02
IDLE_FILL_S = 0.2
"""Without any RTP for this long, feed silence so T.30 timers run (the far end is mute)."""
UDPTL_REDUNDANCY = 3
"""Earlier IFPs repeated in each UDPTL datagram (when the far end accepts redundancy)."""
T38_QUIET_FLOOR_S = 8.0
"""The shortest media timeout over T.38: longer than T.30's silences (T2 is 6 s)."""
UDPTL_FLUSH_S = 0.5
"""A missing IFP still held after this long without traffic is given up on."""
CODECS = {PCMU: Codec.PCMU, PCMA: Codec.PCMA}
_SILENCE = np.zeros(BLOCK_SAMPLES, dtype=np.int16)


@dataclass
class StreamStats:
    """What a stream saw on the wire; logged when the call ends."""

    received: int = 0
    malformed: int = 0
    ignored: int = 0
    """Well-formed but not for us (RTP of another payload type, e.g. comfort noise)."""
    lost: int = 0
    """Packets (RTP) or IFPs (UDPTL) that never arrived and could not be recovered."""
    recovered: int = 0
    """IFPs rebuilt from UDPTL redundancy."""
    rejected: int = 0
    """IFPs SpanDSP refused as malformed."""
    sent: int = 0


class _Stream:
    kind: str
    _parse_error: type[Exception]

    def __init__(self, now: float) -> None:
        self.stats = StreamStats()
        self.last_received: float | None = None
        self.started = now

    def _malformed(self, error: Exception) -> None:
        self.stats.malformed += 1
        if self.stats.malformed == 1:
            logger.warning(
                "dropping malformed %s datagram (%s); further ones are only counted",
                self.kind,
                error,
            )
        else:
            logger.debug("dropping malformed %s datagram: %s", self.kind, error)


class AudioStream(_Stream):
    """G.711 over RTP to and from an :class:`AudioFaxSession`.

    ``session`` may be None: the stream then sends silence and discards what it gets
    (the answerer of a ``T38Mode.ONLY`` call while its T.38 re-INVITE is pending).
    """

    kind = "rtp"

    def __init__(
        self,
        session: AudioFaxSession | None,
        *,
        payload_type: int,
        ssrc: int,
        sequence: int,
        timestamp: int,
        now: float,
        jitter_depth: int = 3,
    ) -> None:
        super().__init__(now)
        if payload_type not in CODECS:
            raise ValueError(f"payload type {payload_type} is not G.711")
        self.session = session
        self._tx_codec = CODECS[payload_type]
        self._rx_codec = self._tx_codec
        self._sender = RtpSender(payload_type, ssrc, sequence, timestamp)
        self._jitter = JitterBuffer(jitter_depth, BLOCK_SAMPLES)
        self._ready: list[Frame | Lost] = []

    def receive(self, data: bytes, now: float) -> bool:
        """Take one datagram from the RTP socket; False if it was malformed (dropped)."""
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError as exc:
            self._malformed(exc)
            return False
        codec = CODECS.get(packet.payload_type)
        if codec is None or not packet.payload:
            self.stats.ignored += 1
            return True
        self.stats.received += 1
        self.last_received = now
        self._rx_codec = codec
        self._ready.extend(self._jitter.push(packet))
        return True

    def tick(self, now: float) -> list[bytes]:
        """Move the session on 20 ms; return the RTP datagram to send."""
        session = self.session
        if session is not None and session.closed:
            session = None
        if session is not None:
            self._deliver(session, now)
            block = session.transmit_audio(BLOCK_SAMPLES)
        else:
            self._ready.clear()
            block = _SILENCE
        self.stats.sent += 1
        return [self._sender.datagram(encode(block, self._tx_codec))]

    def _deliver(self, session: AudioFaxSession, now: float) -> None:
        ready = self._ready
        if not ready:
            last = self.started if self.last_received is None else self.last_received
            if now - last >= IDLE_FILL_S:
                session.receive_audio(_SILENCE)
            return
        self._ready = []
        frames: list[Samples] = []
        for item in ready:
            if isinstance(item, Frame):
                frames.append(decode(item.payload, self._rx_codec))
                continue
            if frames:
                session.receive_audio(frames[0] if len(frames) == 1 else np.concatenate(frames))
                frames = []
            self.stats.lost += item.count
            session.receive_lost(item.samples)
        if frames:
            session.receive_audio(frames[0] if len(frames) == 1 else np.concatenate(frames))


def is_image_data(ifp: bytes) -> bool:
    """Whether an IFP carries page data (a T.30 data packet of a high-speed modem).

    The first octet of an IFP packet (PER-encoded) is: data-field present (0x80), data
    rather than indicator (0x40), extension (0x20), then the data type (V.21 = 0).
    """
    first = ifp[0]
    return bool(first & 0x40) and bool(first & 0x20 or (first >> 1) & 0x0F)


class T38Stream(_Stream):
    """T.38 over UDPTL to and from a :class:`T38FaxSession`.

    ``remote`` holds the far end's T.38 limits from its SDP: its ``T38FaxMaxDatagram``
    bounds our datagrams, and ``t38UDPNoEC`` turns our redundancy off.
    """

    kind = "udptl"

    def __init__(self, session: T38FaxSession, *, remote: T38Options | None, now: float) -> None:
        super().__init__(now)
        self.session = session
        no_ec = remote is not None and remote.udp_ec in (None, "t38UDPNoEC")
        self._sender = UdptlSender(
            0 if no_ec else UDPTL_REDUNDANCY,
            max_datagram=remote.max_datagram if remote is not None else None,
        )
        self._receiver = UdptlReceiver()
        self._ready: list[Ifp] = []
        self._flushed = True
        self.sending_data_at: float | None = None
        """When we last sent page data (our own transmission: the far end is quiet)."""

    def receive(self, data: bytes, now: float) -> bool:
        """Take one datagram from the UDPTL socket; False if it was malformed (dropped)."""
        try:
            packet = UdptlPacket.parse(data)
        except UdptlParseError as exc:
            self._malformed(exc)
            return False
        self.stats.received += 1
        self.last_received = now
        self._flushed = False
        self._take(self._receiver.push(packet))
        return True

    def _take(self, items: list[Ifp | IfpLost]) -> None:
        for item in items:
            if isinstance(item, Ifp):
                self._ready.append(item)
            else:
                self.stats.lost += item.count

    def tick(self, now: float) -> list[bytes]:
        """Move the session on 20 ms; return the UDPTL datagrams to send."""
        session = self.session
        if session.closed:
            return []
        last = self.last_received
        if not self._flushed and last is not None and now - last >= UDPTL_FLUSH_S:
            # No later datagram will bring what is still missing: give up on it.
            self._take(self._receiver.flush())
            self._flushed = True
        if self._ready:
            ready, self._ready = self._ready, []
            for ifp in ready:
                self.stats.recovered += ifp.recovered
                if not session.receive_packet(IfpPacket(ifp.sequence & 0xFFFF, ifp.data)):
                    self.stats.rejected += 1
                if session.closed:
                    return []
        session.advance(BLOCK_SAMPLES)
        out: list[bytes] = []
        for packet in session.packets_to_send():
            datagram = self._sender.send(packet.data)
            out.extend([datagram] * packet.copies)
            if is_image_data(packet.data):
                self.sending_data_at = now
        self.stats.sent += len(out)
        return out


class Watchdog:
    """Ends calls whose far end went quiet, and calls that last too long.

    The media clock restarts whenever the stream changes (:meth:`restart`). A stream is
    quiet when nothing has been received for ``media_timeout_s`` (since it started, if
    nothing ever came). Over T.38 the far end legitimately says nothing while we send a
    page, so our own page data counts as activity there; and it is quiet between T.30
    messages (for up to T2, 6 s), so over T.38 the timeout is at least ``t38_floor_s``
    (:data:`T38_QUIET_FLOOR_S` of call time).
    """

    def __init__(
        self,
        *,
        media_timeout_s: float,
        max_duration_s: float,
        now: float,
        t38_floor_s: float | None = None,
    ) -> None:
        if media_timeout_s <= 0 or max_duration_s <= 0:
            raise ValueError("timeouts must be positive")
        self.media_timeout_s = media_timeout_s
        self.t38_floor_s = T38_QUIET_FLOOR_S if t38_floor_s is None else t38_floor_s
        self.max_duration_s = max_duration_s
        self.started = now
        self._since = now

    def restart(self, now: float) -> None:
        """A new stream started: give it a full ``media_timeout_s``."""
        self._since = now

    def quiet_for(self, stream: AudioStream | T38Stream, now: float) -> float:
        """Seconds without activity on ``stream``."""
        last = self._since
        if stream.last_received is not None:
            last = max(last, stream.last_received)
        if isinstance(stream, T38Stream) and stream.sending_data_at is not None:
            last = max(last, stream.sending_data_at)
        return now - last

    def check(self, stream: AudioStream | T38Stream | None, now: float) -> str | None:
        """``"max_duration"``, ``"media_timeout"`` or None (all is well)."""
        if now - self.started >= self.max_duration_s:
            return "max_duration"
        if stream is None:
            return None
        limit = self.media_timeout_s
        if isinstance(stream, T38Stream):
            limit = max(limit, self.t38_floor_s)
        if self.quiet_for(stream, now) >= limit:
            return "media_timeout"
        return None
